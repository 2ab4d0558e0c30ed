//! The metrics endpoint and the live page on a real pipeline: the bundled sample replayed,
//! paced, through `tweetpipe produce` into the test broker while `tweetpipe consume` reads it
//! beside it, both with `--metrics-addr`; headless Chromium watches consume's page update
//! while the stream runs and its numbers agree with `/metrics`, and the final scrapes agree
//! with both commands' summaries. Saves `target/screenshots/live-page-pipeline.png` (the
//! picture in docs/metrics.md comes from it).

mod support;

#[path = "support/browser.rs"]
mod browser;

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::*;
use tokio::io::AsyncWriteExt;

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// `GET path` on `addr`: (status, body); status 0 when nothing answers.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

fn scraped(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

fn sum_of(text: &str, family: &str) -> f64 {
    let prefix = format!("{family}{{");
    text.lines()
        .filter(|l| l.starts_with(&prefix))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

fn sample_lines() -> Vec<Vec<u8>> {
    let file = std::fs::File::open(root().join("tests/data/sample/tweets.jsonl.gz")).unwrap();
    std::io::BufReader::new(flate2::read::GzDecoder::new(file))
        .split(b'\n')
        .map(|l| l.unwrap())
        .filter(|l| !l.is_empty())
        .collect()
}

async fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn the_live_page_follows_a_running_pipeline_and_agrees_with_metrics() {
    let lines = sample_lines();
    let topic = topic("live-page");
    create_topic(&topic, 2).await;
    let brokers = brokers();
    let out = tempfile::tempdir().unwrap();
    let (p_addr, c_addr) = (free_addr(), free_addr());
    let (p_arg, c_arg) = (p_addr.to_string(), c_addr.to_string());

    let mut consume_cmd = tweetpipe(&[
        "consume",
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--group",
        &topic,
        "--output",
        out.path().to_str().unwrap(),
        "--from",
        "earliest",
        "--commit-interval",
        "500ms",
        "--idle-exit",
        "6s",
        "--stats-interval",
        "0s",
        "--metrics-addr",
        &c_arg,
    ]);
    let mut consume = consume_cmd.stderr(Stdio::null()).spawn().unwrap();
    let mut produce_cmd = tweetpipe(&[
        "produce",
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--from-file",
        "-",
        "--stats-interval",
        "0s",
        "--metrics-addr",
        &p_arg,
    ]);
    let mut produce = produce_cmd
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || get(c_addr, "/readyz").0 == 200).await,
        "consume never became ready: {:?}",
        get(c_addr, "/readyz")
    );
    assert!(
        wait_until(Duration::from_secs(30), || get(p_addr, "/healthz").0 == 200).await,
        "produce's endpoint never answered"
    );

    // The replay, paced: ~400 tweets a second for ~12 s, so the chart has a stream to draw.
    let mut stdin = produce.stdin.take().unwrap();
    let feeder = tokio::spawn(async move {
        for chunk in lines.chunks(40) {
            let mut buf = Vec::new();
            for l in chunk {
                buf.extend_from_slice(l);
                buf.push(b'\n');
            }
            stdin.write_all(&buf).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Kept open: produce stays up (waiting for more) until its endpoint is scraped.
        (lines.len(), stdin)
    });

    let b = browser::Browser::start(1280, 1000).expect("a headless Chromium");
    b.goto(&format!("http://{c_addr}/")).unwrap();
    b.wait_for(
        "return document.body.className === 'consume' && +document.body.dataset.updates >= 1",
        Duration::from_secs(15),
    )
    .unwrap();
    // While tweets flow: the rate line rises above zero, the points grow, the lists fill.
    b.wait_for(
        "const t = document.querySelector('.tile[data-metric=rate]'); return +t.dataset.value > 50",
        Duration::from_secs(20),
    )
    .unwrap();
    let first = b
        .eval("return +document.getElementById('rate-chart').dataset.points")
        .unwrap();
    b.wait_for(
        &format!("return +document.getElementById('rate-chart').dataset.points >= {first} + 2"),
        Duration::from_secs(10),
    )
    .unwrap();
    b.wait_for(
        "return document.querySelectorAll('#langs .name').length >= 3 && document.querySelectorAll('#hashtags .name').length >= 5",
        Duration::from_secs(10),
    )
    .unwrap();
    let lang = b
        .eval("return document.querySelector('#langs .name').textContent")
        .unwrap();
    assert_eq!(lang, "en", "the sample is mostly English");
    // The tiles agree with /metrics: between a scrape before and one after.
    let before = get(c_addr, "/metrics").1;
    let tiles = b
        .eval("return [...document.querySelectorAll('.tile')].map(t => [t.dataset.metric, +t.dataset.value])")
        .unwrap();
    let after = get(c_addr, "/metrics").1;
    let mut checked = 0;
    for t in tiles.as_array().unwrap() {
        let (key, shown) = (t[0].as_str().unwrap(), t[1].as_f64().unwrap());
        let value = |text: &str| match key.strip_prefix("sum:") {
            Some(family) => Some(sum_of(text, family)),
            None => scraped(text, key),
        };
        if let (Some(lo), Some(hi)) = (value(&before), value(&after)) {
            if key.starts_with("sum:") {
                continue; // lag moves both ways
            }
            // The page shows what it fetched up to a second before the first scrape.
            assert!(
                shown <= hi && shown >= lo - 1000.0,
                "{key}: page {shown}, /metrics {lo}..{hi}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 3, "{tiles}");
    b.screenshot("live-page-pipeline").unwrap();

    // The end. Produce, still waiting for input, has accepted and delivered every line fed
    // so far (a pipe is read as it comes, not held back until a piece fills), and its
    // counters agree with each other; then the input ends, consume catches up and stops when
    // idle, and its last scrape agrees with its summary.
    let (sent, stdin) = feeder.await.unwrap();
    let mut p_metrics = String::new();
    assert!(
        wait_until(Duration::from_secs(30), || {
            p_metrics = get(p_addr, "/metrics").1;
            let accepted = scraped(&p_metrics, "tweetpipe_produce_records_accepted_total");
            accepted == Some(sent as f64)
                && accepted == scraped(&p_metrics, "tweetpipe_produce_records_delivered_total")
        })
        .await,
        "every line fed is accepted before the input ends: {p_metrics}"
    );
    let requests = scraped(&p_metrics, "tweetpipe_produce_kafka_requests_total").unwrap();
    let timed = scraped(
        &p_metrics,
        "tweetpipe_produce_kafka_request_duration_seconds_count",
    );
    assert_eq!(timed, Some(requests), "every produce request is timed once");
    drop(stdin);
    let mut c_metrics = String::new();
    assert!(
        wait_until(Duration::from_secs(60), || {
            c_metrics = get(c_addr, "/metrics").1;
            let written = scraped(
                &c_metrics,
                "tweetpipe_consume_records_written_total{kind=\"tweet\"}",
            )
            .unwrap_or(0.0)
                + scraped(
                    &c_metrics,
                    "tweetpipe_consume_records_written_total{kind=\"control\"}",
                )
                .unwrap_or(0.0);
            written as usize >= sent && sum_of(&c_metrics, "tweetpipe_consume_lag_records") == 0.0
        })
        .await,
        "consume did not catch up: {c_metrics}"
    );
    assert_eq!(produce.wait().await.unwrap().code(), Some(0));
    assert_eq!(consume.wait().await.unwrap().code(), Some(0));
    let p_sum = summary_of(&produce_cmd).unwrap();
    let c_sum = summary_of(&consume_cmd).unwrap();
    assert_eq!(p_sum.get("accepted"), sent as u64);
    assert_eq!(p_sum.get("delivered"), sent as u64);
    for (kind, key) in [
        ("tweet", "tweets"),
        ("control", "controls"),
        ("error", "errors"),
    ] {
        let metric = format!("tweetpipe_consume_records_written_total{{kind=\"{kind}\"}}");
        assert_eq!(
            scraped(&c_metrics, &metric),
            Some(c_sum.get(key) as f64),
            "{metric}"
        );
    }
    assert!(
        scraped(
            &c_metrics,
            "tweetpipe_consume_commit_duration_seconds_count"
        )
        .unwrap()
            >= 1.0
    );
    // Both endpoints are gone with their processes.
    assert_eq!(get(c_addr, "/healthz").0, 0);
}
