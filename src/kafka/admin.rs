//! `tweetpipe topic create|describe`: the topic's partitions, replication factor and
//! configuration (retention above all), without needing Kafka's own shell tools.
//!
//! rskafka's CreateTopics carries no configs and it has no DescribeConfigs, so both speak the
//! protocol on our own [`Connection`]. CreateTopics goes to the controller (Metadata names it),
//! as Kafka requires; Metadata and DescribeConfigs for a topic can be answered by any broker.
//!
//! Exit codes: a malformed flag, or a value the broker rejects as invalid (replication factor,
//! partitions, a config, a policy), is a usage error (2): the command line needs fixing. A topic
//! that already exists is a runtime error (1): the command line is fine, the cluster's state
//! is not what it expected, and `create` never changes an existing topic; the message points to
//! `describe`. An unknown topic in `describe` is likewise exit 1.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use kafka_protocol::messages::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::metadata_response::MetadataResponse;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::client::parse_brokers;
use super::connection::{connect_any, error_name, Connection};
use super::security::Security;
use crate::cli::{TopicCommand, TopicCreateArgs, TopicDescribeArgs};
use crate::error::{Error, Result};

/// DescribeConfigs resource type of a topic.
const RESOURCE_TOPIC: i8 = 2;
/// DescribeConfigs config source "set on this topic" (DYNAMIC_TOPIC_CONFIG).
const SOURCE_TOPIC: i8 = 1;

pub async fn run(cmd: TopicCommand) -> Result<()> {
    match cmd {
        TopicCommand::Create(args) => create(*args).await,
        TopicCommand::Describe(args) => describe(*args).await,
    }
}

/// One topic config to set, and the flag it came from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
struct TopicConfig {
    key: String,
    value: String,
    flag: String,
}

/// The configs `create` sets: the dedicated flags first, then each `--config KEY=VALUE`.
fn topic_configs(args: &TopicCreateArgs) -> Result<Vec<TopicConfig>> {
    let mut out: Vec<TopicConfig> = Vec::new();
    if let Some(d) = args.retention {
        let ms = i64::try_from(d.as_millis())
            .map_err(|_| Error::usage(format!("--retention {d:?} is too long; give at most a few million years, or -1 via --config retention.ms=-1 for no limit")))?;
        out.push(TopicConfig {
            key: "retention.ms".into(),
            value: ms.to_string(),
            flag: "--retention".into(),
        });
    }
    if let Some(b) = args.retention_bytes {
        out.push(TopicConfig {
            key: "retention.bytes".into(),
            value: b.to_string(),
            flag: "--retention-bytes".into(),
        });
    }
    if let Some(b) = args.segment_bytes {
        out.push(TopicConfig {
            key: "segment.bytes".into(),
            value: b.to_string(),
            flag: "--segment-bytes".into(),
        });
    }
    for raw in &args.configs {
        let parsed = raw
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .filter(|(k, _)| {
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            });
        let Some((key, value)) = parsed else {
            return Err(Error::usage(format!(
                "--config {raw:?} is not KEY=VALUE with a Kafka topic config name as KEY; e.g. --config cleanup.policy=delete"
            )));
        };
        if let Some(earlier) = out.iter().find(|c| c.key == key) {
            return Err(Error::usage(format!(
                "--config {raw:?} sets {key}, which {} already sets; give it once",
                if earlier.flag == "--config" {
                    "another --config".to_string()
                } else {
                    earlier.flag.clone()
                }
            )));
        }
        out.push(TopicConfig {
            key: key.into(),
            value: value.into(),
            flag: "--config".into(),
        });
    }
    Ok(out)
}

