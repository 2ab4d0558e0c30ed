//! The error a command ends with, and the exit code it maps to.
//!
//! Users script around exit codes, so the split is part of the contract: `2` means "fix your
//! command line or configuration and run again", `1` means "something failed at run time (or a
//! record we accepted was not delivered)". Each layer has its own error type that carries its
//! causes ([`crate::kafka::Error`], [`crate::source::Error`], …) and says which of the two it
//! is; this type only keeps that verdict and the chain, and `main` turns it into the code.
//! Messages name the input and the fix, and never contain a credential.

use std::fmt;

/// What the user should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad flags, bad configuration, missing credentials: exit code 2.
    Usage,
    /// A failure while running, including undelivered records: exit code 1.
    Runtime,
}

/// A layer's error, classified.
pub(crate) trait Classify: std::error::Error + Send + Sync + 'static {
    fn kind(&self) -> Kind;
}

#[derive(Debug)]
pub struct Error {
    kind: Kind,
    inner: Box<dyn std::error::Error + Send + Sync>,
}

/// A message of our own, for errors found where no layer type fits (configuration checks).
#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

impl Error {
    pub fn usage(msg: impl Into<String>) -> Self {
        Error {
            kind: Kind::Usage,
            inner: Box::new(Message(msg.into())),
        }
    }

    pub fn runtime(msg: impl Into<String>) -> Self {
        Error {
            kind: Kind::Runtime,
            inner: Box::new(Message(msg.into())),
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn exit_code(&self) -> i32 {
        match self.kind {
            Kind::Usage => 2,
            Kind::Runtime => 1,
        }
    }

    /// The layer error inside, for callers that add advice to known failures.
    pub(crate) fn find<E: std::error::Error + 'static>(&self) -> Option<&E> {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(self.inner.as_ref());
        while let Some(e) = cur {
            if let Some(found) = e.downcast_ref::<E>() {
                return Some(found);
            }
            cur = e.source();
        }
        None
    }
}

impl<E: Classify> From<E> for Error {
    fn from(e: E) -> Self {
        Error {
            kind: e.kind(),
            inner: Box::new(e),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&chain(self.inner.as_ref()))
    }
}

impl std::error::Error for Error {}

/// An error with its sources, `outer: inner: innermost`: hyper's top-level errors ("client
/// error (Connect)") say little until their causes are spelled out. A cause whose text the
/// outer message already ends with is not repeated.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let text = inner.to_string();
        if !s.ends_with(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        src = inner.source();
    }
    s
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
