//! The `ada` command-line tool.
fn main() {}
