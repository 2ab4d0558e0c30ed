//! The Jetstream source's errors: the ones that end it. Everything retryable (network, HTTP
//! 5xx, closes, stalls, bad frames) is handled inside the reconnect loop and never gets here.
//! All of them are the configuration's to fix (exit code 2); the command line adds which flag.

use std::path::PathBuf;

use crate::error::{Classify, Kind};

#[derive(Debug, thiserror::Error)]
pub(crate) enum JetstreamError {
    /// An instance URL that is not one.
    #[error(
        "{url:?}: {why}; give a URL like wss://jetstream1.us-east.bsky.network/subscribe \
         (ws:// for a plain connection)"
    )]
    Url { url: String, why: String },
    /// A collection Jetstream would refuse.
    #[error("{0}")]
    Collection(String),
    /// An account (DID) Jetstream would refuse.
    #[error("{0}")]
    Did(String),
    /// The file of accounts could not be read.
    #[error("cannot read {}: {source}; give a readable file with one DID per line", path.display())]
    DidsFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Jetstream itself refused the subscription: it will refuse every retry the same way.
    /// `said` is the server's own explanation.
    #[error("Jetstream refused the subscription at {url} ({status}): {said:?}")]
    Refused {
        url: String,
        status: String,
        said: String,
    },
}

impl Classify for JetstreamError {
    fn kind(&self) -> Kind {
        Kind::Usage
    }
}
