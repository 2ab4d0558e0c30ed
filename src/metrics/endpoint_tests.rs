//! The endpoint over real sockets, started as `--metrics-addr` starts it, and asked as
//! Prometheus, a load balancer, a hostile client and a browser (headless Chromium) ask.
//!
//! The counters here are fed through the same handles produce and consume feed; the tests
//! that run a whole pipeline beside the page are in `tests/`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::server::{serve_with, Limits};
use super::*;

#[path = "../../tests/support/browser.rs"]
mod browser;

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }
}

fn request(addr: SocketAddr, method: &str, path: &str, extra: &str) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path, "")
}

/// The value of the exposition line for `sample` (name with labels), if any.
fn scraped(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

#[derive(Default)]
struct ProduceCounters {
    accepted: AtomicU64,
    delivered: AtomicU64,
}

struct ProduceHandles {
    metrics: Metrics,
    request_latency: Latency,
}

fn produce_metrics() -> (ProduceHandles, Arc<ProduceCounters>) {
    let c = Arc::new(ProduceCounters::default());
    let read = c.clone();
    let request_latency = Latency::new();
    let metrics = Metrics::produce(
        move || ProduceSnapshot {
            received_tweets: read.accepted.load(Relaxed),
            accepted: read.accepted.load(Relaxed),
            delivered: read.delivered.load(Relaxed),
            reconnects: vec![("network", 2), ("http", 1), ("rate_limited", 0)],
            last_http_status: 200,
            ..Default::default()
        },
        &request_latency,
    );
    (
        ProduceHandles {
            metrics,
            request_latency,
        },
        c,
    )
}

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[test]
fn metrics_are_read_from_the_counters_at_each_scrape() {
    let (h, c) = produce_metrics();
    let server = serve(local(), h.metrics.clone()).unwrap();
    let addr = server.local_addr();
    c.accepted.store(5, Relaxed);
    let a = get(addr, "/metrics");
    assert_eq!(a.status, 200);
    assert_eq!(
        a.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(
        scraped(&a.body, "tweetpipe_produce_records_accepted_total"),
        Some(5.0)
    );
    assert_eq!(
        scraped(
            &a.body,
            "tweetpipe_produce_stream_reconnects_total{cause=\"network\"}"
        ),
        Some(2.0)
    );
    c.accepted.store(7, Relaxed);
    c.delivered.store(6, Relaxed);
    h.request_latency.observe(Duration::from_millis(3));
    let a = get(addr, "/metrics");
    assert_eq!(
        scraped(&a.body, "tweetpipe_produce_records_accepted_total"),
        Some(7.0)
    );
    assert_eq!(
        scraped(&a.body, "tweetpipe_produce_records_delivered_total"),
        Some(6.0)
    );
    let hist = "tweetpipe_produce_kafka_request_duration_seconds";
    assert_eq!(scraped(&a.body, &format!("{hist}_count")), Some(1.0));
    assert_eq!(
        scraped(&a.body, &format!("{hist}_bucket{{le=\"0.0025\"}}")),
        Some(0.0)
    );
    assert_eq!(
        scraped(&a.body, &format!("{hist}_bucket{{le=\"0.005\"}}")),
        Some(1.0)
    );
    assert!(
        a.body.contains("tweetpipe_build_info{version=\""),
        "{}",
        a.body
    );
    // Conventions: one prefix, counters end in _total, a HELP and TYPE for each family.
    for line in a.body.lines() {
        if line.starts_with("# TYPE ") {
            let mut w = line.split(' ').skip(2);
            let (name, kind) = (w.next().unwrap(), w.next().unwrap());
            assert!(name.starts_with("tweetpipe_"), "{line}");
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
        } else if !line.starts_with('#') {
            assert!(line.starts_with("tweetpipe_"), "{line}");
        }
    }
    // OpenMetrics for a scraper that asks for it.
    let om = request(
        addr,
        "GET",
        "/metrics",
        "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n",
    );
    assert!(om
        .header("content-type")
        .unwrap()
        .starts_with("application/openmetrics-text"));
    assert!(om.body.ends_with("# EOF\n"));
    assert_eq!(
        scraped(&om.body, "tweetpipe_produce_records_accepted_total"),
        Some(7.0)
    );
}

#[test]
fn health_and_readiness_answer_with_status_codes() {
    let (h, _) = produce_metrics();
    let m = &h.metrics;
    let server = serve(local(), m.clone()).unwrap();
    let addr = server.local_addr();
    let stream = Heartbeat::new("stream", Duration::from_millis(200));
    m.watch(&stream);
    let flag = |name| {
        let f = Arc::new(AtomicBool::new(false));
        let read = f.clone();
        m.probe(name, move || match read.load(Relaxed) {
            true => CheckState::Ok,
            false => CheckState::Failing,
        });
        f
    };
    let connected = flag("stream_connected");
    let kafka = flag("kafka_reachable");
    assert_eq!(get(addr, "/healthz").status, 200);
    let r = get(addr, "/readyz");
    assert_eq!(r.status, 503);
    assert!(r.body.contains("stream_connected: FAILING"), "{}", r.body);
    connected.store(true, Relaxed);
    kafka.store(true, Relaxed);
    assert_eq!(get(addr, "/readyz").status, 200);
    std::thread::sleep(Duration::from_millis(300));
    let r = get(addr, "/healthz");
    assert_eq!(r.status, 503);
    assert!(r.body.contains("loop stream: STALLED"), "{}", r.body);
    assert_eq!(
        get(addr, "/readyz").status,
        503,
        "a stalled process is not ready"
    );
    stream.beat();
    assert_eq!(get(addr, "/healthz").status, 200);
    kafka.store(false, Relaxed);
    let r = get(addr, "/readyz");
    assert_eq!(r.status, 503);
    assert!(r.body.contains("kafka_reachable: FAILING"), "{}", r.body);
    let scrape = get(addr, "/metrics").body;
    assert_eq!(
        scraped(&scrape, "tweetpipe_ready{check=\"kafka_reachable\"}"),
        Some(0.0)
    );
    assert!(scraped(
        &scrape,
        "tweetpipe_loop_heartbeat_age_seconds{loop=\"stream\"}"
    )
    .is_some());
}

/// What the writer loop counts, as it counts it (plain numbers), mirrored like it does.
#[derive(Default)]
struct Totals {
    tweets: AtomicU64,
    controls: AtomicU64,
}

fn consume_metrics() -> (ConsumeHandles, Arc<Totals>) {
    (Metrics::consume(), Arc::new(Totals::default()))
}

fn mirror(h: &ConsumeHandles, t: &Totals) {
    h.counters
        .set_totals(t.tweets.load(Relaxed), t.controls.load(Relaxed), 0);
}

#[test]
fn the_live_json_has_history_windows_and_the_scraped_values() {
    let (h, c) = consume_metrics();
    let server = serve(local(), h.metrics.clone()).unwrap();
    let addr = server.local_addr();
    h.partitions.assign(&BTreeMap::from([(0, 0), (1, 0)]));
    for i in 1..=3u64 {
        let mut w = TweetWindow::default();
        for _ in 0..10 {
            w.tweet("en", 0.5, ["rustlang"]);
        }
        w.tweet("ja", -0.5, ["東京"]);
        c.tweets.fetch_add(11, Relaxed);
        mirror(&h, &c);
        h.window.publish(&w);
        h.partitions.progress(0, 11 * i as i64, 100);
        h.metrics.sample();
    }
    h.partitions.committed(&BTreeMap::from([(0, 22)]));
    let a = get(addr, "/api/live");
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(v["command"], "consume");
    let points = v["points"].as_array().unwrap();
    assert!(points.len() >= 3, "{points:?}");
    let with_tweets: Vec<_> = points.iter().filter(|p| p["tweets"] == 11).collect();
    assert_eq!(with_tweets.len(), 3);
    assert!((with_tweets[0]["sentiment"].as_f64().unwrap() - 4.5 / 11.0).abs() < 1e-3);
    assert_eq!(v["window"]["tweets"], 33);
    assert_eq!(v["window"]["langs"][0], serde_json::json!(["en", 30]));
    assert_eq!(v["window"]["hashtags"][1], serde_json::json!(["東京", 3]));
    assert_eq!(v["partitions"][0]["lag"], 67);
    assert_eq!(v["partitions"][0]["committed"], 22);
    // Every value of the JSON is on /metrics under the same name (histograms aside).
    let scrape = get(addr, "/metrics").body;
    let values = v["metrics"].as_object().unwrap();
    assert!(values.len() >= 10);
    for (name, value) in values {
        if name.contains("heartbeat_age") || name.contains("start_time") {
            continue;
        }
        assert_eq!(
            scraped(&scrape, name),
            value.as_f64(),
            "{name} in /api/live and /metrics"
        );
    }
    assert_eq!(
        values["tweetpipe_consume_records_written_total{kind=\"tweet\"}"],
        33
    );
    assert_eq!(values["tweetpipe_consume_lag_records{partition=\"0\"}"], 67);
    // Only what is new after a given point.
    let seq = v["seq"].as_u64().unwrap();
    h.metrics.sample();
    let v: serde_json::Value =
        serde_json::from_str(&get(addr, &format!("/api/live?after={seq}")).body).unwrap();
    let newer = v["points"].as_array().unwrap();
    assert!(!newer.is_empty() && newer.iter().all(|p| p["seq"].as_u64().unwrap() > seq));
}

#[test]
fn only_get_and_head_on_known_paths() {
    let (h, _) = produce_metrics();
    let server = serve(local(), h.metrics.clone()).unwrap();
    let addr = server.local_addr();
    let r = request(addr, "POST", "/metrics", "Content-Length: 0\r\n");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    assert_eq!(get(addr, "/nope").status, 404);
    let head = request(addr, "HEAD", "/metrics", "");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    let page = get(addr, "/");
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'none'"));
    for asset in ["/live.js", "/live.css"] {
        assert_eq!(get(addr, asset).status, 200, "{asset}");
    }
    // Self-contained: nothing is loaded from another origin.
    for text in [
        super::routes::PAGE,
        super::routes::SCRIPT,
        super::routes::STYLE,
    ] {
        assert!(!text.contains("http://") || text.contains("http://www.w3.org/2000/svg"));
        assert!(!text.contains("https://"));
    }
    let size = super::routes::PAGE.len() + super::routes::SCRIPT.len() + super::routes::STYLE.len();
    assert!(size < 40 * 1024, "the page's assets are {size} bytes");
}

#[test]
fn a_busy_or_hostile_client_cannot_hold_the_endpoint() {
    let (h, _) = produce_metrics();
    let limits = Limits {
        max_connections: 4,
        header_timeout: Duration::from_millis(300),
        connection_lifetime: Duration::from_secs(30),
    };
    let server = serve_with(local(), h.metrics.clone(), limits).unwrap();
    let addr = server.local_addr();
    // Four connections that never send a request fill the slots.
    let idle: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(50));
    // A fifth is closed unanswered.
    let mut extra = TcpStream::connect(addr).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(extra.read(&mut buf).unwrap_or(0), 0);
    // The idle ones are dropped after the header timeout, and the endpoint answers again.
    let started = Instant::now();
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.read(&mut buf);
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(get(addr, "/healthz").status, 200);
    // A request head past the size limit is refused, not buffered.
    let big = format!("X-Junk: {}\r\n", "a".repeat(64 * 1024));
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n{big}\r\n");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(
        !answer.contains(" 200 "),
        "{}",
        &answer[..answer.len().min(200)]
    );
    assert_eq!(get(addr, "/healthz").status, 200);
}

