//! Reading one assignment: the topic's partitions and how they are fetched ([`Topic`]), where
//! each assigned partition starts once the output is reconciled with the group's offsets
//! ([`start_offsets`]), and one fetch task per partition until the assignment ends
//! ([`Reading`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rskafka::client::partition::PartitionClient;
use tokio::sync::mpsc;

use super::fetch::{self, FetchLimits, Fetched, Partition};
use super::member::Member;
use super::start::{self, StartFrom};
use crate::enrich::Enricher;
use crate::error::Result;
use crate::kafka::{self, Cluster};
use crate::sink::{Encoder, Sink};

/// The topic, and what every partition's fetch task shares.
pub(crate) struct Topic {
    pub(crate) name: String,
    /// A client per partition of the topic (whichever are assigned).
    clients: BTreeMap<i32, Arc<PartitionClient>>,
    fetch_wait: Duration,
    timeout: Duration,
    enricher: Arc<Enricher>,
    encoder: Arc<dyn Encoder>,
}

impl Topic {
    /// Connects to the topic's partition leaders. An unknown topic is an error that says so.
    pub(crate) async fn connect(
        cluster: &Cluster,
        name: &str,
        fetch_wait: Duration,
        encoder: Arc<dyn Encoder>,
    ) -> Result<Self> {
        let client = kafka::client::connect(cluster).await?;
        let Some(count) = partition_count(cluster, name).await? else {
            return Err(kafka::Error::UnknownTopic {
                topic: name.to_string(),
                brokers: cluster.brokers_text(),
            }
            .into());
        };
        let ids: Vec<i32> = (0..count).collect();
        let clients =
            kafka::client::partition_clients(&client, name, &ids, cluster.timeout).await?;
        Ok(Topic {
            name: name.to_string(),
            clients: ids.into_iter().zip(clients).collect(),
            fetch_wait,
            timeout: cluster.timeout,
            enricher: Arc::new(Enricher::new()),
            encoder,
        })
    }

    /// Every partition of the topic.
    pub(crate) fn partitions(&self) -> Vec<i32> {
        self.clients.keys().copied().collect()
    }

    fn clients_of(&self, partitions: &[i32]) -> Vec<(i32, Arc<PartitionClient>)> {
        partitions
            .iter()
            .filter_map(|p| self.clients.get(p).map(|c| (*p, c.clone())))
            .collect()
    }
}

/// The topic's partition count; `None` when it does not exist.
async fn partition_count(cluster: &Cluster, topic: &str) -> Result<Option<i32>> {
    let mut conn =
        kafka::connection::connect_any(&cluster.brokers, cluster.timeout, &cluster.security)
            .await?;
    Ok(kafka::topic::partition_count(&mut conn, topic).await?)
}

/// Where each of `owned` starts: the sink first settles its output with the group's offsets
/// (of every partition: what a crashed run wrote of partitions now read by others goes) and
/// says where its own durable state resumes; then the group's offsets, then `from`.
pub(crate) async fn start_offsets(
    topic: &Topic,
    sink: &mut dyn Sink,
    member: &mut Member,
    owned: &[i32],
    from: &StartFrom,
) -> Result<BTreeMap<i32, i64>> {
    let committed = member.committed(&topic.name, &topic.partitions()).await?;
    sink.reconcile(owned, &committed).await?;
    let resumed = sink.resume(owned).await?;
    let clients = topic.clients_of(owned);
    let rule = if member.is_group() {
        start::Rule::Group
    } else {
        start::Rule::Simple
    };
    Ok(start::resolve(&clients, from, &committed, &resumed, topic.timeout, rule).await?)
}

/// The fetch tasks of one assignment, stopped when dropped.
pub(crate) struct Reading {
    pub(crate) rx: mpsc::Receiver<Fetched>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Reading {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts a fetch task for each partition of `next`, from its offset there.
pub(crate) fn spawn(topic: &Topic, next: &BTreeMap<i32, i64>) -> Reading {
    let (tx, rx) = mpsc::channel::<Fetched>(next.len() + 2);
    let limits = FetchLimits {
        wait: topic.fetch_wait,
        timeout: topic.timeout,
        bytes: fetch::fetch_max_bytes(next.len()),
    };
    let tasks = topic
        .clients_of(&next.keys().copied().collect::<Vec<_>>())
        .into_iter()
        .map(|(p, client)| {
            let partition = Partition {
                client,
                id: p,
                limits,
                enricher: topic.enricher.clone(),
                encoder: topic.encoder.clone(),
            };
            tokio::spawn(fetch::run(partition, next[&p], tx.clone()))
        })
        .collect();
    Reading { rx, tasks }
}
