//! The read loop against the local Jetstream stand-in (tests/support/jetstream.rs, the same
//! one the end-to-end tests and the benchmark use): real WebSocket connections, real
//! dictionary-compressed frames, real faults. The output here keeps the first frame of each
//! identity and counts the repeats, as the intake's dedupe does, so that "every event once" is
//! checked on what would reach Kafka.

#[path = "../../../tests/support/jetstream.rs"]
mod standin;
#[path = "../../../tests/support/zstd_dict.rs"]
mod zstd_dict;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use standin::{real_events, synthetic_events, Standin};

use super::error::JetstreamError;
use super::instances::Instances;
use super::run::{run, JetstreamConfig};
use super::stats::JetstreamStats;
use super::subscribe::{Endpoint, Subscription};
use crate::backoff::BackoffPolicy;
use crate::error::{Classify, Kind};
use crate::shutdown::Shutdown;
use crate::source::{End, Flow, Frame, FrameKind, Output, SourceStats};

const LIMIT: Duration = Duration::from_secs(20);

/// What the source counts: its own, and what every live source does.
#[derive(Default)]
struct Counters {
    js: JetstreamStats,
    common: SourceStats,
}

/// Keeps the first frame of each identity; stops after `want` kept.
#[derive(Default)]
struct Kept {
    frames: Vec<Frame>,
    ids: HashSet<Bytes>,
    repeats: usize,
    want: usize,
}

impl Kept {
    fn want(n: usize) -> Self {
        Kept {
            want: n,
            ..Kept::default()
        }
    }
    fn values(&self) -> Vec<Bytes> {
        self.frames.iter().map(|f| f.value.clone()).collect()
    }
}

