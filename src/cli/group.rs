//! `tweetpipe group list|describe`: the consumer groups, and one group's members, their
//! partitions, committed offsets and lag, without Kafka's own shell tools. The data is
//! [`crate::kafka::group::inspect`]'s; this is the tables (or JSON, for scripts).

use std::fmt::Write as _;

use serde_json::json;

use super::output;
use super::topic::table;
use super::{GroupCommand, GroupDescribeArgs, GroupListArgs};
use crate::error::{Error, Result};
use crate::kafka::group::inspect::{self, GroupDescription};

pub(crate) async fn run(cmd: GroupCommand) -> Result<()> {
    match cmd {
        GroupCommand::List(args) => list(&args).await,
        GroupCommand::Describe(args) => describe(&args).await,
    }
}

async fn list(args: &GroupListArgs) -> Result<()> {
    let cluster = super::kafka::cluster(&args.kafka)?;
    let groups = inspect::list_groups(&cluster.brokers, &cluster.security, cluster.timeout).await?;
    if args.json {
        let v: Vec<_> = groups
            .iter()
            .map(|g| {
                json!({"group": g.group_id, "protocol_type": g.protocol_type,
                       "state": g.state, "coordinator": g.coordinator})
            })
            .collect();
        return output::print(format!("{}\n", json!({ "groups": v })));
    }
    if groups.is_empty() {
        return output::print("no consumer groups\n");
    }
    let mut rows = vec![["GROUP", "TYPE", "STATE", "COORDINATOR"]
        .map(String::from)
        .to_vec()];
    for g in &groups {
        rows.push(vec![
            g.group_id.clone(),
            dash(&g.protocol_type),
            g.state.clone().unwrap_or_else(|| "-".into()),
            g.coordinator.clone(),
        ]);
    }
    let mut out = String::new();
    table(&mut out, &rows);
    output::print(out)
}

async fn describe(args: &GroupDescribeArgs) -> Result<()> {
    let cluster = super::kafka::cluster(&args.kafka)?;
    if args.group.is_empty() {
        return Err(Error::usage("--group is empty; give the group to describe"));
    }
    let d = inspect::describe_group(
        &cluster.brokers,
        &cluster.security,
        &args.group,
        cluster.timeout,
    )
    .await?;
    if d.members.is_empty() && d.partitions.is_empty() {
        return Err(Error::runtime(format!(
            "group {:?} has no members and no committed offsets on {} (see `tweetpipe group list`)",
            args.group,
            cluster.brokers_text()
        )));
    }
    output::print(if args.json { as_json(&d) } else { as_text(&d) })
}

fn as_text(d: &GroupDescription) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "group: {}", d.group_id);
    let _ = writeln!(
        out,
        "state: {}  assignor: {}  coordinator: {}",
        d.state,
        dash(&d.assignor),
        d.coordinator
    );
    let _ = writeln!(out, "members: {}", d.members.len());
    if !d.members.is_empty() {
        out.push('\n');
        let mut rows = vec![["MEMBER", "INSTANCE", "CLIENT", "HOST", "PARTITIONS"]
            .map(String::from)
            .to_vec()];
        for m in &d.members {
            let parts: Vec<String> = m
                .assignment
                .iter()
                .map(|(t, ps)| format!("{t}:{}", list_of(ps)))
                .collect();
            rows.push(vec![
                m.member_id.clone(),
                m.instance_id.clone().unwrap_or_else(|| "-".into()),
                dash(&m.client_id),
                dash(&m.client_host),
                if parts.is_empty() {
                    "-".into()
                } else {
                    parts.join(" ")
                },
            ]);
        }
        table(&mut out, &rows);
        if d.members.iter().all(|m| m.assignment.is_empty()) {
            out.push_str("(the broker reports no member's partitions; tansu never does)\n");
        }
    }
    if !d.partitions.is_empty() {
        out.push('\n');
        let mut rows = vec![
            ["TOPIC", "PARTITION", "COMMITTED", "LOG END", "LAG", "OWNER"]
                .map(String::from)
                .to_vec(),
        ];
        for p in &d.partitions {
            let num = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
            rows.push(vec![
                p.topic.clone(),
                p.partition.to_string(),
                num(p.committed),
                num(p.log_end),
                num(p.lag()),
                p.owner.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        table(&mut out, &rows);
        let lags: Vec<i64> = d.partitions.iter().filter_map(|p| p.lag()).collect();
        let _ = writeln!(
            out,
            "total lag: {} ({} of {} partitions known)",
            lags.iter().sum::<i64>(),
            lags.len(),
            d.partitions.len()
        );
    }
    out
}

fn as_json(d: &GroupDescription) -> String {
    let members: Vec<_> = d
        .members
        .iter()
        .map(|m| {
            json!({"member_id": m.member_id, "instance_id": m.instance_id,
                   "client_id": m.client_id, "client_host": m.client_host,
                   "topics": m.topics, "assignment": m.assignment})
        })
        .collect();
    let partitions: Vec<_> = d
        .partitions
        .iter()
        .map(|p| {
            json!({"topic": p.topic, "partition": p.partition, "committed": p.committed,
                   "log_end": p.log_end, "lag": p.lag(), "owner": p.owner})
        })
        .collect();
    let v = json!({
        "group": d.group_id, "state": d.state, "protocol_type": d.protocol_type,
        "assignor": d.assignor, "coordinator": d.coordinator,
        "members": members, "partitions": partitions,
    });
    format!("{v}\n")
}

fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

fn list_of(ps: &[i32]) -> String {
    ps.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}