/// The flags to blame for a config error: those whose config the broker's message names, else
/// all config flags given.
fn blame(configs: &[TopicConfig], broker_message: &str) -> String {
    let named: Vec<&TopicConfig> = configs
        .iter()
        .filter(|c| broker_message.contains(&c.key))
        .collect();
    let list = if named.is_empty() {
        configs.iter().collect()
    } else {
        named
    };
    let mut flags: Vec<String> = list
        .iter()
        .map(|c| {
            if c.flag == "--config" {
                format!("--config {}={}", c.key, c.value)
            } else {
                format!("{} ({}={})", c.flag, c.key, c.value)
            }
        })
        .collect();
    flags.dedup();
    if flags.is_empty() {
        "the topic configuration".to_string()
    } else {
        flags.join(", ")
    }
}

/// Metadata: the cluster's brokers and controller, and `topics` (none: `&[]`).
async fn metadata(conn: &mut Connection, topics: &[&str]) -> Result<MetadataResponse> {
    let version = conn.version::<MetadataRequest>()?;
    let mut req = MetadataRequest::default().with_topics(Some(
        topics
            .iter()
            .map(|t| {
                MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(t.to_string()))))
            })
            .collect(),
    ));
    if version == 0 && topics.is_empty() {
        // In version 0 an empty list means all topics; there is no way to ask for none.
        req.topics = Some(Vec::new());
    }
    if version >= 4 {
        // Asking about a topic must never create it (brokers with auto-create on would).
        req.allow_auto_topic_creation = false;
    }
    Ok(conn.request(&req).await?)
}

async fn create(args: TopicCreateArgs) -> Result<()> {
    let brokers = parse_brokers(&args.kafka.brokers)?;
    let topic = args.kafka.topic.clone();
    if topic.is_empty() {
        return Err(Error::usage(
            "--topic is empty; give the topic name, e.g. --topic twitterdata",
        ));
    }
    if args.partitions < 1 {
        return Err(Error::usage(format!(
            "--partitions must be at least 1, got {}",
            args.partitions
        )));
    }
    if args.replication_factor < 1 {
        return Err(Error::usage(format!(
            "--replication-factor must be at least 1, got {}",
            args.replication_factor
        )));
    }
    let configs = topic_configs(&args)?;
    let timeout = args.kafka.kafka_timeout;
    let security = Security::from_args(&args.kafka)?;

    // The broker gets 3/4 of our time limit to create the topic, so its own answer (success,
    // or REQUEST_TIMED_OUT) arrives before we give up waiting for it.
    let broker_timeout_ms = i32::try_from((timeout * 3 / 4).as_millis()).unwrap_or(i32::MAX);
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(broker_timeout_ms)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.clone())))
            .with_num_partitions(args.partitions)
            .with_replication_factor(args.replication_factor)
            .with_configs(
                configs
                    .iter()
                    .map(|c| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(c.key.clone()))
                            .with_value(Some(StrBytes::from_string(c.value.clone())))
                    })
                    .collect(),
            )]);

    let mut boot = connect_any(&brokers, timeout, &security).await?;
    // NOT_CONTROLLER means the controller moved between our Metadata and CreateTopics; ask
    // again, within the time limit.
    let deadline = Instant::now() + timeout;
    let result = loop {
        let mut controller = controller(&mut boot, timeout, &security).await?;
        let conn = controller.as_mut().unwrap_or(&mut boot);
        let resp = conn.request(&req).await?;
        let Some(result) = resp.topics.into_iter().find(|t| t.name.0.as_str() == topic) else {
            return Err(Error::runtime(format!(
                "creating topic {topic:?}: the controller {} answered without it",
                conn.addr()
            )));
        };
        if result.error_code == ResponseError::NotController.code()
            && Instant::now() + Duration::from_millis(200) < deadline
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        break result;
    };

    if result.error_code != 0 {
        let code = result.error_code;
        let broker_msg = result
            .error_message
            .map(|m| m.to_string())
            .unwrap_or_default();
        let detail = if broker_msg.is_empty() {
            error_name(code)
        } else {
            format!("{} - {broker_msg}", error_name(code))
        };
        return Err(match ResponseError::try_from_code(code) {
            Some(ResponseError::TopicAlreadyExists) => Error::runtime(format!(
                "topic {topic:?} already exists on {}; create never changes an existing topic. \
                 See its settings with `tweetpipe topic describe --topic {topic}`",
                brokers.join(",")
            )),
            Some(ResponseError::InvalidReplicationFactor) => Error::usage(format!(
                "cannot create topic {topic:?}: --replication-factor {} is invalid ({detail}); it must be at least 1 and at most the number of brokers",
                args.replication_factor
            )),
            Some(ResponseError::InvalidPartitions) => {
                Error::usage(format!("cannot create topic {topic:?}: --partitions {} is invalid ({detail})", args.partitions))
            }
            Some(ResponseError::InvalidReplicaAssignment) => Error::usage(format!(
                "cannot create topic {topic:?}: the broker cannot place {} partitions with --replication-factor {} ({detail})",
                args.partitions, args.replication_factor
            )),
            Some(ResponseError::InvalidConfig) => Error::usage(format!(
                "cannot create topic {topic:?}: the broker rejected its configuration ({detail}); fix {}",
                blame(&configs, &broker_msg)
            )),
            Some(ResponseError::PolicyViolation) => Error::usage(format!(
                "cannot create topic {topic:?}: the cluster's topic policy refuses it ({detail}); adjust --partitions, --replication-factor or {}",
                blame(&configs, &broker_msg)
            )),
            Some(ResponseError::InvalidTopicException) => Error::usage(format!(
                "--topic {topic:?} is not a valid topic name ({detail}); use letters, digits, '.', '_' and '-', at most 249 characters"
            )),
            Some(ResponseError::RequestTimedOut) => Error::runtime(format!(
                "creating topic {topic:?}: the controller did not finish within {broker_timeout_ms} ms ({detail}); \
                 it may still appear: check with `tweetpipe topic describe --topic {topic}`"
            )),
            _ => Error::runtime(format!("cannot create topic {topic:?}: {detail}")),
        });
    }

    // Version 5+ answers with what the topic actually got; older versions (and brokers that
    // leave them out) leave these at -1, and we print what we asked for.
    let partitions = if result.num_partitions > 0 {
        result.num_partitions
    } else {
        args.partitions
    };
    let rf = if result.replication_factor > 0 {
        result.replication_factor
    } else {
        args.replication_factor
    };
    let mut out =
        format!("created topic {topic}: {partitions} partitions, replication factor {rf}\n");
    if configs.is_empty() {
        out.push_str("configs: the broker's defaults\n");
    } else {
        for c in &configs {
            let _ = writeln!(out, "  {}={}", c.key, c.value);
        }
    }
    print_stdout(&out)
}

