//! TLS and SASL towards Kafka: what managed clusters (Confluent Cloud, Amazon MSK, Aiven) ask
//! of a client, as one [`Security`] that both of our Kafka paths use: rskafka's connections
//! (produce, fetch) and our own connection (topic admin, group offsets). Both must
//! authenticate alike, or a consumer would fetch and then fail to commit. The command line
//! builds it (`cli::kafka`); rustls runs on ring, like the Twitter client: no OpenSSL.
//!
//! The SASL password lives in [`Secret`], whose `Debug` prints nothing of it.

use std::fmt;
use std::sync::Arc;

use rustls::ClientConfig;

/// How to secure every connection to the brokers. The default is plaintext, no SASL.
#[derive(Clone, Default)]
pub(crate) struct Security {
    /// `None`: plaintext TCP.
    pub(crate) tls: Option<Arc<ClientConfig>>,
    /// Where the trusted roots came from, for the start-up log line.
    tls_roots: &'static str,
    pub(crate) sasl: Option<Sasl>,
}

/// SASL mechanism and credentials.
#[derive(Clone, Debug)]
pub(crate) struct Sasl {
    pub(crate) mechanism: SaslMechanism,
    pub(crate) username: String,
    pub(crate) password: Secret,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl SaslMechanism {
    /// The name Kafka's SaslHandshake uses.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// A password: usable, never printed.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Security {
    /// TLS with `config` (`roots` says whose CAs it trusts, for the log) when given, and SASL.
    pub(crate) fn new(tls: Option<(ClientConfig, &'static str)>, sasl: Option<Sasl>) -> Security {
        let (tls, tls_roots) = match tls {
            Some((config, roots)) => (Some(Arc::new(config)), roots),
            None => (None, ""),
        };
        Security {
            tls,
            tls_roots,
            sasl,
        }
    }

    /// One line for the start-up log: what protects the connection, never a secret.
    pub(crate) fn describe(&self) -> String {
        let tls = match &self.tls {
            Some(_) => format!("TLS trusting {}", self.tls_roots),
            None => "plaintext".to_string(),
        };
        match &self.sasl {
            Some(s) => format!("{tls}, SASL {} as {:?}", s.mechanism.name(), s.username),
            None => tls,
        }
    }

    /// The same settings for rskafka's connections.
    pub(crate) fn rskafka_sasl(&self) -> Option<rskafka::client::SaslConfig> {
        use rskafka::client::{Credentials, SaslConfig};
        let s = self.sasl.as_ref()?;
        let creds = Credentials::new(s.username.clone(), s.password.expose().to_string());
        Some(match s.mechanism {
            SaslMechanism::Plain => SaslConfig::Plain(creds),
            SaslMechanism::ScramSha256 => SaslConfig::ScramSha256(creds),
            SaslMechanism::ScramSha512 => SaslConfig::ScramSha512(creds),
        })
    }
}
