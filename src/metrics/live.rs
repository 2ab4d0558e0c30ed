//! `GET /api/live`: what the live page draws, as JSON. The first request gets the whole
//! history ring; later ones pass `?after=SEQ` and get only the new seconds, so a page polling
//! once a second moves a few hundred bytes.
//!
//! `metrics` carries every sample of `/metrics` (histograms aside) under its exposition name,
//! from the same snapshot, so what the page prints can be checked against a scrape.

use std::collections::BTreeMap;

use serde::ser::{Serialize, Serializer};
use serde::Serialize as DeriveSerialize;

use super::family::Value;
use super::health::CheckState;
use super::window::TweetWindow;
use super::{Command, Metrics};

/// The language mix and top hashtags cover this many of the last seconds.
pub(crate) const WINDOW_SECONDS: usize = 60;
/// How many languages and hashtags the page lists.
const LIST: usize = 10;

#[derive(DeriveSerialize)]
struct Live {
    command: &'static str,
    version: &'static str,
    started_ms: u64,
    /// The newest point's sequence number: the next request's `after`.
    seq: Option<u64>,
    points: Vec<PointJson>,
    metrics: BTreeMap<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    window: Option<WindowJson>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    partitions: Vec<PartitionJson>,
    health: HealthJson,
}

#[derive(DeriveSerialize)]
struct PointJson {
    seq: u64,
    t: u64,
    rate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate2: Option<f64>,
    lag: i64,
    /// Consume: tweets of this second and their mean sentiment.
    #[serde(skip_serializing_if = "Option::is_none")]
    tweets: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sentiment: Option<f64>,
}

#[derive(DeriveSerialize)]
struct WindowJson {
    seconds: usize,
    tweets: u64,
    sentiment: Option<f64>,
    langs: Vec<(String, u64)>,
    hashtags: Vec<(String, u64)>,
}

#[derive(DeriveSerialize)]
struct PartitionJson {
    partition: i32,
    lag: i64,
    next: i64,
    committed: Option<i64>,
    high_watermark: Option<i64>,
}

#[derive(DeriveSerialize)]
struct HealthJson {
    live: bool,
    ready: bool,
    loops: Vec<LoopJson>,
    checks: Vec<(&'static str, &'static str)>,
}

#[derive(DeriveSerialize)]
struct LoopJson {
    name: &'static str,
    age_s: f64,
    overdue_s: Option<f64>,
    retired: bool,
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Value::Count(v) => s.serialize_u64(v),
            Value::Int(v) => s.serialize_i64(v),
            Value::Float(v) => s.serialize_f64(v),
        }
    }
}

/// The JSON body for `GET /api/live?after=…`.
pub(crate) fn render(metrics: &Metrics, after: Option<u64>) -> String {
    let families = metrics.families();
    let mut values = BTreeMap::new();
    let mut partitions = Vec::new();
    for f in &families {
        for s in &f.samples {
            values.insert(f.sample_name(s), s.value);
        }
    }
    if let super::Source::Consume { partitions: t, .. } = &metrics.0.core.source {
        partitions = t
            .snapshot()
            .into_iter()
            .map(|p| PartitionJson {
                partition: p.partition,
                lag: p.lag(),
                next: p.next,
                committed: p.committed,
                high_watermark: p.high_watermark,
            })
            .collect();
    }
    let report = metrics.health();
    let history = metrics.history();
    let points = history
        .since(after)
        .map(|p| PointJson {
            seq: p.seq,
            t: p.t_ms,
            rate: round(p.rate, 1),
            rate2: p.rate2.map(|r| round(r, 1)),
            lag: p.lag,
            tweets: p.window.as_ref().map(|w| w.tweets),
            sentiment: p
                .window
                .as_ref()
                .and_then(|w| w.sentiment())
                .map(|s| round(s, 4)),
        })
        .collect();
    let window = (metrics.command() == Command::Consume).then(|| {
        let w = history.window(WINDOW_SECONDS);
        WindowJson {
            seconds: WINDOW_SECONDS,
            tweets: w.tweets,
            sentiment: w.sentiment().map(|s| round(s, 4)),
            langs: TweetWindow::top(&w.langs, LIST),
            hashtags: TweetWindow::top(&w.hashtags, LIST),
        }
    });
    let live = Live {
        command: metrics.command().name(),
        version: env!("CARGO_PKG_VERSION"),
        started_ms: (metrics.started_unix_s() * 1000.0) as u64,
        seq: history.last_seq(),
        points,
        metrics: values,
        window,
        partitions,
        health: health_json(&report),
    };
    serde_json::to_string(&live).expect("serializing to memory")
}

fn health_json(report: &super::health::Report) -> HealthJson {
    HealthJson {
        live: report.live(),
        ready: report.ready(),
        loops: report
            .loops
            .iter()
            .map(|l| LoopJson {
                name: l.name,
                age_s: round(l.age_s, 1),
                overdue_s: l.overdue_s.map(|o| round(o, 1)),
                retired: l.retired,
            })
            .collect(),
        checks: report
            .checks
            .iter()
            .map(|(n, s)| {
                let state = match s {
                    CheckState::Pending => "pending",
                    CheckState::Ok => "ok",
                    CheckState::Failing => "failing",
                };
                (*n, state)
            })
            .collect(),
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (v * m).round() / m
}
