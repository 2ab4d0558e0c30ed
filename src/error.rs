//! The one error type the binary reports, and the exit code each kind maps to.
//!
//! Users script around exit codes, so the split is part of the contract: `2` means "fix your
//! command line or configuration and run again", `1` means "something failed at run time (or a
//! record we accepted was not delivered)". Messages name the input and the fix, and never
//! contain a credential.

use std::fmt;

/// What went wrong, classified by what the user should do about it.
#[derive(Debug)]
pub enum Error {
    /// Bad flags, bad configuration, missing credentials: exit code 2.
    Usage(String),
    /// A failure while running, including undelivered records: exit code 1.
    Runtime(String),
}

impl Error {
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    pub fn runtime(msg: impl Into<String>) -> Self {
        Error::Runtime(msg.into())
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Runtime(_) => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Runtime(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

/// An error with its sources, `outer: inner: innermost`: hyper's top-level errors ("client
/// error (Connect)") say little until their causes are spelled out.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
