//! TLS and SASL towards Kafka, against a real broker.
//!
//! TLS: tansu 0.6.0 takes `--cert`/`--key` but never wraps its sockets in TLS (its acceptor
//! is built and dropped), so the TLS endpoint is ours: a TLS-terminating proxy started in the
//! test with certificates generated in the test, in front of a broker of the test's own that
//! advertises the proxy's port (so every connection a client opens after bootstrap goes
//! through TLS too). The whole path runs through it: topic create (our own connection),
//! produce (rskafka), consume (rskafka fetches, our own offset commits).
//!
//! SASL: tansu's `--authentication` requires SASL (SCRAM-SHA-256/512; it does not offer
//! PLAIN). A SCRAM user can only be created through AlterUserScramCredentials, which it
//! refuses before authentication, and its storage is in memory, so no user can exist: what is
//! tested here is that the exchange runs against the real broker and that every refusal is a
//! clear error with no password in it. A successful login is tested in
//! `src/kafka/connection/mod.rs` against rsasl's SCRAM server; `scripts/test-containers
//! kafka-sasl` offers Apache Kafka's SASL listeners where Docker is available.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use support::*;
use tokio::net::{TcpListener, TcpStream};

const LIMIT: Duration = Duration::from_secs(120);

/// A CA, and a server certificate it signed for 127.0.0.1 and localhost.
struct Pki {
    ca_pem: String,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
}

fn make_pki(ca_name: &str) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca_cert, &ca_key)
        .unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        server_chain: vec![server.der().clone()],
        server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

/// Terminates TLS on `listener` and forwards the plaintext to `backend`. Counts completed
/// TLS handshakes, so the test can tell that clients really went through TLS.
fn tls_proxy(listener: TcpListener, pki: &Pki, backend: String) -> Arc<AtomicUsize> {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let handshakes = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&handshakes);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let backend = backend.clone();
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                // A client that does not trust us aborts the handshake: nothing to forward.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let mut plain = TcpStream::connect(&backend).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    handshakes
}

/// Ids of every tweet line in the consumer's output directory.
fn output_ids(dir: &Path) -> Vec<String> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("tweets-") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            ids.push(v["id"].as_str().expect("id is a string").to_string());
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn produce_and_consume_over_tls_and_clear_errors_when_tls_is_wrong() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = listener.local_addr().unwrap().to_string();
    let port = listener.local_addr().unwrap().port().to_string();
    let broker = OwnBroker::start("tls", &["--advertised-port", &port]);
    let pki = make_pki("tweetpipe test CA");
    let handshakes = tls_proxy(listener, &pki, broker.addr.clone());

    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let ca = ca.to_str().unwrap();
    let topic = topic("tls");

    let r = run(
        tweetpipe(&[
            "topic",
            "create",
            "--brokers",
            &endpoint,
            "--topic",
            &topic,
            "--partitions",
            "2",
            "--kafka-ca-file",
            ca,
        ]),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 0, "topic create over TLS: {}", r.stderr);
    let after_create = handshakes.load(Ordering::SeqCst);
    assert!(after_create >= 1, "topic create went through TLS");

    let tweets = tweets(300, 9_100_000_000);
    let input = dir.path().join("in.jsonl");
    write_lines(&input, &tweets);
    let r = run(
        tweetpipe(&[
            "produce",
            "--brokers",
            &endpoint,
            "--topic",
            &topic,
            "--from-file",
            input.to_str().unwrap(),
            "--kafka-ca-file",
            ca,
            "--stats-interval",
            "0s",
        ]),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 0, "produce over TLS: {}", r.stderr);
    assert!(
        r.stderr.contains("TLS trusting the CA of --kafka-ca-file"),
        "the start-up line says how the connection is secured: {}",
        r.stderr
    );
    let after_produce = handshakes.load(Ordering::SeqCst);
    assert!(after_produce > after_create, "produce went through TLS");

    let out = dir.path().join("out");
    let r = run(
        tweetpipe(&[
            "consume",
            "--brokers",
            &endpoint,
            "--topic",
            &topic,
            "--group",
            &topic,
            "--output",
            out.to_str().unwrap(),
            "--max-records",
            "300",
            "--fetch-wait",
            "100ms",
            "--stats-interval",
            "0s",
            "--kafka-tls",
            "--kafka-ca-file",
            ca,
        ]),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 0, "consume over TLS: {}", r.stderr);
    assert!(
        handshakes.load(Ordering::SeqCst) > after_produce,
        "consume went through TLS"
    );
    let ids = output_ids(&out);
    let want: BTreeSet<String> = (0..300u64)
        .map(|i| (9_100_000_000 + i).to_string())
        .collect();
    assert_eq!(ids.len(), 300, "each tweet once");
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), want);

    // `topic describe` on the TLS endpoint, with `extra` flags: our own connection
    // (DescribeConfigs and Metadata), and the quickest way to see a refusal.
    let describe = |extra: &[&str]| {
        let mut args = vec![
            "topic",
            "describe",
            "--brokers",
            &endpoint,
            "--topic",
            &topic,
        ];
        args.extend_from_slice(extra);
        run(tweetpipe(&args), LIMIT)
    };
    let r = describe(&["--kafka-ca-file", ca]).await;
    assert_eq!(r.code, 0, "topic describe over TLS: {}", r.stderr);

    // The system's CAs do not know our test CA: a certificate error, at once, exit 1.
    let r = run(
        tweetpipe(&[
            "produce",
            "--brokers",
            &endpoint,
            "--topic",
            &topic,
            "--from-file",
            input.to_str().unwrap(),
            "--kafka-tls",
            "--kafka-timeout",
            "10s",
        ]),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("UnknownIssuer") && r.stderr.contains("--kafka-ca-file"),
        "names the certificate problem and the fix: {}",
        r.stderr
    );

    // Another CA's file: the same refusal.
    let other = dir.path().join("other-ca.pem");
    std::fs::write(&other, make_pki("some other CA").ca_pem).unwrap();
    let r = describe(&[
        "--kafka-ca-file",
        other.to_str().unwrap(),
        "--kafka-timeout",
        "10s",
    ])
    .await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("UnknownIssuer"), "{}", r.stderr);

    // Plaintext to the TLS port: recognised as TLS, and the fix named.
    let r = describe(&["--kafka-timeout", "10s"]).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("TLS") && r.stderr.contains("--kafka-tls"),
        "{}",
        r.stderr
    );

    // A CA file that is not one: a usage error naming the file.
    let r = run(
        tweetpipe(&[
            "produce",
            "--brokers",
            &endpoint,
            "--from-file",
            input.to_str().unwrap(),
            "--kafka-ca-file",
            input.to_str().unwrap(),
        ]),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("in.jsonl"), "{}", r.stderr);
    drop(broker);
}