#[test]
fn a_port_in_use_is_a_configuration_error() {
    let (h, _) = produce_metrics();
    let first = serve(local(), h.metrics.clone()).unwrap();
    let e = serve(first.local_addr(), h.metrics.clone()).err().unwrap();
    assert!(
        e.to_string().contains(&first.local_addr().to_string()),
        "{e}"
    );
    assert_eq!(crate::Error::from(e).exit_code(), 2);
}

/// The live page in headless Chromium on a phone-sized viewport: it draws the history the
/// server kept before it was opened, updates every second, and prints the numbers /metrics
/// has. Saves `target/screenshots/live-page-consume.png`. Long (160 lines): one browser
/// session, step by step, each step checked before the next, reads best as one story.
#[test]
fn the_live_page_draws_and_updates_in_a_real_browser() {
    let (h, c) = consume_metrics();
    let server = serve(local(), h.metrics.clone()).unwrap();
    let addr = server.local_addr();
    h.partitions
        .assign(&BTreeMap::from([(0, 0), (1, 0), (2, 0)]));
    // A writer loop's worth of traffic: tweets in five languages, sentiment drifting, tags.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, c, h) = (stop.clone(), c.clone(), h.clone());
        std::thread::spawn(move || {
            let langs = ["en", "en", "en", "es", "ja", "pt", "en", "fr"];
            let tags = ["rust", "kafka", "tweetpipe", "worldcup", "news", "music"];
            let mut n = 0u64;
            while !stop.load(Relaxed) {
                let mut w = TweetWindow::default();
                let burst = 40 + (n / 10 % 5) * 20;
                for i in 0..burst {
                    let k = (n + i) as usize;
                    let sentiment = ((k % 17) as f64 / 8.0 - 1.0) * 0.8;
                    w.tweet(
                        langs[k % langs.len()],
                        sentiment,
                        [tags[k % 3 + (k / 7) % 3]],
                    );
                }
                n += burst;
                c.tweets.store(n, Relaxed);
                c.controls.store(n / 20, Relaxed);
                mirror(&h, &c);
                h.window.publish(&w);
                for p in 0..3 {
                    h.partitions
                        .progress(p, (n / 3) as i64, (n / 3 + 50 * p as u64) as i64);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    // History from before the page opens.
    std::thread::sleep(Duration::from_millis(3200));
    let b = browser::Browser::phone(390, 844).expect("a headless Chromium");
    b.goto(&format!("http://{addr}/")).unwrap();
    b.wait_for(
        "return document.body.className === 'consume'",
        Duration::from_secs(10),
    )
    .unwrap();
    let first = b
        .wait_for(
            "const p = +document.getElementById('rate-chart').dataset.points; return p >= 3 ? p : null",
            Duration::from_secs(10),
        )
        .unwrap();
    // It keeps updating: more points, a later update count.
    let updates = b.eval("return +document.body.dataset.updates").unwrap();
    b.wait_for(
        &format!("return +document.body.dataset.updates >= {} + 2", updates),
        Duration::from_secs(10),
    )
    .unwrap();
    let later = b
        .eval("return +document.getElementById('rate-chart').dataset.points")
        .unwrap();
    assert!(later.as_u64() > first.as_u64(), "{first} then {later}");
    // The lines are drawn, the lists are filled.
    let path_len = b
        .eval("return document.querySelector('#rate-chart path.s0').getAttribute('d').length")
        .unwrap();
    assert!(path_len.as_u64().unwrap() > 20);
    let sentiment = b
        .eval("return document.querySelector('#sentiment-chart path.s0').getAttribute('d').length")
        .unwrap();
    assert!(sentiment.as_u64().unwrap() > 20);
    let langs = b
        .eval("return [...document.querySelectorAll('#langs .name')].map(e => e.textContent)")
        .unwrap();
    assert_eq!(langs[0], "en", "{langs}");
    assert_eq!(langs.as_array().unwrap().len(), 5, "{langs}");
    let tags = b
        .eval("return [...document.querySelectorAll('#hashtags .name')].map(e => e.textContent)")
        .unwrap();
    assert!(tags.as_array().unwrap().len() >= 3, "{tags}");
    // Its numbers are /metrics' numbers: each tile lies between a scrape before and one after.
    let before = get(addr, "/metrics").body;
    let tiles = b
        .eval("return [...document.querySelectorAll('.tile')].map(t => [t.dataset.metric, +t.dataset.value])")
        .unwrap();
    let after = get(addr, "/metrics").body;
    let mut checked = 0;
    for t in tiles.as_array().unwrap() {
        let (key, shown) = (t[0].as_str().unwrap(), t[1].as_f64().unwrap());
        let value = |text: &str| match key.strip_prefix("sum:") {
            Some(prefix) => Some(
                text.lines()
                    .filter(|l| l.starts_with(&format!("{prefix}{{")))
                    .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
                    .sum(),
            ),
            None => scraped(text, key),
        };
        if let (Some(lo), Some(hi)) = (value(&before), value(&after)) {
            // The page shows what it fetched up to a second before the first scrape.
            let slack = if key.starts_with("sum:") { 400.0 } else { 0.0 };
            assert!(
                shown <= hi && shown >= lo.min(hi) - 400.0 - slack,
                "{key}: page {shown}, /metrics {lo}..{hi}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 4, "{tiles}");
    // Readable on a phone: nothing wider than the screen.
    let overflow = b
        .eval("return document.documentElement.scrollWidth - window.innerWidth")
        .unwrap();
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "page is {overflow}px wider than the viewport"
    );
    assert_eq!(b.eval("return window.innerWidth").unwrap(), 390);
    let shot = b.screenshot("live-page-consume-phone").unwrap();
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
    b.eval("window.scrollTo(0, document.body.scrollHeight); return null")
        .unwrap();
    b.screenshot("live-page-consume-phone-end").unwrap();
    stop.store(true, Relaxed);
    writer.join().unwrap();

    // produce's page: two lines (received, delivered), its own tiles, no consume panels.
    let (p, counters) = produce_metrics();
    let produce = serve(local(), p.metrics.clone()).unwrap();
    counters.accepted.store(1000, Relaxed);
    p.metrics.sample();
    counters.accepted.store(1500, Relaxed);
    counters.delivered.store(1400, Relaxed);
    b.goto(&format!("http://{}/", produce.local_addr()))
        .unwrap();
    b.wait_for(
        "return document.body.className === 'produce' && +document.body.dataset.updates >= 2",
        Duration::from_secs(10),
    )
    .unwrap();
    let drawn = b
        .eval("return ['s0', 's1'].map(c => document.querySelector('#rate-chart path.' + c).getAttribute('d').length)")
        .unwrap();
    assert!(
        drawn[0].as_u64() > Some(10) && drawn[1].as_u64() > Some(10),
        "{drawn}"
    );
    let hidden = b
        .eval("return [...document.querySelectorAll('.consume-only')].every(e => e.offsetParent === null)")
        .unwrap();
    assert_eq!(hidden, true);
    let tile = b
        .eval("return +document.querySelector('.tile[data-metric=\"tweetpipe_produce_records_delivered_total\"]').dataset.value")
        .unwrap();
    assert_eq!(tile, 1400);
    b.screenshot("live-page-produce-phone").unwrap();
}

/// The names the docs use (dashboard, scrape example, metrics page) are names we expose.
#[test]
fn the_docs_name_only_metrics_that_exist() {
    let mut known = std::collections::BTreeSet::new();
    let (p, _) = produce_metrics();
    let (c, _) = consume_metrics();
    c.partitions.assign(&BTreeMap::from([(0, 0)]));
    for m in [&p.metrics, &c.metrics] {
        m.watch(&Heartbeat::new("loop", Duration::from_secs(1)));
        m.probe("check", || CheckState::Ok);
        let (text, _) = m.encode(false);
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = line.split(' ').nth(2).unwrap();
            known.insert(name.to_string());
            if line.ends_with(" histogram") {
                for suffix in ["_bucket", "_sum", "_count"] {
                    known.insert(format!("{name}{suffix}"));
                }
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for doc in [
        "docs/grafana-dashboard.json",
        "docs/prometheus.yml",
        "docs/metrics.md",
    ] {
        let Ok(text) = std::fs::read_to_string(root.join(doc)) else {
            continue;
        };
        let mut rest = text.as_str();
        while let Some(at) = rest.find("tweetpipe_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            // Environment variables (TWEETPIPE_…) are upper case; prefixes end in `_`.
            if name.ends_with('_') || name.chars().any(|c| c.is_ascii_uppercase()) {
                continue;
            }
            assert!(
                known.contains(&name),
                "{doc} names {name}, which is not exposed"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked}");
}
