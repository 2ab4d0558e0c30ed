//! TLS and SASL towards Kafka: what managed clusters (Confluent Cloud, Amazon MSK, Aiven) ask
//! of a client, turned from flags and environment into one [`Security`] that both of our Kafka
//! paths use: rskafka's connections (produce, fetch) and our own connection (topic admin,
//! group offsets). Both must authenticate alike, or a consumer would fetch and then fail to
//! commit.
//!
//! Why the choices:
//! - rustls with ring, like the Twitter client: no OpenSSL, nothing but ring's own C.
//! - `--kafka-tls` trusts the system's CA store (what `curl` on the VM trusts); a minimal VM
//!   without CA files falls back to Mozilla's roots compiled into the binary. Private CAs
//!   (MSK with a private CA, Aiven's project CA) come from `--kafka-ca-file`.
//! - The SASL password is read from `KAFKA_SASL_PASSWORD` only, never a flag: flags show in
//!   `ps` and shell history. It lives in [`Secret`], whose `Debug` prints nothing of it.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::cli::{KafkaArgs, SaslMechanismArg};
use crate::error::{Error, Result};

/// Where the SASL password comes from.
pub const PASSWORD_ENV: &str = "KAFKA_SASL_PASSWORD";

/// How to secure every connection to the brokers. The default is plaintext, no SASL.
#[derive(Clone, Default)]
pub struct Security {
    /// `None`: plaintext TCP.
    pub tls: Option<Arc<ClientConfig>>,
    /// Where the trusted roots came from, for the start-up log line.
    tls_roots: &'static str,
    pub sasl: Option<Sasl>,
}

/// SASL mechanism and credentials.
#[derive(Clone, Debug)]
pub struct Sasl {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: Secret,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl SaslMechanism {
    /// The name Kafka's SaslHandshake uses.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// A password: usable, never printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    pub fn expose(&self) -> &str {
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
    /// Reads the security flags (and `KAFKA_SASL_PASSWORD`) and checks they make sense
    /// together. Everything wrong here is a usage error (exit 2) that names the fix.
    pub fn from_args(args: &KafkaArgs) -> Result<Security> {
        Self::from_parts(args, std::env::var(PASSWORD_ENV).ok())
    }

    fn from_parts(args: &KafkaArgs, password: Option<String>) -> Result<Security> {
        let mut security = Security::default();
        let wants_tls = args.kafka_tls
            || args.kafka_ca_file.is_some()
            || args.kafka_cert_file.is_some()
            || args.kafka_key_file.is_some();
        if wants_tls {
            let (config, roots) = tls_config(args)?;
            security.tls = Some(Arc::new(config));
            security.tls_roots = roots;
        }
        security.sasl = sasl(args, password)?;
        if security.tls.is_none()
            && security
                .sasl
                .as_ref()
                .is_some_and(|s| s.mechanism == SaslMechanism::Plain)
        {
            tracing::warn!(
                "--sasl-mechanism plain without --kafka-tls sends the password unencrypted; add --kafka-tls"
            );
        }
        Ok(security)
    }

    /// One line for the start-up log: what protects the connection, never a secret.
    pub fn describe(&self) -> String {
        let tls = match &self.tls {
            Some(_) => format!("TLS trusting {}", self.tls_roots),
            None => "plaintext".to_string(),
        };
        match &self.sasl {
            Some(s) => format!("{tls}, SASL {} as {:?}", s.mechanism.name(), s.username),
            None => tls,
        }
    }

    /// What to check when the brokers cannot be reached or refuse us, given these settings.
    pub fn hint(&self) -> String {
        let mut hint = String::from(
            "Check --brokers (KAFKA_BROKERS) and that the brokers are up and reachable from here",
        );
        match (&self.tls, &self.sasl) {
            (None, None) => hint.push_str(
                "; a managed cluster (Confluent Cloud, MSK, Aiven) also needs --kafka-tls and \
                 usually --sasl-mechanism",
            ),
            (Some(_), _) => hint.push_str(
                "; for TLS, that the port is the brokers' TLS listener and that their \
                 certificate is signed by a CA we trust (--kafka-ca-file) for the host name in \
                 --brokers",
            ),
            (None, Some(_)) => {}
        }
        if self.sasl.is_some() {
            hint.push_str(&format!(
                "; for SASL, --sasl-mechanism, KAFKA_SASL_USERNAME and {PASSWORD_ENV}"
            ));
        }
        hint
    }