impl Output for Kept {
    fn offer(&mut self, frame: Frame) -> Flow {
        if let Some(id) = &frame.dedupe {
            if !self.ids.insert(id.clone()) {
                self.repeats += 1;
                return Flow::Continue;
            }
        }
        self.frames.push(frame);
        if self.frames.len() >= self.want {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    async fn send(&mut self, frame: Frame) -> Flow {
        self.offer(frame)
    }
}

fn config(urls: &[String]) -> JetstreamConfig {
    let instances = Instances::new(urls.iter().map(|u| Endpoint::parse(u).unwrap()).collect());
    let sub = Subscription::new(vec![], vec![], true, 0).unwrap();
    let mut c = JetstreamConfig::new(instances, sub);
    c.ping_interval = Duration::from_millis(50);
    c.stall_timeout = Duration::from_millis(400);
    c.connect_timeout = Duration::from_secs(2);
    c.backoff = BackoffPolicy {
        network_step: Duration::from_millis(10),
        network_max: Duration::from_millis(50),
        http_initial: Duration::from_millis(20),
        http_max: Duration::from_millis(100),
        rate_limit_initial: Duration::from_millis(20),
        rate_limit_max: Duration::from_millis(100),
    };
    c
}

fn time_us(event: &[u8]) -> i64 {
    serde_json::from_slice::<serde_json::Value>(event).unwrap()["time_us"]
        .as_i64()
        .unwrap()
}

/// Runs the source until it stops by itself (or the test's time limit).
async fn run_until_stopped(cfg: JetstreamConfig, out: &mut Kept, stats: &Counters) -> End {
    tokio::time::timeout(
        LIMIT,
        run(cfg, out, &stats.js, &stats.common, &Shutdown::new()),
    )
    .await
    .expect("the source stops within the limit")
    .expect("no error")
}

#[tokio::test]
async fn reads_every_event_compressed_or_not() {
    let events = real_events();
    let s = Standin::start(events.clone()).await;
    for compress in [true, false] {
        let mut cfg = config(&[s.url()]);
        cfg.subscription.compress = compress;
        cfg.start = Some((time_us(&events[0]), Some(0)));
        let stats = Counters::default();
        let mut out = Kept::want(152);
        assert_eq!(run_until_stopped(cfg, &mut out, &stats).await, End::Stopped);
        assert_eq!(out.values(), events);
        assert_eq!(JetstreamStats::get(&stats.js.connects), 1);
        assert_eq!(JetstreamStats::get(&stats.js.commits), 150);
        assert_eq!(JetstreamStats::get(&stats.js.identities), 1);
        let wire = JetstreamStats::get(&stats.js.wire_bytes);
        let plain = JetstreamStats::get(&stats.js.event_bytes);
        assert_eq!(plain, events.iter().map(|e| e.len() as u64).sum::<u64>());
        assert_eq!(compress, wire < plain, "{wire} on the wire for {plain}");
        let seen = s.seen();
        let last = seen.last().unwrap();
        assert_eq!(last.param("compress").is_some(), compress);
        assert_eq!(last.params("wantedCollections"), Vec::<String>::new());
        // The kept cursor, rewound (an instance is named: the short rewind).
        assert_eq!(
            last.param("cursor").unwrap(),
            (time_us(&events[0]) - 5_000_000).to_string()
        );
        // The server is told to skip what we could never take.
        assert_eq!(
            last.param("maxMessageSizeBytes").unwrap(),
            (4 << 20).to_string()
        );
    }
}

#[tokio::test]
async fn reconnects_resume_from_the_last_event_and_lose_nothing() {
    // 3,000 events 10 ms apart: a 5 s rewind replays up to 500 of them.
    let events = synthetic_events(3000, 1_783_175_888_000_000, 10_000);
    let s = Standin::start(events.clone()).await;
    {
        let mut f = s.faults();
        f.http = vec![(503, "service not ready: cursor replay warming up".into())];
        f.drop_after = Some(700);
        f.close_after = Some((900, 1011, "internal error".into()));
    }
    let mut cfg = config(&[s.url()]);
    cfg.start = Some((time_us(&events[0]), Some(0)));
    let stats = Counters::default();
    let mut out = Kept::want(3000);
    assert_eq!(run_until_stopped(cfg, &mut out, &stats).await, End::Stopped);
    assert_eq!(out.values(), events, "every event, once, in order");
    assert!(out.repeats > 0, "the rewind replayed an overlap");
    let seen = s.seen();
    assert_eq!(seen.len(), 4, "503, dropped, closed, then the rest");
    // Each reconnect resumed 5 s before the last event read.
    let last_read = |n: usize| time_us(&events[n - 1]);
    assert_eq!(
        seen[2].param("cursor").unwrap(),
        (last_read(700) - 5_000_000).to_string()
    );
    let resumed_at = (last_read(700) - 5_000_000 - time_us(&events[0])) / 10_000;
    let second_end = resumed_at as usize + 900;
    assert_eq!(
        seen[3].param("cursor").unwrap(),
        (last_read(second_end) - 5_000_000).to_string()
    );
    assert_eq!(
        SourceStats::get(&stats.common.reconnects_http),
        2,
        "the 503 and the 1011"
    );
    assert_eq!(SourceStats::get(&stats.common.reconnects_network), 1);
    assert_eq!(JetstreamStats::get(&stats.js.last_close_code), 1011);
    assert_eq!(JetstreamStats::get(&stats.js.connects), 3);
}

#[tokio::test]
async fn a_quiet_stream_is_not_a_stall() {
    // Connected at the live tip with nothing to send: only pongs come back.
    let s = Standin::start(Vec::new()).await;
    let stats = Arc::new(Counters::default());
    let shutdown = Shutdown::new();
    let task = {
        let (cfg, stats, shutdown) = (config(&[s.url()]), stats.clone(), shutdown.clone());
        tokio::spawn(async move {
            let mut out = Kept::want(usize::MAX);
            run(cfg, &mut out, &stats.js, &stats.common, &shutdown)
                .await
                .map(|e| (e, out.frames))
        })
    };
    // Three stall timeouts' worth of silence.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(JetstreamStats::get(&stats.js.stalls), 0);
    assert_eq!(JetstreamStats::get(&stats.js.connects), 1);
    assert!(
        JetstreamStats::get(&stats.js.pongs) >= 10,
        "pongs keep it alive"
    );
    // Live events still arrive on the same connection.
    let events = synthetic_events(3, 1_783_175_888_000_000, 1);
    s.push(events.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    shutdown.trigger();
    let (end, frames) = task.await.unwrap().unwrap();
    assert_eq!(end, End::Shutdown);
    let values: Vec<Bytes> = frames.into_iter().map(|f| f.value).collect();
    assert_eq!(values, events);
    assert_eq!(s.seen().len(), 1);
}

#[tokio::test]
async fn a_connection_that_goes_silent_stalls_and_reconnects() {
    let events = synthetic_events(100, 1_783_175_888_000_000, 1000);
    let s = Standin::start(events.clone()).await;
    s.faults().silent = true;
    let mut cfg = config(&[s.url()]);
    cfg.start = Some((time_us(&events[0]), Some(0)));
    let stats = Arc::new(Counters::default());
    let task = {
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut out = Kept::want(100);
            let end = run(cfg, &mut out, &stats.js, &stats.common, &Shutdown::new()).await;
            (end.unwrap(), out)
        })
    };
    assert!(
        s.wait_for_requests(2, LIMIT).await,
        "reconnected after the stall"
    );
    s.faults().silent = false;
    let (end, out) = tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
    assert_eq!(end, End::Stopped);
    assert_eq!(out.values(), events);
    assert!(JetstreamStats::get(&stats.js.stalls) >= 1);
}

#[tokio::test]
async fn oversized_events_are_skipped_and_counted_without_reconnecting() {
    let events = real_events();
    let s = Standin::start(events.clone()).await;
    let limit = 600;
    let small: Vec<Bytes> = events
        .iter()
        .filter(|e| e.len() <= limit)
        .cloned()
        .collect();
    let large = events.len() - small.len();
    assert!(large > 5 && small.len() > 100);
    for compress in [true, false] {
        let mut cfg = config(&[s.url()]);
        cfg.subscription.compress = compress;
        cfg.max_record_bytes = limit;
        cfg.start = Some((time_us(&events[0]), Some(0)));
        // The server's own cap is above our limit: it sends them, we skip them.
        s.faults().ignore_max_message_size = false;
        let stats = Counters::default();
        let mut out = Kept::want(small.len());
        run_until_stopped(cfg, &mut out, &stats).await;
        assert_eq!(out.values(), small);
        assert_eq!(SourceStats::get(&stats.common.oversized), large as u64);
        assert_eq!(JetstreamStats::get(&stats.js.connects), 1);
    }
}

#[tokio::test]
async fn a_bad_frame_reconnects_without_compression_and_loses_nothing() {
    let events = real_events();
    let s = Standin::start(events.clone()).await;
    s.faults().bad_frame_at = Some(40);
    let mut cfg = config(&[s.url()]);
    cfg.start = Some((time_us(&events[0]), Some(0)));
    let stats = Counters::default();
    let mut out = Kept::want(152);
    run_until_stopped(cfg, &mut out, &stats).await;
    assert_eq!(out.values(), events);
    assert_eq!(JetstreamStats::get(&stats.js.bad_frames), 1);
    let seen = s.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].param("compress").as_deref(), Some("true"));
    assert_eq!(seen[1].param("compress"), None);
}

