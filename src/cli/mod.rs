//! The command line.

mod args;

pub use args::*;