#[tokio::test(flavor = "multi_thread")]
async fn sasl_refusals_by_a_broker_that_requires_it_are_clear_and_keep_the_password_secret() {
    let broker = OwnBroker::start("sasl", &["--authentication"]);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    write_lines(&input, &tweets(5, 9_200_000_000));
    let input = input.to_str().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let password = format!("pw-{}-secret", std::process::id());
    let b = broker.addr.as_str();

    // Every command, every mechanism the broker offers: the SCRAM exchange runs and the
    // broker's verdict (no such user) comes back as a runtime error naming the user.
    let commands: [(&str, Vec<&str>); 4] = [
        (
            "produce",
            vec![
                "produce",
                "--brokers",
                b,
                "--topic",
                "t",
                "--from-file",
                input,
            ],
        ),
        (
            "consume",
            vec!["consume", "--brokers", b, "--topic", "t", "--output", out],
        ),
        (
            "topic create",
            vec!["topic", "create", "--brokers", b, "--topic", "t"],
        ),
        (
            "topic describe",
            vec!["topic", "describe", "--brokers", b, "--topic", "t"],
        ),
    ];
    for (name, args) in &commands {
        for (mechanism, shown) in [
            ("scram-sha-256", "SCRAM-SHA-256"),
            ("scram-sha-512", "SCRAM-SHA-512"),
        ] {
            let mut cmd = tweetpipe(args);
            cmd.args(["--sasl-mechanism", mechanism, "--kafka-timeout", "10s"])
                .env("KAFKA_SASL_USERNAME", "alice")
                .env("KAFKA_SASL_PASSWORD", &password)
                .env("TWEETPIPE_LOG", "debug");
            let r = run(cmd, LIMIT).await;
            assert_eq!(r.code, 1, "{name} {mechanism}: {}", r.stderr);
            assert!(
                r.stderr
                    .contains(&format!("refused SASL {shown} for user \"alice\""))
                    && r.stderr.contains("unknown user"),
                "{name} {mechanism}: the broker's verdict: {}",
                r.stderr
            );
            assert!(
                !r.stderr.contains(&password),
                "{name}: the password leaked: {}",
                r.stderr
            );
        }
    }

    // Without SASL the broker hangs up; the error points at the flags.
    let r = run(tweetpipe(&commands[3].1), LIMIT).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("--sasl-mechanism"), "{}", r.stderr);

    // tansu does not offer PLAIN.
    let mut cmd = tweetpipe(&commands[0].1);
    cmd.args([
        "--sasl-mechanism",
        "plain",
        "--sasl-username",
        "alice",
        "--kafka-timeout",
        "10s",
    ])
    .env("KAFKA_SASL_PASSWORD", &password);
    let r = run(cmd, LIMIT).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("does the broker offer PLAIN"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(&password), "{}", r.stderr);

    // Configuration mistakes are usage errors (2) that name the fix.
    let mut cmd = tweetpipe(&commands[0].1);
    cmd.args([
        "--sasl-mechanism",
        "scram-sha-512",
        "--sasl-username",
        "alice",
    ]);
    let r = run(cmd, LIMIT).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("KAFKA_SASL_PASSWORD"), "{}", r.stderr);
    let mut cmd = tweetpipe(&commands[0].1);
    cmd.env("KAFKA_SASL_USERNAME", "alice");
    let r = run(cmd, LIMIT).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--sasl-mechanism"), "{}", r.stderr);
    drop(broker);
}