#[tokio::test]
async fn a_refused_subscription_is_a_configuration_error_once_every_instance_refused() {
    let a = Standin::start(Vec::new()).await;
    let b = Standin::start(Vec::new()).await;
    a.faults().http = vec![(400, "invalid collection: app..x".into())];
    b.faults().http = vec![(400, "invalid collection: app..x".into())];
    let cfg = config(&[a.url(), b.url()]);
    let stats = Counters::default();
    let mut out = Kept::want(1);
    let err = tokio::time::timeout(
        LIMIT,
        run(cfg, &mut out, &stats.js, &stats.common, &Shutdown::new()),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert!(matches!(err, JetstreamError::Refused { .. }), "{err:?}");
    assert_eq!(err.kind(), Kind::Usage);
    let msg = err.to_string();
    assert!(
        msg.contains("invalid collection: app..x") && msg.contains("HTTP 400"),
        "{msg}"
    );
    assert_eq!((a.seen().len(), b.seen().len()), (1, 1));
}

#[tokio::test]
async fn fails_over_to_the_next_instance_with_a_longer_rewind() {
    let events = synthetic_events(200, 1_783_175_888_000_000, 1000);
    let down = Standin::start(events.clone()).await;
    down.faults().http = vec![(503, "service not ready".into()); 50];
    let up = Standin::start(events.clone()).await;
    let mut cfg = config(&[down.url(), up.url()]);
    cfg.start = Some((time_us(&events[100]), Some(0)));
    let stats = Counters::default();
    let mut out = Kept::want(200);
    run_until_stopped(cfg, &mut out, &stats).await;
    assert_eq!(out.values(), events, "60 s back covers all 200");
    assert_eq!(JetstreamStats::get(&stats.js.fail_overs), 1);
    assert_eq!(
        up.seen()[0].param("cursor").unwrap(),
        (time_us(&events[100]) - 60_000_000).to_string()
    );
    assert_eq!(SourceStats::get(&stats.common.last_http_status), 101);
}

#[tokio::test]
async fn a_cursor_older_than_the_server_keeps_is_reported_as_a_gap() {
    let events = real_events();
    let s = Standin::start(events.clone()).await;
    s.forget_before(100);
    let mut cfg = config(&[s.url()]);
    cfg.start = Some((time_us(&events[10]), Some(0)));
    let stats = Counters::default();
    let mut out = Kept::want(52);
    run_until_stopped(cfg, &mut out, &stats).await;
    assert_eq!(out.values(), events[100..]);
    assert_eq!(SourceStats::get(&stats.common.gaps), 1);
    // Resuming where the server still has everything: no gap.
    s.forget_before(0);
    let mut cfg = config(&[s.url()]);
    cfg.start = Some((time_us(&events[10]), Some(0)));
    let stats = Counters::default();
    let mut out = Kept::want(100);
    run_until_stopped(cfg, &mut out, &stats).await;
    assert_eq!(SourceStats::get(&stats.common.gaps), 0);
}

#[tokio::test]
async fn filters_reach_the_server_long_ones_in_a_hello() {
    let events = real_events();
    let s = Standin::start(events.clone()).await;
    let json: Vec<serde_json::Value> = events
        .iter()
        .map(|e| serde_json::from_slice(e).unwrap())
        .collect();
    // 400 accounts, three of them real: too long for a URL.
    let mut dids: Vec<String> = (0..397).map(|i| format!("did:plc:nobody{i:017}")).collect();
    let chosen: Vec<String> = [2usize, 3, 150]
        .iter()
        .map(|&i| json[i]["did"].as_str().unwrap().to_string())
        .collect();
    dids.extend(chosen.iter().cloned());
    let mut cfg = config(&[s.url()]);
    cfg.subscription = Subscription::new(vec!["app.bsky.feed.post".into()], dids, true, 0).unwrap();
    cfg.start = Some((time_us(&events[0]), Some(0)));
    let want: Vec<Bytes> = events
        .iter()
        .zip(&json)
        .filter(|(_, j)| {
            chosen.iter().any(|d| j["did"] == d.as_str())
                && (j["kind"] != "commit" || j["commit"]["collection"] == "app.bsky.feed.post")
        })
        .map(|(e, _)| e.clone())
        .collect();
    assert!(want.len() >= 3);
    let stats = Counters::default();
    let mut out = Kept::want(want.len());
    run_until_stopped(cfg, &mut out, &stats).await;
    assert_eq!(out.values(), want);
    let seen = s.seen();
    assert_eq!(seen[0].param("requireHello").as_deref(), Some("true"));
    assert!(seen[0]
        .hello
        .as_ref()
        .unwrap()
        .contains("nobody00000000000000396"));
}

#[tokio::test]
async fn over_tls_with_our_rustls_configuration() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca_cert, &ca_key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let events = real_events();
    let s = Standin::start_tls(events.clone(), Arc::new(server)).await;
    let url = format!("wss://localhost:{}/subscribe", s.addr().port());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_cert.der().clone()).unwrap();

    let mut cfg = config(std::slice::from_ref(&url));
    cfg.tls = super::connect::with_roots(roots);
    cfg.start = Some((time_us(&events[0]), Some(0)));
    let stats = Counters::default();
    let mut out = Kept::want(152);
    run_until_stopped(cfg, &mut out, &stats).await;
    assert_eq!(out.values(), events);

    // The system's roots do not trust this CA: a TLS failure, retried (never plain text).
    let mut cfg = config(std::slice::from_ref(&url));
    cfg.tls = super::connect::with_roots(rustls::RootCertStore::empty());
    let stats = Counters::default();
    let mut out = Kept::want(1);
    let shutdown = Shutdown::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.trigger();
    });
    let end = run(cfg, &mut out, &stats.js, &stats.common, &shutdown)
        .await
        .unwrap();
    assert_eq!(end, End::Shutdown);
    assert!(SourceStats::get(&stats.common.reconnects_network) >= 2);
    assert_eq!(JetstreamStats::get(&stats.js.connects), 0);
    assert_eq!(
        out.frames
            .iter()
            .filter(|f| f.kind == FrameKind::Post)
            .count(),
        0
    );
}
