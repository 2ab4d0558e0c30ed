//! Helpers both kinds of tests use: the library's own tests in src/ (through
//! `src/test_support.rs`, which includes this file) and the integration tests here. It uses
//! nothing of tweetpipe, only std, tokio and serde_json.

use std::process::Stdio;

/// Runs `tests/rdkafka_client.py` (librdkafka through confluent-kafka) and returns its exit
/// code, its JSON lines and its stderr.
pub async fn rdkafka(args: &[&str]) -> (i32, Vec<serde_json::Value>, String) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rdkafka_client.py");
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("python3");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("bad JSON from rdkafka_client: {e}: {l}"))
        })
        .collect();
    (
        out.status.code().unwrap_or(-1),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A "broker" that accepts connections, reads nothing and says nothing: its address, and
/// the task holding the connections open (abort it to close them).
pub async fn silent_broker() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            conns.push(s);
        }
    });
    (addr, held)
}
