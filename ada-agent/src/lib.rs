//! `ada-agent`: the traced process's side of ADA (work in progress in this commit).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
