//! `tweetpipe consume`: Kafka → parse → enrich → sink, exactly once across crashes.
//!
//! One task per partition fetches ahead and has each fetch enriched and encoded for the sink
//! while it fetches the next ([`fetch`]); the [`writer`] puts the records into the sink in
//! each partition's offset order, and every commit interval makes the output durable and only
//! then commits the next offsets to the group in Kafka. On start, the sink says what it
//! already holds past the committed offsets ([`crate::sink::Sink::resume`]), and reading
//! starts after that ([`start`]), so a kill at any point neither loses nor duplicates a
//! record. Broker workarounds live in [`quirks`]; the counters and the stats line in
//! [`stats`].

pub(crate) mod fetch;
pub(crate) mod quirks;
pub(crate) mod start;
pub(crate) mod stats;
pub(crate) mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use self::fetch::{FetchLimits, Fetched, Partition};
use self::start::StartFrom;
use self::writer::{Limits, Writer};
use crate::enrich::Enricher;
use crate::error::{Error, Result};
use crate::kafka::group::OffsetStore;
use crate::kafka::{self, Cluster};
use crate::shutdown::Shutdown;
use crate::sink::files::{DirSink, Identity};
use crate::sink::stdout::StdoutSink;
use crate::sink::Sink;

/// Everything `consume` needs, checked by the command line.
pub(crate) struct Config {
    pub(crate) cluster: Cluster,
    pub(crate) topic: String,
    /// The consumer group whose committed offsets record our position.
    pub(crate) group: String,
    pub(crate) from: StartFrom,
    pub(crate) output: Output,
    pub(crate) limits: Limits,
    /// Longest wait of one fetch for new records.
    pub(crate) fetch_wait: Duration,
    pub(crate) summary_file: Option<PathBuf>,
    /// Where to serve metrics, health checks and the live page; `None`: nowhere.
    pub(crate) metrics_addr: Option<std::net::SocketAddr>,
}

/// Where the records go.
pub(crate) enum Output {
    /// Rotating JSON-lines files in a directory.
    Dir { path: PathBuf, rotate_bytes: u64 },
    /// JSON lines on stdout.
    Stdout,
}

impl Output {
    fn open(&self, who: &Identity) -> Result<Box<dyn Sink>> {
        Ok(match self {
            Output::Dir { path, rotate_bytes } => {
                Box::new(DirSink::open(path, *rotate_bytes, who)?)
            }
            Output::Stdout => Box::new(StdoutSink::new()),
        })
    }
}

pub(crate) async fn run(cfg: Config) -> Result<()> {
    let started = Instant::now();
    // Listening before anything connects: a taken address is a usage error.
    let timeout = cfg.cluster.timeout;
    let live = match cfg.metrics_addr {
        Some(addr) => Some(stats::Live::serve(
            addr,
            cfg.limits.commit_interval + timeout + Duration::from_secs(30),
            cfg.fetch_wait + timeout + Duration::from_secs(5),
        )?),
        None => None,
    };
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals();
    let client = kafka::client::connect(&cfg.cluster).await?;
    let Some(count) = partition_count(&cfg.cluster, &cfg.topic).await? else {
        return Err(kafka::Error::UnknownTopic {
            topic: cfg.topic.clone(),
            brokers: cfg.cluster.brokers_text(),
        }
        .into());
    };
    let ids: Vec<i32> = (0..count).collect();
    let clients = kafka::client::partition_clients(&client, &cfg.topic, &ids, timeout).await?;
    let clients: Vec<(i32, _)> = ids.iter().copied().zip(clients).collect();
    let mut store = OffsetStore::connect(&cfg.cluster, &cfg.group).await?;

    // Output first: what a previous run wrote decides where we start.
    let who = Identity {
        group: cfg.group.clone(),
        topic: cfg.topic.clone(),
        instance_id: None,
    };
    let mut sink = cfg.output.open(&who)?;
    let committed = store.fetch(&cfg.topic, &ids).await?;
    sink.reconcile(&ids, &committed).await?;
    let resumed = sink.resume(&ids).await?;
    let next = start::resolve(&clients, &cfg.from, &committed, &resumed, timeout).await?;
    tracing::info!(topic = %cfg.topic, group = %cfg.group, start = ?next, "consuming");
    let encoder = sink.encoder();
    let mut writer = Writer::new(sink, store, cfg.topic.clone(), next);
    let _server = live.map(|(live, server)| {
        live.assigned(&writer.next);
        writer.live = Some(live);
        server
    });
    // Make the reconciled position the committed one: then what the sink recovered is
    // complete.
    writer.durable_commit().await?;

    let (tx, mut rx) = mpsc::channel::<Fetched>(clients.len() + 2);
    let enricher = Arc::new(Enricher::new());
    let limits = FetchLimits {
        wait: cfg.fetch_wait,
        timeout,
        bytes: fetch::fetch_max_bytes(clients.len()),
    };
    let fetchers: Vec<_> = clients
        .iter()
        .map(|(p, pc)| {
            let partition = Partition {
                client: pc.clone(),
                id: *p,
                limits,
                enricher: enricher.clone(),
                encoder: encoder.clone(),
            };
            tokio::spawn(fetch::run(partition, writer.next[p], tx.clone()))
        })
        .collect();
    drop(tx);
    let ended = writer.run(&mut rx, &cfg.limits, &shutdown).await;
    for f in fetchers {
        f.abort();
    }
    let fatal = ended?;
    // Clean stop: durable, committed, files finalized.
    writer.durable_commit().await?;
    writer.sink.close().await?;
    let summary = stats::Summary::new(&writer.totals, &writer.next, started.elapsed());
    summary.log();
    if let Some(path) = &cfg.summary_file {
        crate::logging::write_summary(path, &summary)?;
    }
    match fatal {
        Some(e) => Err(Error::runtime(e)),
        None => Ok(()),
    }
}

/// The topic's partition count; `None` when it does not exist.
async fn partition_count(cluster: &Cluster, topic: &str) -> Result<Option<i32>> {
    let mut conn =
        kafka::connection::connect_any(&cluster.brokers, cluster.timeout, &cluster.security)
            .await?;
    Ok(kafka::topic::partition_count(&mut conn, topic).await?)
}