/// A connection to the controller, or `None` when `boot` is the controller (or the cluster
/// names none, in which case any broker forwards the request).
async fn controller(
    boot: &mut Connection,
    timeout: Duration,
    security: &Security,
) -> Result<Option<Connection>> {
    let md = metadata(boot, &[]).await?;
    let Some(ctrl) = md.brokers.iter().find(|b| b.node_id == md.controller_id) else {
        return Ok(None);
    };
    let addr = format!("{}:{}", ctrl.host, ctrl.port);
    if addr == boot.addr() {
        return Ok(None);
    }
    let conn = Connection::connect(&addr, timeout, security)
        .await
        .map_err(|e| {
            Error::runtime(format!(
                "cannot reach the Kafka controller (broker {}) at {addr}: {e}",
                ctrl.node_id.0
            ))
        })?;
    Ok(Some(conn))
}

async fn describe(args: TopicDescribeArgs) -> Result<()> {
    let brokers = parse_brokers(&args.kafka.brokers)?;
    let topic = args.kafka.topic.clone();
    if topic.is_empty() {
        return Err(Error::usage(
            "--topic is empty; give the topic name, e.g. --topic twitterdata",
        ));
    }
    let security = Security::from_args(&args.kafka)?;
    let mut conn = connect_any(&brokers, args.kafka.kafka_timeout, &security).await?;
    let md = metadata(&mut conn, &[&topic]).await?;
    let missing = || {
        Error::runtime(format!(
            "topic {topic:?} does not exist on {}; create it with `tweetpipe topic create --topic {topic}`",
            brokers.join(",")
        ))
    };
    let Some(t) = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
    else {
        return Err(missing());
    };
    match ResponseError::try_from_code(t.error_code) {
        None => {}
        Some(ResponseError::UnknownTopicOrPartition) => return Err(missing()),
        Some(ResponseError::InvalidTopicException) => {
            return Err(Error::usage(format!(
                "--topic {topic:?} is not a valid topic name ({})",
                error_name(t.error_code)
            )))
        }
        Some(_) => {
            return Err(Error::runtime(format!(
                "describing topic {topic:?}: {}",
                error_name(t.error_code)
            )))
        }
    }
    if t.partitions.is_empty() {
        return Err(missing());
    }

    let mut partitions = t.partitions.clone();
    partitions.sort_by_key(|p| p.partition_index);
    let rf = partitions
        .iter()
        .map(|p| p.replica_nodes.len())
        .max()
        .unwrap_or(0);
    let ids = |v: &[kafka_protocol::messages::BrokerId]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.iter()
                .map(|b| b.0.to_string())
                .collect::<Vec<_>>()
                .join(",")
        }
    };
    let mut out = String::new();
    let _ = writeln!(out, "topic: {topic}");
    let _ = writeln!(
        out,
        "partitions: {}  replication factor: {rf}",
        partitions.len()
    );
    let mut brokers_line: Vec<String> = md
        .brokers
        .iter()
        .map(|b| format!("{}={}:{}", b.node_id.0, b.host, b.port))
        .collect();
    brokers_line.sort();
    let _ = writeln!(out, "brokers: {}", brokers_line.join(" "));
    out.push('\n');
    let any_offline = partitions.iter().any(|p| !p.offline_replicas.is_empty());
    let any_error = partitions.iter().any(|p| p.error_code != 0);
    let mut rows = vec![{
        let mut h = vec![
            "PARTITION".to_string(),
            "LEADER".into(),
            "REPLICAS".into(),
            "ISR".into(),
        ];
        if any_offline {
            h.push("OFFLINE".into());
        }
        if any_error {
            h.push("ERROR".into());
        }
        h
    }];
    for p in &partitions {
        let leader = if p.leader_id.0 < 0 {
            "none".to_string()
        } else {
            p.leader_id.0.to_string()
        };
        let mut row = vec![
            p.partition_index.to_string(),
            leader,
            ids(&p.replica_nodes),
            ids(&p.isr_nodes),
        ];
        if any_offline {
            row.push(ids(&p.offline_replicas));
        }
        if any_error {
            row.push(if p.error_code == 0 {
                String::new()
            } else {
                error_name(p.error_code)
            });
        }
        rows.push(row);
    }
    table(&mut out, &rows);

    // Configs come after the partition table, so that a broker without DescribeConfigs still
    // shows the partitions before the error.
    out.push('\n');
    let configs = match describe_configs(&mut conn, &topic).await {
        Ok(c) => c,
        Err(e) => {
            print_stdout(&out)?;
            return Err(e);
        }
    };
    if configs.is_empty() {
        out.push_str("configs: none reported by the broker\n");
    } else {
        let mut configs = configs;
        configs.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        let mut rows = vec![vec!["CONFIG".to_string(), "VALUE".into(), "SOURCE".into()]];
        for c in &configs {
            let value = match &c.value {
                _ if c.is_sensitive => "(sensitive)".to_string(),
                Some(v) => v.to_string(),
                None => "(null)".to_string(),
            };
            let marked = if c.config_source == SOURCE_TOPIC {
                format!("* {}", c.name)
            } else {
                format!("  {}", c.name)
            };
            rows.push(vec![
                marked,
                value,
                source_name(c.config_source).to_string(),
            ]);
        }
        // Header aligned with the two-character marker column.
        rows[0][0] = format!("  {}", rows[0][0]);
        table(&mut out, &rows);
        if configs.iter().any(|c| c.config_source == SOURCE_TOPIC) {
            out.push_str("* = set on this topic (not a default)\n");
        }
    }
    print_stdout(&out)
}

