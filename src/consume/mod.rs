//! `tweetpipe consume`: Kafka → parse → enrich → sink, exactly once across crashes and across
//! the instances of a consumer group.
//!
//! The instance joins the group ([`member`]) and reads the partitions it is assigned, one
//! generation after another ([`rebalance`]); or, as a simple consumer, every partition. For
//! each assignment ([`assignment`]) the sink first settles its output with the group's
//! offsets and says what it already holds ([`crate::sink::Sink::reconcile`],
//! [`crate::sink::Sink::resume`]), reading starts after that ([`start`]), and one task per
//! partition fetches ahead and has each fetch enriched and encoded for the sink while it
//! fetches the next ([`fetch`]). The [`writer`] puts the records into the sink in each
//! partition's offset order, and every commit interval makes the output durable and only then
//! commits the next offsets to the group, with its generation. So a kill at any point, or a
//! rebalance, neither loses nor duplicates a record. Broker workarounds live in [`quirks`];
//! the counters, the stats line and the summary in [`stats`].

pub(crate) mod assignment;
pub(crate) mod fetch;
pub(crate) mod member;
pub(crate) mod quirks;
pub(crate) mod rebalance;
pub(crate) mod start;
pub(crate) mod stats;
pub(crate) mod writer;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use self::assignment::Topic;
use self::member::Member;
use self::rebalance::Consumer;
use self::start::StartFrom;
use self::writer::{Limits, Writer};
use crate::error::{Error, Result};
use crate::kafka::group::membership::{GroupMember, MemberConfig};
use crate::kafka::group::OffsetStore;
use crate::kafka::Cluster;
use crate::shutdown::Shutdown;
use crate::sink::files::{DirSink, Identity};
use crate::sink::postgres::PgSink;
use crate::sink::stdout::StdoutSink;
use crate::sink::Sink;

/// Everything `consume` needs, checked by the command line.
pub(crate) struct Config {
    pub(crate) cluster: Cluster,
    pub(crate) topic: String,
    /// The consumer group whose committed offsets record our position.
    pub(crate) group: String,
    /// Membership of the group; `None`: a simple consumer of every partition.
    pub(crate) member: Option<MemberConfig>,
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
    /// Rows in PostgreSQL.
    Postgres(crate::sink::postgres::Config),
}

impl Output {
    /// The sink, and the slot its files carry (file output only).
    fn open(&self, who: &Identity) -> Result<(Box<dyn Sink>, Option<String>)> {
        Ok(match self {
            Output::Dir { path, rotate_bytes } => {
                let sink = DirSink::open(path, *rotate_bytes, who)?;
                let slot = sink.slot().to_string();
                (Box::new(sink), Some(slot))
            }
            Output::Stdout => (Box::new(StdoutSink::new()), None),
            Output::Postgres(c) => (
                Box::new(PgSink::new(c.clone(), &who.group, &who.topic)),
                None,
            ),
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
    let who = Identity {
        group: cfg.group.clone(),
        topic: cfg.topic.clone(),
        instance_id: cfg.member.as_ref().and_then(|m| m.instance_id.clone()),
    };
    // The output first: a directory another process holds is refused before joining.
    let (sink, slot) = cfg.output.open(&who)?;
    let topic = Topic::connect(&cfg.cluster, &cfg.topic, cfg.fetch_wait, sink.encoder()).await?;
    let member = match &cfg.member {
        Some(m) => Member::Group(Box::new(GroupMember::new(m.clone())?)),
        None => Member::Simple {
            store: Box::new(OffsetStore::connect(&cfg.cluster, &cfg.group).await?),
            partitions: topic.partitions(),
        },
    };
    let membership = stats::Membership {
        group: cfg.group.clone(),
        member: member.is_group(),
        output_slot: slot,
        ..Default::default()
    };
    let mut writer = Writer::new(sink, cfg.topic.clone(), member.progress());
    let _server = live.map(|(live, server)| {
        writer.live = Some(live);
        server
    });
    let mut consumer = Consumer {
        writer,
        member,
        topic,
        from: cfg.from,
        limits: cfg.limits,
        membership,
        started,
        summary_file: cfg.summary_file,
        handover: cfg
            .member
            .as_ref()
            .map(|m| quirks::handover_wait(m.heartbeat_interval)),
    };
    let ran = consumer.run(&shutdown).await;
    match consumer.finish(ran).await? {
        Some(fatal) => Err(Error::runtime(fatal)),
        None => Ok(()),
    }
}
