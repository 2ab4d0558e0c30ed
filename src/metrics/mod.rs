//! Prometheus metrics, health checks and a live page for `produce` and `consume`
//! (`--metrics-addr`).
//!
//! The pipeline counts what it already counts for its stats line; this module reads those
//! counters when someone asks, on a thread of its own, so the hot path pays nothing for it:
//!
//! - [`Metrics`] is the hub a command creates: produce with a snapshot closure over the
//!   counters its stats keep ([`Metrics::produce`]); consume gets the handles its writer
//!   feeds ([`Metrics::consume`]: run totals mirrored per batch, partition positions, the
//!   per-second tweet window). Latency histograms ([`Latency`]) are observed where the event
//!   happens; loops report with heartbeats ([`Heartbeat`]) and the conditions of readiness
//!   are probes of flags the pipeline keeps ([`Metrics::probe`]).
//! - [`serve`] starts the HTTP server ([`server`]): `/metrics`, `/healthz`, `/readyz`, the
//!   live page `/` and its JSON `/api/live` ([`routes`], [`live`]).
//!
//! Files: [`produce`] and [`consume`] (snapshots and the metric families they become),
//! [`family`] (families as data, and the collector that encodes them), [`latency`],
//! [`health`], [`window`] (consume's per-second tweet counts), [`history`] (the live page's
//! ring of seconds), [`error`]. The address is parsed by `cli::metrics`.

pub(crate) mod consume;
pub(crate) mod error;
pub(crate) mod family;
pub(crate) mod health;
pub(crate) mod history;
pub(crate) mod latency;
pub(crate) mod live;
pub(crate) mod produce;
pub(crate) mod routes;
pub(crate) mod server;
pub(crate) mod window;

#[cfg(test)]
mod endpoint_tests;

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::text;
use prometheus_client::registry::{Registry, Unit};

pub(crate) use consume::{ConsumeCounters, ConsumeSnapshot, PartitionSnapshot, PartitionTable};
pub(crate) use error::MetricsError;
pub(crate) use health::{CheckState, Health, Heartbeat};
pub(crate) use latency::Latency;
pub(crate) use produce::ProduceSnapshot;
pub(crate) use server::{serve, Server};
pub(crate) use window::{TweetWindow, WindowFeed};

use family::{Family, Kind, SnapshotCollector, Value};
use history::{History, Reading};

/// Which command the process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    Produce,
    Consume,
}

impl Command {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Command::Produce => "produce",
            Command::Consume => "consume",
        }
    }
}

type ProduceFn = dyn Fn() -> ProduceSnapshot + Send + Sync;
type ConsumeFn = dyn Fn() -> ConsumeSnapshot + Send + Sync;

enum Source {
    Produce(Box<ProduceFn>),
    Consume {
        snapshot: Box<ConsumeFn>,
        partitions: PartitionTable,
    },
}

/// What the registry's collector and the sampler both read.
struct Core {
    source: Source,
    health: Health,
    started_unix_s: f64,
}

struct Hub {
    command: Command,
    core: Arc<Core>,
    registry: Registry,
    history: Mutex<History>,
    feed: WindowFeed,
}

/// Beats a heartbeat named "runtime" from a task on the pipeline's runtime once a second: a
/// runtime whose workers are all blocked (a stuck call, a busy loop) stops it, and `/healthz`
/// says so while the metrics thread still answers. Ends with the runtime.
pub(crate) fn watch_runtime(metrics: &Metrics) {
    let hb = Heartbeat::new("runtime", Duration::from_secs(10));
    metrics.watch(&hb);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            hb.beat();
        }
    });
}

/// The metrics of one process. Cloning shares them.
#[derive(Clone)]
pub(crate) struct Metrics(Arc<Hub>);

/// What `consume` feeds: the handles its writer (and group membership) update.
#[derive(Clone)]
pub(crate) struct ConsumeHandles {
    pub(crate) metrics: Metrics,
    pub(crate) counters: Arc<ConsumeCounters>,
    /// Time of each durable commit: output flushed (fsync) and offsets committed.
    pub(crate) commit_latency: Latency,
    pub(crate) partitions: PartitionTable,
    /// Where the writer hands its tweet window about once a second.
    pub(crate) window: WindowFeed,
}

impl Metrics {
    /// `produce`'s metrics: `snapshot` reads the counters produce keeps (called at each
    /// scrape and once a second, on the metrics thread); `request_latency` is the histogram
    /// its batcher observes.
    pub(crate) fn produce(
        snapshot: impl Fn() -> ProduceSnapshot + Send + Sync + 'static,
        request_latency: &Latency,
    ) -> Metrics {
        Metrics::new(
            Command::Produce,
            Source::Produce(Box::new(snapshot)),
            (
                "tweetpipe_produce_kafka_request_duration",
                "Time from sending a produce request to its acknowledgement or failure.",
                request_latency,
            ),
        )
    }

