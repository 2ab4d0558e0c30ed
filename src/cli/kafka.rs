//! `--brokers`, `--kafka-timeout` and the TLS and SASL flags (and `KAFKA_SASL_PASSWORD`) into
//! one [`Cluster`]: everything wrong with them is a usage error (exit 2) that names the fix.
//!
//! Why the choices:
//! - `--kafka-tls` trusts the system's CA store (what `curl` on the VM trusts); a minimal VM
//!   without CA files falls back to Mozilla's roots compiled into the binary. Private CAs
//!   (MSK with a private CA, Aiven's project CA) come from `--kafka-ca-file`.
//! - The SASL password is read from `KAFKA_SASL_PASSWORD` only, never a flag: flags show in
//!   `ps` and shell history.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use super::{KafkaArgs, SaslMechanismArg};
use crate::error::{Error, Result};
use crate::kafka::security::{Sasl, SaslMechanism, Secret, Security};
use crate::kafka::Cluster;

/// Where the SASL password comes from.
pub(crate) const PASSWORD_ENV: &str = "KAFKA_SASL_PASSWORD";

/// The cluster the flags describe.
pub(crate) fn cluster(args: &KafkaArgs) -> Result<Cluster> {
    if args.kafka_timeout.is_zero() {
        return Err(Error::usage("--kafka-timeout must be more than 0"));
    }
    Ok(Cluster {
        brokers: parse_brokers(&args.brokers)?,
        timeout: args.kafka_timeout,
        security: security_from(args, std::env::var(PASSWORD_ENV).ok())?,
    })
}

/// The topic flag, checked.
pub(crate) fn topic(args: &KafkaArgs) -> Result<String> {
    if args.topic.is_empty() {
        return Err(Error::usage(
            "--topic is empty; give the topic name, e.g. --topic twitterdata",
        ));
    }
    Ok(args.topic.clone())
}

/// Splits and checks `--brokers`.
pub(crate) fn parse_brokers(brokers: &str) -> Result<Vec<String>> {
    let list: Vec<String> = brokers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if list.is_empty() {
        return Err(Error::usage(
            "--brokers (KAFKA_BROKERS) is empty; give HOST:PORT[,HOST:PORT…], e.g. 127.0.0.1:9092",
        ));
    }
    for b in &list {
        let ok = b
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            return Err(Error::usage(format!(
                "--brokers entry {b:?} is not HOST:PORT; e.g. 127.0.0.1:9092"
            )));
        }
    }
    Ok(list)
}

/// Reads the security flags and checks they make sense together.
fn security_from(args: &KafkaArgs, password: Option<String>) -> Result<Security> {
    let wants_tls = args.kafka_tls
        || args.kafka_ca_file.is_some()
        || args.kafka_cert_file.is_some()
        || args.kafka_key_file.is_some();
    let tls = if wants_tls {
        Some(tls_config(args)?)
    } else {
        None
    };
    let sasl = sasl(args, password)?;
    if tls.is_none()
        && sasl
            .as_ref()
            .is_some_and(|s| s.mechanism == SaslMechanism::Plain)
    {
        tracing::warn!(
            "--sasl-mechanism plain without --kafka-tls sends the password unencrypted; add --kafka-tls"
        );
    }
    Ok(Security::new(tls, sasl))
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
        password: Secret::new(password),
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
            let system;
            (roots, system) = crate::tls::default_roots();
            if system {
                "the system CA store"
            } else {
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
pub(crate) mod tests {
    use super::*;
    use crate::cli::SaslMechanismArg;
    use std::time::Duration;

    /// Plaintext flags for a broker on localhost, topic `t` (also for other modules' tests).
    pub(crate) fn args() -> KafkaArgs {
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
        let s = security_from(&args(), None).unwrap();
        assert!(s.tls.is_none() && s.sasl.is_none());
        assert_eq!(s.describe(), "plaintext");
    }

    #[test]
    fn sasl_needs_all_three_and_never_shows_the_password() {
        let mut a = args();
        a.sasl_mechanism = Some(SaslMechanismArg::ScramSha512);
        let e = security_from(&a, Some("hunter2".into())).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("KAFKA_SASL_USERNAME"), "{e}");
        a.sasl_username = Some("alice".into());
        let e = security_from(&a, None).unwrap_err();
        assert!(e.to_string().contains(PASSWORD_ENV), "{e}");
        let s = security_from(&a, Some("hunter2".into())).unwrap();
        let shown = format!("{s:?} {:?} {}", s.sasl, s.describe());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("SCRAM-SHA-512"), "{shown}");

        let mut b = args();
        b.sasl_username = Some("alice".into());
        let e = security_from(&b, None).unwrap_err();
        assert!(e.to_string().contains("--sasl-mechanism"), "{e}");
    }

    #[test]
    fn ca_file_errors_name_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args();
        a.kafka_ca_file = Some(dir.path().join("missing.pem"));
        let e = security_from(&a, None).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("missing.pem"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        a.kafka_ca_file = Some(empty);
        let e = security_from(&a, None).unwrap_err();
        assert!(e.to_string().contains("no certificate"), "{e}");
    }

    #[test]
    fn tls_with_system_roots() {
        let mut a = args();
        a.kafka_tls = true;
        let s = security_from(&a, None).unwrap();
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
        let e = security_from(&a, None).unwrap_err();
        assert!(e.to_string().contains("--kafka-key-file"), "{e}");
    }
}
