//! `tweetpipe topic create|describe`: the topic's partitions, replication factor and
//! configuration (retention above all), without needing Kafka's own shell tools. The work is
//! [`crate::kafka::topic`]'s; this is the flags, the wording of errors and the tables.
//!
//! Exit codes: a malformed flag, or a value the broker rejects as invalid (replication factor,
//! partitions, a config, a policy), is a usage error (2): the command line needs fixing. A topic
//! that already exists is a runtime error (1): the command line is fine, the cluster's state
//! is not what it expected, and `create` never changes an existing topic; the message points to
//! `describe`. An unknown topic in `describe` is likewise exit 1.

use std::fmt::Write as _;

use kafka_protocol::ResponseError;

use super::output;
use super::{TopicCommand, TopicCreateArgs, TopicDescribeArgs};
use crate::error::{Error, Result};
use crate::kafka as kafka_layer;
use crate::kafka::connection::error_name;
use crate::kafka::topic::{self, TopicSpec};

/// DescribeConfigs config source "set on this topic" (DYNAMIC_TOPIC_CONFIG).
const SOURCE_TOPIC: i8 = 1;

pub(crate) async fn run(cmd: TopicCommand) -> Result<()> {
    match cmd {
        TopicCommand::Create(args) => create(&args).await,
        TopicCommand::Describe(args) => describe(&args).await,
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

async fn create(args: &TopicCreateArgs) -> Result<()> {
    let cluster = super::kafka::cluster(&args.kafka)?;
    let name = super::kafka::topic(&args.kafka)?;
    super::produce::check(
        args.partitions >= 1,
        &format!("--partitions must be at least 1, got {}", args.partitions),
    )?;
    super::produce::check(
        args.replication_factor >= 1,
        &format!(
            "--replication-factor must be at least 1, got {}",
            args.replication_factor
        ),
    )?;
    let configs = topic_configs(args)?;
    let spec = TopicSpec {
        name: name.clone(),
        partitions: args.partitions,
        replication_factor: args.replication_factor,
        configs: configs
            .iter()
            .map(|c| (c.key.clone(), c.value.clone()))
            .collect(),
    };
    let created = topic::create(&cluster, &spec)
        .await
        .map_err(|e| explain_create(e, args, &configs))?;
    let mut out = format!(
        "created topic {name}: {} partitions, replication factor {}\n",
        created.partitions, created.replication_factor
    );
    if configs.is_empty() {
        out.push_str("configs: the broker's defaults\n");
    } else {
        for c in &configs {
            let _ = writeln!(out, "  {}={}", c.key, c.value);
        }
    }
    output::print(out)
}

/// A failed create, in the words of the flags that can fix it.
fn explain_create(e: kafka_layer::Error, args: &TopicCreateArgs, configs: &[TopicConfig]) -> Error {
    let topic = &args.kafka.topic;
    let (code, message) = match &e {
        kafka_layer::Error::TopicExists { brokers, .. } => {
            return Error::runtime(format!(
            "topic {topic:?} already exists on {brokers}; create never changes an existing topic. \
                 See its settings with `tweetpipe topic describe --topic {topic}`"
        ))
        }
        kafka_layer::Error::TopicRefused { code, message, .. } => (*code, message.clone()),
        kafka_layer::Error::Broker { code, .. }
            if e.code() == Some(ResponseError::RequestTimedOut) =>
        {
            return Error::runtime(format!(
                "creating topic {topic:?}: the controller did not finish in time ({}); \
                 it may still appear: check with `tweetpipe topic describe --topic {topic}`",
                error_name(*code)
            ))
        }
        _ => return e.into(),
    };
    let broker_msg = message.unwrap_or_default();
    let detail = if broker_msg.is_empty() {
        error_name(code)
    } else {
        format!("{} - {broker_msg}", error_name(code))
    };
    Error::usage(match ResponseError::try_from_code(code) {
        Some(ResponseError::InvalidReplicationFactor) => format!(
            "cannot create topic {topic:?}: --replication-factor {} is invalid ({detail}); it must be at least 1 and at most the number of brokers",
            args.replication_factor
        ),
        Some(ResponseError::InvalidPartitions) => format!(
            "cannot create topic {topic:?}: --partitions {} is invalid ({detail})",
            args.partitions
        ),
        Some(ResponseError::InvalidReplicaAssignment) => format!(
            "cannot create topic {topic:?}: the broker cannot place {} partitions with --replication-factor {} ({detail})",
            args.partitions, args.replication_factor
        ),
        Some(ResponseError::InvalidConfig) => format!(
            "cannot create topic {topic:?}: the broker rejected its configuration ({detail}); fix {}",
            blame(configs, &broker_msg)
        ),
        Some(ResponseError::PolicyViolation) => format!(
            "cannot create topic {topic:?}: the cluster's topic policy refuses it ({detail}); adjust --partitions, --replication-factor or {}",
            blame(configs, &broker_msg)
        ),
        _ => format!(
            "--topic {topic:?} is not a valid topic name ({detail}); use letters, digits, '.', '_' and '-', at most 249 characters"
        ),
    })
}

async fn describe(args: &TopicDescribeArgs) -> Result<()> {
    let cluster = super::kafka::cluster(&args.kafka)?;
    let name = super::kafka::topic(&args.kafka)?;
    let d = match topic::describe(&cluster, &name).await {
        Ok(d) => d,
        Err(kafka_layer::Error::UnknownTopic { topic, brokers }) => {
            return Err(Error::runtime(format!(
                "topic {topic:?} does not exist on {brokers}; create it with `tweetpipe topic create --topic {topic}`"
            )))
        }
        Err(e @ kafka_layer::Error::TopicRefused { .. }) => {
            return Err(Error::usage(format!(
                "--topic {name:?} is not a valid topic name ({})",
                crate::error::chain(&e)
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = partitions_table(&name, &d);
    // Configs come after the partition table, so that a broker without DescribeConfigs still
    // shows the partitions before the error.
    out.push('\n');
    match d.configs {
        Ok(configs) => configs_table(&mut out, configs),
        Err(e) => {
            output::print(&out)?;
            return Err(e.into());
        }
    }
    output::print(out)
}

fn partitions_table(name: &str, d: &topic::Description) -> String {
    let rf = d
        .partitions
        .iter()
        .map(|p| p.replicas.len())
        .max()
        .unwrap_or(0);
    let ids = |v: &[i32]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
        }
    };
    let mut out = String::new();
    let _ = writeln!(out, "topic: {name}");
    let _ = writeln!(
        out,
        "partitions: {}  replication factor: {rf}",
        d.partitions.len()
    );
    let mut brokers: Vec<String> = d
        .brokers
        .iter()
        .map(|(id, host, port)| format!("{id}={host}:{port}"))
        .collect();
    brokers.sort();
    let _ = writeln!(out, "brokers: {}", brokers.join(" "));
    out.push('\n');
    let any_offline = d.partitions.iter().any(|p| !p.offline.is_empty());
    let any_error = d.partitions.iter().any(|p| p.error != 0);
    let mut header = vec!["PARTITION", "LEADER", "REPLICAS", "ISR"];
    if any_offline {
        header.push("OFFLINE");
    }
    if any_error {
        header.push("ERROR");
    }
    let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
    for p in &d.partitions {
        let mut row = vec![
            p.index.to_string(),
            p.leader.map_or("none".to_string(), |l| l.to_string()),
            ids(&p.replicas),
            ids(&p.isr),
        ];
        if any_offline {
            row.push(ids(&p.offline));
        }
        if any_error {
            row.push(if p.error == 0 {
                String::new()
            } else {
                error_name(p.error)
            });
        }
        rows.push(row);
    }
    table(&mut out, &rows);
    out
}

fn configs_table(out: &mut String, mut configs: Vec<topic::ConfigEntry>) {
    if configs.is_empty() {
        out.push_str("configs: none reported by the broker\n");
        return;
    }
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    let mut rows = vec![vec![
        "  CONFIG".to_string(),
        "VALUE".into(),
        "SOURCE".into(),
    ]];
    for c in &configs {
        let value = match &c.value {
            _ if c.sensitive => "(sensitive)".to_string(),
            Some(v) => v.clone(),
            None => "(null)".to_string(),
        };
        let mark = if c.source == SOURCE_TOPIC { "*" } else { " " };
        rows.push(vec![
            format!("{mark} {}", c.name),
            value,
            source_name(c.source).to_string(),
        ]);
    }
    table(out, &rows);
    if configs.iter().any(|c| c.source == SOURCE_TOPIC) {
        out.push_str("* = set on this topic (not a default)\n");
    }
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
pub(super) fn table(out: &mut String, rows: &[Vec<String>]) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn args(configs: &[&str]) -> TopicCreateArgs {
        TopicCreateArgs {
            kafka: crate::cli::kafka::tests::args(),
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