    /// `consume`'s metrics, and the handles its writer feeds.
    pub(crate) fn consume() -> ConsumeHandles {
        let commit_latency = Latency::new();
        let partitions = PartitionTable::default();
        let counters = Arc::new(ConsumeCounters::default());
        let (c, t) = (counters.clone(), partitions.clone());
        let metrics = Metrics::new(
            Command::Consume,
            Source::Consume {
                snapshot: Box::new(move || c.snapshot(&t)),
                partitions: partitions.clone(),
            },
            (
                "tweetpipe_consume_commit_duration",
                "Time of a durable commit: output made durable (fsync), then offsets committed to the group.",
                &commit_latency,
            ),
        );
        ConsumeHandles {
            window: metrics.0.feed.clone(),
            metrics,
            counters,
            commit_latency,
            partitions,
        }
    }

    fn new(command: Command, source: Source, latency: (&str, &str, &Latency)) -> Metrics {
        let started_unix_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let core = Arc::new(Core {
            source,
            health: Health::new(),
            started_unix_s,
        });
        let mut registry = Registry::default();
        let (name, help, histogram) = latency;
        registry.register_with_unit(name, help, Unit::Seconds, histogram.histogram());
        let reader = core.clone();
        registry.register_collector(Box::new(SnapshotCollector(move || {
            reader.families(command)
        })));
        Metrics(Arc::new(Hub {
            command,
            core,
            registry,
            history: Mutex::new(History::default()),
            feed: WindowFeed::default(),
        }))
    }

    pub(crate) fn command(&self) -> Command {
        self.0.command
    }

    /// Watches a heartbeat the pipeline made ([`Heartbeat::new`]).
    pub(crate) fn watch(&self, hb: &Heartbeat) {
        self.0.core.health.watch(hb);
    }

    /// A condition evaluated whenever `/readyz` or `/metrics` asks.
    pub(crate) fn probe(
        &self,
        name: &'static str,
        probe: impl Fn() -> health::CheckState + Send + Sync + 'static,
    ) {
        self.0.core.health.probe(name, probe);
    }

    pub(crate) fn health(&self) -> health::Report {
        self.0.core.health.report()
    }

    /// Every family's current value, as `/metrics` would show it (histograms aside).
    pub(crate) fn families(&self) -> Vec<Family> {
        self.0.core.families(self.0.command)
    }

    /// The Prometheus exposition: OpenMetrics text when `openmetrics`, else the classic text
    /// format (0.0.4). Returns the body and its content type.
    pub(crate) fn encode(&self, openmetrics: bool) -> (String, &'static str) {
        let mut out = String::with_capacity(8 * 1024);
        // Writing to a String cannot fail; the encoders only fail on the writer's errors.
        if openmetrics {
            let _ = text::encode(&mut out, &self.0.registry);
            (
                out,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )
        } else {
            let _ =
                prometheus_client::encoding::prometheus_text::encode(&mut out, &self.0.registry);
            (
                out,
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            )
        }
    }

    /// Takes this second's point for the live page. Called once a second by the server.
    pub(crate) fn sample(&self) {
        let reading = match &self.0.core.source {
            Source::Produce(f) => {
                let s = f();
                Reading {
                    count: s.accepted,
                    count2: Some(s.delivered),
                    lag: i64::try_from(s.backlog()).unwrap_or(i64::MAX),
                }
            }
            Source::Consume {
                snapshot,
                partitions,
            } => {
                let s = snapshot();
                let lag = partitions
                    .snapshot()
                    .iter()
                    .map(PartitionSnapshot::lag)
                    .sum();
                Reading {
                    count: s.tweets,
                    count2: None,
                    lag,
                }
            }
        };
        let window = self.0.feed.take();
        let t_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        self.history().record(Instant::now(), t_ms, reading, window);
    }

    fn history(&self) -> std::sync::MutexGuard<'_, History> {
        self.0.history.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn started_unix_s(&self) -> f64 {
        self.0.core.started_unix_s
    }
}

impl Core {
    fn families(&self, command: Command) -> Vec<Family> {
        let mut out = match &self.source {
            Source::Produce(f) => f().families(),
            Source::Consume {
                snapshot,
                partitions,
            } => {
                let mut s = snapshot();
                s.partitions = partitions.snapshot();
                s.families()
            }
        };
        let report = self.health.report();
        out.push(Family::labelled(
            "tweetpipe_build_info",
            "The running version and command; always 1.",
            Kind::Gauge,
            "version",
            [(Cow::Borrowed(env!("CARGO_PKG_VERSION")), Value::Int(1))],
        ));
        out.push(Family::labelled(
            "tweetpipe_command_info",
            "The command this process runs; always 1.",
            Kind::Gauge,
            "command",
            [(Cow::Borrowed(command.name()), Value::Int(1))],
        ));
        out.push(Family::gauge(
            "tweetpipe_start_time_seconds",
            "When the process started, in seconds since the Unix epoch.",
            Value::Float(self.started_unix_s),
        ));
        out.push(Family::labelled(
            "tweetpipe_loop_heartbeat_age_seconds",
            "Seconds since each loop of the pipeline last came round.",
            Kind::Gauge,
            "loop",
            report
                .loops
                .iter()
                .map(|l| (Cow::Borrowed(l.name), Value::Float(l.age_s))),
        ));
        out.push(Family::labelled(
            "tweetpipe_ready",
            "Each readiness condition: 1 when it holds (as /readyz checks them).",
            Kind::Gauge,
            "check",
            report.checks.iter().map(|(name, state)| {
                let ok = *state == health::CheckState::Ok;
                (Cow::Borrowed(*name), Value::Int(ok as i64))
            }),
        ));
        out
    }
}
