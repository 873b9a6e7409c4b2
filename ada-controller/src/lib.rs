//! `ada-controller`: the controller side of ADA (work in progress in this commit).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod export;
pub mod inspect;