async fn describe_configs(
    conn: &mut Connection,
    topic: &str,
) -> Result<Vec<DescribeConfigsResourceResult>> {
    let req =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(StrBytes::from_string(topic.to_string()))
            .with_configuration_keys(None)]);
    let resp = conn.request(&req).await?;
    let Some(r) = resp
        .results
        .into_iter()
        .find(|r| r.resource_name.as_str() == topic)
    else {
        return Err(Error::runtime(format!(
            "describing the configs of topic {topic:?}: {} answered without it",
            conn.addr()
        )));
    };
    if r.error_code != 0 {
        let msg = r
            .error_message
            .map(|m| format!(" - {m}"))
            .unwrap_or_default();
        return Err(Error::runtime(format!(
            "describing the configs of topic {topic:?}: {}{msg}",
            error_name(r.error_code)
        )));
    }
    Ok(r.configs)
}

/// DescribeConfigs `config_source` (version 1+) in words.
fn source_name(source: i8) -> &'static str {
    match source {
        1 => "topic",
        2 => "dynamic broker",
        3 => "dynamic cluster default",
        4 => "broker config file",
        5 => "default",
        6 => "broker logger",
        7 => "client metrics",
        8 => "group",
        _ => "unknown",
    }
}

/// Left-aligned columns, two spaces apart.
fn table(out: &mut String, rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// Writes to stdout, reporting a closed pipe as an error instead of panicking like `print!`.
fn print_stdout(s: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(s.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::runtime(format!("writing to stdout: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::KafkaArgs;

    fn args(configs: &[&str]) -> TopicCreateArgs {
        TopicCreateArgs {
            kafka: KafkaArgs {
                brokers: "127.0.0.1:9092".into(),
                topic: "t".into(),
                kafka_timeout: Duration::from_secs(1),
                kafka_tls: false,
                kafka_ca_file: None,
                kafka_cert_file: None,
                kafka_key_file: None,
                sasl_mechanism: None,
                sasl_username: None,
            },
            partitions: 3,
            replication_factor: 1,
            retention: Some(Duration::from_secs(7 * 86400)),
            retention_bytes: None,
            segment_bytes: Some(1 << 20),
            configs: configs.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn configs_from_flags_and_config() {
        let c = topic_configs(&args(&[
            "cleanup.policy=delete",
            " max.message.bytes = 2000000 ",
        ]))
        .unwrap();
        let kv: Vec<(&str, &str)> = c
            .iter()
            .map(|c| (c.key.as_str(), c.value.as_str()))
            .collect();
        assert_eq!(
            kv,
            [
                ("retention.ms", "604800000"),
                ("segment.bytes", "1048576"),
                ("cleanup.policy", "delete"),
                ("max.message.bytes", "2000000")
            ]
        );
    }

    #[test]
    fn malformed_and_duplicate_configs_are_usage_errors() {
        for bad in ["cleanup.policy", "=delete", "clean up=delete", ""] {
            let e = topic_configs(&args(&[bad])).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
            assert!(
                e.to_string().contains("--config") && e.to_string().contains("KEY=VALUE"),
                "{e}"
            );
        }
        let e = topic_configs(&args(&["retention.ms=1"])).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("--retention"), "{e}");
    }

    #[test]
    fn blame_names_the_flag_the_broker_names() {
        let c = topic_configs(&args(&["cleanup.policy=wrong"])).unwrap();
        assert_eq!(
            blame(&c, "Invalid value wrong for configuration cleanup.policy"),
            "--config cleanup.policy=wrong"
        );
        assert_eq!(
            blame(&c, "bad segment.bytes"),
            "--segment-bytes (segment.bytes=1048576)"
        );
        assert!(blame(&c, "something").contains("--retention (retention.ms=604800000)"));
    }
}