    /// The same settings for rskafka's connections.
    pub fn rskafka_sasl(&self) -> Option<rskafka::client::SaslConfig> {
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

fn sasl(args: &KafkaArgs, password: Option<String>) -> Result<Option<Sasl>> {
    let username = args.sasl_username.clone().filter(|u| !u.is_empty());
    let password = password.filter(|p| !p.is_empty());
    let Some(mechanism) = args.sasl_mechanism else {
        if username.is_some() || password.is_some() {
            return Err(Error::usage(format!(
                "a SASL {} is set but --sasl-mechanism (KAFKA_SASL_MECHANISM) is not; add \
                 --sasl-mechanism plain|scram-sha-256|scram-sha-512 (your provider's docs say \
                 which), or unset KAFKA_SASL_USERNAME and {PASSWORD_ENV}",
                if username.is_some() {
                    "username"
                } else {
                    "password"
                }
            )));
        };
        return Ok(None);
    };
    let mechanism = match mechanism {
        SaslMechanismArg::Plain => SaslMechanism::Plain,
        SaslMechanismArg::ScramSha256 => SaslMechanism::ScramSha256,
        SaslMechanismArg::ScramSha512 => SaslMechanism::ScramSha512,
    };
    let Some(username) = username else {
        return Err(Error::usage(format!(
            "--sasl-mechanism {} needs a username: set --sasl-username or KAFKA_SASL_USERNAME \
             (Confluent Cloud: the API key)",
            mechanism.name()
        )));
    };
    let Some(password) = password else {
        return Err(Error::usage(format!(
            "--sasl-mechanism {} needs a password: set the environment variable {PASSWORD_ENV} \
             (Confluent Cloud: the API secret). It is read from the environment only, never \
             from a flag, so it does not show in `ps`",
            mechanism.name()
        )));
    };
    Ok(Some(Sasl {
        mechanism,
        username,
        password: Secret(password),
    }))
}

fn tls_config(args: &KafkaArgs) -> Result<(ClientConfig, &'static str)> {
    let mut roots = RootCertStore::empty();
    let source = match &args.kafka_ca_file {
        Some(path) => {
            let certs = read_certs(path, "--kafka-ca-file")?;
            let (added, _ignored) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(Error::usage(format!(
                    "--kafka-ca-file {}: no usable CA certificate in it; give the PEM file of \
                     the CA that signed the brokers' certificates",
                    path.display()
                )));
            }
            "the CA of --kafka-ca-file"
        }
        None => {
            // Errors for single unreadable files are normal (a broken symlink in
            // /etc/ssl/certs); what counts is whether any root was found.
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added > 0 {
                "the system CA store"
            } else {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                tracing::info!(
                    "no CA certificates in the system store; trusting the Mozilla roots built into tweetpipe"
                );
                "the built-in Mozilla roots"
            }
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::runtime(format!("setting up TLS: {e}")))?
        .with_root_certificates(roots);
    let config = match (&args.kafka_cert_file, &args.kafka_key_file) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert, "--kafka-cert-file")?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                Error::usage(format!(
                    "--kafka-key-file {}: no private key read ({e}); give the PEM private key \
                     of --kafka-cert-file (e.g. Aiven's service.key)",
                    key.display()
                ))
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                Error::usage(format!(
                    "--kafka-cert-file {} and --kafka-key-file {} do not make a usable client \
                     certificate: {e}",
                    cert.display(),
                    args.kafka_key_file
                        .as_deref()
                        .unwrap_or(Path::new(""))
                        .display()
                ))
            })?
        }
        (Some(_), None) => {
            return Err(Error::usage(
                "--kafka-cert-file needs --kafka-key-file (the certificate's private key)",
            ))
        }
        (None, Some(_)) => {
            return Err(Error::usage(
                "--kafka-key-file needs --kafka-cert-file (the client certificate)",
            ))
        }
    };
    Ok((config, source))
}

fn read_certs(path: &Path, flag: &str) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::usage(format!(
            "{flag} {}: cannot read it ({e}); give the path of a PEM file",
            path.display()
        ))
    })?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| {
            Error::usage(format!(
                "{flag} {}: not a PEM certificate file ({e})",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::usage(format!(
            "{flag} {}: no certificate in it; give a PEM file with -----BEGIN CERTIFICATE----- blocks",
            path.display()
        )));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn args() -> KafkaArgs {
        KafkaArgs {
            brokers: "127.0.0.1:9092".into(),
            topic: "t".into(),
            kafka_timeout: Duration::from_secs(1),
            kafka_tls: false,
            kafka_ca_file: None,
            kafka_cert_file: None,
            kafka_key_file: None,
            sasl_mechanism: None,
            sasl_username: None,
        }
    }

    #[test]
    fn plaintext_by_default() {
        let s = Security::from_parts(&args(), None).unwrap();
        assert!(s.tls.is_none() && s.sasl.is_none());
        assert_eq!(s.describe(), "plaintext");
    }

    #[test]
    fn sasl_needs_all_three_and_never_shows_the_password() {
        let mut a = args();
        a.sasl_mechanism = Some(SaslMechanismArg::ScramSha512);
        let e = Security::from_parts(&a, Some("hunter2".into())).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("KAFKA_SASL_USERNAME"), "{e}");
        a.sasl_username = Some("alice".into());
        let e = Security::from_parts(&a, None).unwrap_err();
        assert!(e.to_string().contains(PASSWORD_ENV), "{e}");
        let s = Security::from_parts(&a, Some("hunter2".into())).unwrap();
        let shown = format!("{s:?} {:?} {}", s.sasl, s.describe());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("SCRAM-SHA-512"), "{shown}");

        let mut b = args();
        b.sasl_username = Some("alice".into());
        let e = Security::from_parts(&b, None).unwrap_err();
        assert!(e.to_string().contains("--sasl-mechanism"), "{e}");
    }

    #[test]
    fn ca_file_errors_name_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args();
        a.kafka_ca_file = Some(dir.path().join("missing.pem"));
        let e = Security::from_parts(&a, None).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("missing.pem"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        a.kafka_ca_file = Some(empty);
        let e = Security::from_parts(&a, None).unwrap_err();
        assert!(e.to_string().contains("no certificate"), "{e}");
    }

    #[test]
    fn tls_with_system_roots() {
        let mut a = args();
        a.kafka_tls = true;
        let s = Security::from_parts(&a, None).unwrap();
        assert!(s.tls.is_some());
        assert!(
            s.describe().starts_with("TLS trusting "),
            "{}",
            s.describe()
        );
    }

    #[test]
    fn client_certificate_needs_its_key() {
        let mut a = args();
        a.kafka_cert_file = Some("cert.pem".into());
        let e = Security::from_parts(&a, None).unwrap_err();
        assert!(e.to_string().contains("--kafka-key-file"), "{e}");
    }
}
