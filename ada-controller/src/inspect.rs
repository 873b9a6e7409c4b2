//! `ada inspect`.
