//! Tests of the Jetstream stand-in itself (tests/support/jetstream.rs), with a plain WebSocket
//! client and a plain zstd decoder, so that what is checked is what goes over the wire: the
//! source's own tests trust the stand-in; these are why they may. Its frames are also checked
//! against the reference `zstd` tool, when the machine has it.

#[path = "support/jetstream.rs"]
mod jetstream;
#[path = "support/zstd_dict.rs"]
mod zstd_dict;

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use jetstream::{real_events, synthetic_events, Standin};
use tokio_tungstenite::tungstenite::{self, Message};

const WAIT: Duration = Duration::from_secs(10);

type Client = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn connect(url: &str) -> Client {
    let stream =
        tokio::net::TcpStream::connect(url.trim_start_matches("ws://").split('/').next().unwrap())
            .await
            .unwrap();
    let (ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    ws
}

/// The next data message, decompressed if binary; `None` when the connection ends or nothing
/// comes within `wait`.
async fn next(ws: &mut Client, wait: Duration) -> Option<Result<Bytes, String>> {
    loop {
        let m = tokio::time::timeout(wait, ws.next()).await.ok()??;
        match m {
            Ok(Message::Text(t)) => return Some(Ok(Bytes::from(t))),
            Ok(Message::Binary(b)) => return Some(decompress(&b).map(Bytes::from)),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

fn decompress(frame: &[u8]) -> Result<Vec<u8>, String> {
    let mut d = ruzstd::FrameDecoder::new();
    d.add_dict(
        ruzstd::decoding::dictionary::Dictionary::decode_dict(&jetstream::dictionary()).unwrap(),
    )
    .unwrap();
    let mut out = vec![0; 4 << 20];
    let n = d.decode_all(frame, &mut out).map_err(|e| e.to_string())?;
    out.truncate(n);
    Ok(out)
}

async fn collect(ws: &mut Client, n: usize) -> Vec<Bytes> {
    let mut got = Vec::new();
    while got.len() < n {
        match next(ws, WAIT).await {
            Some(Ok(b)) => got.push(b),
            other => panic!("after {} events: {other:?}", got.len()),
        }
    }
    got
}

#[test]
fn encoder_frames_use_the_dictionary_and_decode_exactly() {
    let enc = zstd_dict::DictEncoder::new(&jetstream::dictionary());
    let mut events = real_events();
    // Beyond the real ones: empty, tiny, long repetitive, long random-ish, over a block.
    events.push(Bytes::new());
    events.push(Bytes::from_static(b"{}"));
    events.push(Bytes::from("ab".repeat(70_000)));
    events.push(Bytes::from(
        (0..300_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect::<Vec<u8>>(),
    ));
    let (mut wire, mut plain) = (0, 0);
    for e in &events {
        let frame = enc.compress(e);
        assert_eq!(decompress(&frame).unwrap(), &e[..], "{} bytes", e.len());
        wire += frame.len();
        plain += e.len();
        // The frame names the dictionary: a decoder without it refuses the frame.
        if e.len() > 100 && e.len() < 10_000 {
            let mut bare = ruzstd::FrameDecoder::new();
            let mut out = vec![0; 1 << 20];
            assert!(bare.decode_all(&frame, &mut out).is_err());
        }
    }
    // The real events compress (matches from the dictionary do most of it).
    let real: usize = real_events().iter().map(|e| e.len()).sum();
    let real_wire: usize = real_events().iter().map(|e| enc.compress(e).len()).sum();
    assert!(real_wire * 10 < real * 8, "{real_wire} of {real}");
    assert!(wire < plain);
}

/// The reference implementation decodes the stand-in's frames (skipped where `zstd` is absent).
#[test]
fn reference_zstd_decodes_the_frames() {
    if std::process::Command::new("zstd")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: no `zstd` command on this machine");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dict = dir.path().join("dict");
    std::fs::write(&dict, jetstream::dictionary()).unwrap();
    let enc = zstd_dict::DictEncoder::new(&jetstream::dictionary());
    for (i, e) in real_events().iter().enumerate().step_by(7) {
        let path = dir.path().join(format!("{i}.zst"));
        std::fs::write(&path, enc.compress(e)).unwrap();
        let out = std::process::Command::new("zstd")
            .args(["-d", "-q", "-c", "-D"])
            .arg(&dict)
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, &e[..]);
        // A frame made of a raw prefix and a tail compressed once (the benchmark's frames).
        let prefix = b"{\"did\":\"did:plc:someone\",\"time_us\":1";
        let tail = enc.compress_tail(prefix.len(), &e[e.len() / 3..]);
        let frame = enc.frame_with_tail(prefix, &tail).unwrap();
        assert_eq!(
            decompress(&frame).unwrap(),
            [&prefix[..], &e[e.len() / 3..]].concat()
        );
        std::fs::write(&path, &frame).unwrap();
        let out = std::process::Command::new("zstd")
            .args(["-d", "-q", "-c", "-D"])
            .arg(&dict)
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, [&prefix[..], &e[e.len() / 3..]].concat());
    }
}

#[tokio::test]
async fn a_synthetic_log_serves_frames_made_ahead() {
    let s = Standin::start(Vec::new()).await;
    let (first, step) = (1_783_175_888_000_000, 10);
    s.serve_synthetic(1000, first, step);
    let want = synthetic_events(1000, first, step);
    let mut ws = connect(&format!("{}?cursor=0&compress=true", s.url())).await;
    assert_eq!(collect(&mut ws, 1000).await, want);
    // The cursor lands on the first event at or after it.
    let mut ws = connect(&format!("{}?cursor={}", s.url(), first + 500 * step - 3)).await;
    assert_eq!(collect(&mut ws, 500).await, want[500..]);
    // Unique accounts and times: every event its own identity.
    let dids: std::collections::HashSet<_> = want
        .iter()
        .map(|e| serde_json::from_slice::<serde_json::Value>(e).unwrap()["did"].clone())
        .collect();
    assert_eq!(dids.len(), 1000);
}

#[tokio::test]
async fn serves_from_a_cursor_compressed_or_not() {
    let events = real_events();
    let s = Standin::start(events.clone()).await;
    let times: Vec<i64> = events
        .iter()
        .map(|e| {
            serde_json::from_slice::<serde_json::Value>(e).unwrap()["time_us"]
                .as_i64()
                .unwrap()
        })
        .collect();
    // No cursor: the live tip; nothing until something is pushed.
    let mut ws = connect(&s.url()).await;
    assert!(next(&mut ws, Duration::from_millis(300)).await.is_none());
    s.push(synthetic_events(3, times[151] + 1, 1));
    assert_eq!(
        collect(&mut ws, 3).await,
        synthetic_events(3, times[151] + 1, 1)
    );

    // A cursor: the first event at or after it, then in log order (time_us is not monotonic
    // in the real log: event 1 is later than event 2).
    for compress in [false, true] {
        let url = format!("{}?cursor={}&compress={compress}", s.url(), times[1]);
        let mut ws = connect(&url).await;
        let got = collect(&mut ws, 151 + 3).await;
        assert_eq!(&got[..151], &events[1..]);
    }
    // A cursor older than everything kept: the oldest kept.
    s.forget_before(100);
    let mut ws = connect(&format!("{}?cursor=1", s.url())).await;
    assert_eq!(collect(&mut ws, 52).await[..52], events[100..]);
    let seen = s.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[2].param("compress").as_deref(), Some("true"));
}

#[tokio::test]
async fn filters_collections_and_accounts_like_jetstream() {
    let events = real_events();
    let s = Standin::start(events.clone()).await;
    let json: Vec<serde_json::Value> = events
        .iter()
        .map(|e| serde_json::from_slice(e).unwrap())
        .collect();
    let expect = |keep: &dyn Fn(&serde_json::Value) -> bool| -> Vec<Bytes> {
        events
            .iter()
            .zip(&json)
            .filter(|(_, j)| keep(j))
            .map(|(e, _)| e.clone())
            .collect()
    };
    // Posts only: identity and account events pass anyway.
    let want =
        expect(&|j| j["kind"] != "commit" || j["commit"]["collection"] == "app.bsky.feed.post");
    assert_eq!(want.len(), 18 + 2);
    let mut ws = connect(&format!(
        "{}?wantedCollections=app.bsky.feed.post&cursor=0",
        s.url()
    ))
    .await;
    assert_eq!(collect(&mut ws, want.len()).await, want);
    assert!(next(&mut ws, Duration::from_millis(200)).await.is_none());
    // A prefix.
    let want = expect(&|j| {
        j["kind"] != "commit"
            || j["commit"]["collection"]
                .as_str()
                .unwrap()
                .starts_with("app.bsky.graph.")
    });
    let mut ws = connect(&format!(
        "{}?wantedCollections=app.bsky.graph.*&cursor=0",
        s.url()
    ))
    .await;
    assert_eq!(collect(&mut ws, want.len()).await, want);
    // One account, in hello mode: nothing before the options_update.
    let did = json[150]["did"].as_str().unwrap().to_string();
    let want = expect(&|j| j["did"] == did.as_str());
    assert_eq!(want.len(), 2, "the identity and the account event");
    let mut ws = connect(&format!("{}?requireHello=true&cursor=0", s.url())).await;
    assert!(next(&mut ws, Duration::from_millis(200)).await.is_none());
    let hello = serde_json::json!({"type":"options_update","payload":{"wantedDids":[did],"wantedCollections":[],"maxMessageSizeBytes":0}});
    ws.send(Message::text(hello.to_string())).await.unwrap();
    assert_eq!(collect(&mut ws, 2).await, want);
    assert!(s.seen().last().unwrap().hello.is_some());
}

#[tokio::test]
async fn faults() {
    let events = real_events();
    let s = Standin::start(events.clone()).await;
    let from0 = format!("{}?cursor=0", s.url());

    // HTTP statuses instead of the upgrade, with their bodies.
    s.faults().http = vec![
        (503, "service not ready: bootstrap in progress".into()),
        (400, "invalid collection: x".into()),
    ];
    for want in [503, 400] {
        let stream = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
        match tokio_tungstenite::client_async(from0.as_str(), stream).await {
            Err(tungstenite::Error::Http(r)) => assert_eq!(r.status().as_u16(), want),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
    // Dropped after 5 events, without a close frame.
    s.faults().drop_after = Some(5);
    let mut ws = connect(&from0).await;
    collect(&mut ws, 5).await;
    match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        None | Some(Err(_)) => {}
        other => panic!("expected an abrupt end, got {other:?}"),
    }
    // Closed with a code after 3.
    s.faults().close_after = Some((3, 1001, "server shutting down".into()));
    let mut ws = connect(&from0).await;
    collect(&mut ws, 3).await;
    match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(u16::from(f.code), 1001),
        other => panic!("{other:?}"),
    }
    // A damaged compressed frame at index 2, once.
    s.faults().bad_frame_at = Some(2);
    let mut ws = connect(&format!("{from0}&compress=true")).await;
    assert_eq!(next(&mut ws, WAIT).await.unwrap().unwrap(), events[0]);
    assert_eq!(next(&mut ws, WAIT).await.unwrap().unwrap(), events[1]);
    assert!(next(&mut ws, WAIT).await.unwrap().is_err());
    assert_eq!(next(&mut ws, WAIT).await.unwrap().unwrap(), events[3]);
    // maxMessageSizeBytes skips the larger events, unless told to ignore it.
    let longest = events.iter().map(|e| e.len()).max().unwrap();
    let url = format!("{from0}&maxMessageSizeBytes={}", longest - 1);
    let mut ws = connect(&url).await;
    assert_eq!(collect(&mut ws, 151).await.len(), 151);
    assert!(next(&mut ws, Duration::from_millis(200)).await.is_none());
    s.faults().ignore_max_message_size = true;
    let mut ws = connect(&url).await;
    assert_eq!(collect(&mut ws, 152).await, events);
    // Silent: accepted, then no pong to a ping.
    s.faults().silent = true;
    let mut ws = connect(&from0).await;
    ws.send(Message::Ping(Bytes::from_static(b"hi")))
        .await
        .unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(500), ws.next())
        .await
        .is_err());
    s.faults().silent = false;
    // Otherwise pings are answered.
    let mut ws = connect(&s.url()).await;
    ws.send(Message::Ping(Bytes::from_static(b"hi")))
        .await
        .unwrap();
    match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Message::Pong(p))) => assert_eq!(&p[..], b"hi"),
        other => panic!("{other:?}"),
    }
}
