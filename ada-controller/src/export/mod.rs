//! Trace exporters.
