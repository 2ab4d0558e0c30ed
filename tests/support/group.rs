//! Consumer groups of real `tweetpipe consume` processes, for `tests/group.rs` (tansu) and
//! `tests/containers.rs` (Apache Kafka, Redpanda): start, SIGKILL, SIGTERM instances of one
//! group sharing an output directory; wait until the group has settled, reading who owns what
//! from each instance's summary file (rewritten at every assignment); ask `tweetpipe group
//! describe --json` for the committed offsets and lag; count the tweets in the output.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use super::{summary_of, tweetpipe, Summary};

/// One `tweetpipe consume` process.
pub struct Instance {
    pub name: String,
    cmd: tokio::process::Command,
    child: tokio::process::Child,
    stderr: tokio::task::JoinHandle<String>,
}

impl Instance {
    pub fn pid(&self) -> i32 {
        self.child.id().expect("still running") as i32
    }

    /// The summary it last wrote (at its latest assignment, or at its end).
    pub fn summary(&self) -> Option<Summary> {
        summary_of(&self.cmd)
    }
}

/// How an instance ended.
pub struct Ended {
    pub code: i32,
    pub stderr: String,
    pub summary: Option<Summary>,
}

/// Who owned which partition once the group settled.
#[derive(Debug, Clone)]
pub struct Settled {
    pub generation: i64,
    /// Partition → instance name.
    pub owners: BTreeMap<i32, String>,
    /// From the start of the wait.
    pub took: Duration,
}

/// The instances of one group over one topic, writing to one directory.
pub struct Fleet {
    pub brokers: String,
    pub topic: String,
    pub group: String,
    pub partitions: i32,
    pub out: PathBuf,
    /// Flags every instance gets after the common ones.
    pub extra: Vec<String>,
    pub live: Vec<Instance>,
    /// Stderr of the instances that ended, for a failure's report.
    pub logs: Vec<(String, String)>,
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: sending a signal to a process this test started.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
}

impl Fleet {
    pub fn new(brokers: &str, topic: &str, group: &str, partitions: i32, out: &Path) -> Fleet {
        Fleet {
            brokers: brokers.to_string(),
            topic: topic.to_string(),
            group: group.to_string(),
            partitions,
            out: out.to_path_buf(),
            extra: Vec::new(),
            live: Vec::new(),
            logs: Vec::new(),
        }
    }

    /// Starts an instance called `name`.
    pub fn start(&mut self, name: &str) {
        let out = self.out.to_string_lossy().into_owned();
        let mut args: Vec<&str> = vec![
            "consume",
            "--brokers",
            &self.brokers,
            "--topic",
            &self.topic,
            "--group",
            &self.group,
            "--output",
            &out,
            "--session-timeout",
            "6s",
            "--heartbeat-interval",
            "500ms",
            "--commit-interval",
            "200ms",
            "--fetch-wait",
            "100ms",
            "--stats-interval",
            "0s",
        ];
        args.extend(self.extra.iter().map(String::as_str));
        let mut cmd = tweetpipe(&args);
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tweetpipe consume");
        let mut pipe = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s).await;
            s
        });
        self.live.push(Instance {
            name: name.to_string(),
            cmd,
            child,
            stderr,
        });
    }

    fn take(&mut self, name: &str) -> Instance {
        let i = self
            .live
            .iter()
            .position(|x| x.name == name)
            .unwrap_or_else(|| panic!("no live instance {name}"));
        self.live.remove(i)
    }

    pub fn get(&self, name: &str) -> &Instance {
        self.live.iter().find(|x| x.name == name).unwrap()
    }

    /// SIGKILL: no commit, no LeaveGroup, files left as they are.
    pub async fn kill(&mut self, name: &str) {
        let mut i = self.take(name);
        i.child.start_kill().unwrap();
        i.child.wait().await.unwrap();
        let log = i.stderr.await.unwrap();
        self.logs.push((format!("{name} (killed)"), log));
    }

    /// SIGSTOP or SIGCONT (a frozen VM, and its return).
    pub fn freeze(&self, name: &str, frozen: bool) {
        let sig = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
        signal(self.get(name).pid(), sig);
    }

    /// SIGTERM, and how it ended.
    pub async fn stop(&mut self, name: &str, limit: Duration) -> Ended {
        let mut i = self.take(name);
        signal(i.pid(), libc::SIGTERM);
        let status = tokio::time::timeout(limit, i.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{name} did not exit within {limit:?} of SIGTERM"))
            .unwrap();
        let stderr = i.stderr.await.unwrap();
        self.logs.push((name.to_string(), stderr.clone()));
        Ended {
            code: status.code().unwrap_or(-1),
            stderr,
            summary: summary_of(&i.cmd),
        }
    }

    /// Stops every live instance; each must exit 0.
    pub async fn stop_all(&mut self, limit: Duration) -> Vec<Ended> {
        let names: Vec<String> = self.live.iter().map(|i| i.name.clone()).collect();
        let mut out = Vec::new();
        for n in names {
            let e = self.stop(&n, limit).await;
            assert_eq!(e.code, 0, "{n} exited with {}:\n{}", e.code, e.stderr);
            out.push(e);
        }
        if std::env::var_os("TWEETPIPE_TEST_GROUP_LOGS").is_some() {
            eprintln!("{}", self.dump());
        }
        out
    }

    /// Every log so far (the live instances' are not in yet).
    pub fn dump(&self) -> String {
        self.logs
            .iter()
            .map(|(n, l)| format!("===== {n}\n{l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until the live instances all report the same generation and between them own
    /// every partition exactly once (read from their summaries).
    pub async fn settled(&self, limit: Duration) -> Settled {
        let started = Instant::now();
        loop {
            let last = match self.owners() {
                Ok((generation, owners)) => {
                    return Settled {
                        generation,
                        owners,
                        took: started.elapsed(),
                    }
                }
                Err(why) => why,
            };
            assert!(
                started.elapsed() < limit,
                "the group did not settle within {limit:?}: {last}\n{}",
                self.dump()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Each partition's owner, or why the group has not settled.
    fn owners(&self) -> Result<(i64, BTreeMap<i32, String>), String> {
        let mut generations = BTreeSet::new();
        let mut owners: BTreeMap<i32, String> = BTreeMap::new();
        for i in &self.live {
            let s = i
                .summary()
                .ok_or(format!("{} has no summary yet", i.name))?;
            if s.0["state"] != "running" {
                return Err(format!("{} is {}", i.name, s.0["state"]));
            }
            generations.insert(s.0["generation"].as_i64().unwrap_or(-1));
            for p in s.0["partitions"].as_array().unwrap() {
                let p = p.as_i64().unwrap() as i32;
                if let Some(other) = owners.insert(p, i.name.clone()) {
                    return Err(format!("partition {p} owned by {other} and {}", i.name));
                }
            }
        }
        if generations.len() != 1 {
            return Err(format!("generations {generations:?}"));
        }
        let all: BTreeSet<i32> = (0..self.partitions).collect();
        if owners.keys().copied().collect::<BTreeSet<_>>() != all {
            return Err(format!("owned: {owners:?}"));
        }
        Ok((*generations.first().unwrap(), owners))
    }

    /// `tweetpipe group describe --json`.
    pub async fn describe(&self) -> serde_json::Value {
        let out = tweetpipe(&[
            "group",
            "describe",
            "--brokers",
            &self.brokers,
            "--group",
            &self.group,
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "group describe: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("group describe --json prints JSON")
    }

    /// Waits until the group has committed `records` records in all (and, with that, every
    /// partition's lag is 0); the last description.
    pub async fn committed_all(&self, records: i64, limit: Duration) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let d = self.describe().await;
            let ps: Vec<&serde_json::Value> = d["partitions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["topic"] == self.topic.as_str())
                .collect();
            let sum: i64 = ps.iter().filter_map(|p| p["committed"].as_i64()).sum();
            if sum == records && ps.len() == self.partitions as usize {
                return d;
            }
            assert!(
                started.elapsed() < limit,
                "committed {sum} of {records} within {limit:?}: {d}\n{}",
                self.dump()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// How often each tweet id is in the finished `tweets-*` files of `dir`, and the unfinished
/// (`.inprogress`) files left there.
pub fn output(dir: &Path) -> (BTreeMap<String, usize>, Vec<String>) {
    let mut ids = BTreeMap::new();
    let mut unfinished = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".inprogress") {
            unfinished.push(name);
            continue;
        }
        if !name.starts_with("tweets-") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{name}: bad line {e}: {line}"));
            *ids.entry(v["id"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
    }
    (ids, unfinished)
}

/// Asserts that the finished files hold exactly `expected` (each once) and nothing is left
/// unfinished.
pub fn assert_exactly_once(dir: &Path, expected: &BTreeSet<String>) {
    let (ids, unfinished) = output(dir);
    assert!(unfinished.is_empty(), "left unfinished: {unfinished:?}");
    let twice: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(
        twice.is_empty(),
        "written more than once: {twice:?}\n{}",
        where_are(dir, twice.iter().map(|(id, _)| id.as_str()))
    );
    let missing: Vec<_> = expected
        .iter()
        .filter(|id| !ids.contains_key(*id))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "missing {} tweets, e.g. {missing:?}",
        expected.len().saturating_sub(ids.len())
    );
    assert_eq!(ids.len(), expected.len());
}

/// Every line of `ids` in `dir`'s files: file, Kafka position.
fn where_are<'a>(dir: &Path, ids: impl Iterator<Item = &'a str>) -> String {
    let ids: Vec<&str> = ids.collect();
    let mut out = String::new();
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names.iter().filter(|p| p.is_file()) {
        for l in std::fs::read_to_string(p).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            if ids.contains(&v["id"].as_str().unwrap_or("")) {
                out.push_str(&format!(
                    "{} {} {}\n",
                    p.file_name().unwrap().to_string_lossy(),
                    v["id"],
                    v["kafka"]
                ));
            }
        }
    }
    out
}

/// A stand-in stream of `n` tweets at about `per_s` a second, and their ids.
pub async fn paced_stream(
    n: usize,
    first_id: u64,
    per_s: u64,
) -> (super::twitter::StandIn, BTreeSet<String>) {
    use super::twitter::{Action, Conn, Creds, StandIn};
    let sent = super::tweets(n, first_id);
    let mut actions = Vec::new();
    for (i, t) in sent.iter().enumerate() {
        actions.push(Action::Record(t.clone()));
        if i % 10 == 9 {
            actions.push(Action::Sleep(Duration::from_millis(10_000 / per_s)));
        }
    }
    let ids = (first_id..first_id + n as u64)
        .map(|i| i.to_string())
        .collect();
    (
        StandIn::start(vec![Conn::ok(actions)], Creds::test()).await,
        ids,
    )
}

/// `produce` from `server` into `topic` on `brokers` until `n` records are delivered.
pub fn produce(
    brokers: &str,
    server: &super::twitter::StandIn,
    topic: &str,
    n: usize,
) -> tokio::process::Child {
    let url = server.url();
    let max = n.to_string();
    tweetpipe(&[
        "produce",
        "--brokers",
        brokers,
        "--topic",
        topic,
        "--stream-url",
        &url,
        "--track",
        "worldcup",
        "--max-records",
        &max,
        "--stats-interval",
        "0s",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap()
}

/// `tweetpipe topic create`.
pub async fn create_topic(brokers: &str, topic: &str, partitions: i32, replication: i32) {
    let (p, r) = (partitions.to_string(), replication.to_string());
    let out = tweetpipe(&[
        "topic",
        "create",
        "--brokers",
        brokers,
        "--topic",
        topic,
        "--partitions",
        &p,
        "--replication-factor",
        &r,
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .output()
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "topic create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const SCENARIO_LIMIT: Duration = Duration::from_secs(180);

/// A member SIGKILLed and restarted at once (within its session timeout) while `produce`
/// streams: the group settles with it again, and the union of the output is exactly once.
/// Kafka and Redpanda wait for the dead member's session to end; tansu 0.6.0 can re-form
/// the group under the same generation with two owners of a partition (docs/consumer-groups.md).
pub async fn restart_at_once_after_sigkill(brokers: &str, replication: i32) {
    let n = 4_000;
    let topic = super::topic("restart-at-once");
    create_topic(brokers, &topic, 4, replication).await;
    let (server, ids) = paced_stream(n, 9_500_000, 250).await;
    let mut producer = produce(brokers, &server, &topic, n);
    let out = tempfile::tempdir().unwrap();
    let mut fleet = Fleet::new(brokers, &topic, &topic, 4, out.path());
    fleet.start("a");
    fleet.start("b");
    fleet.settled(SCENARIO_LIMIT).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    fleet.kill("a").await;
    let restarted = Instant::now();
    fleet.start("a2");
    let s = fleet.settled(SCENARIO_LIMIT).await;
    eprintln!(
        "restart at once after SIGKILL: settled {:?} after the restart: {:?}",
        restarted.elapsed(),
        s.owners
    );
    assert!(producer.wait().await.unwrap().success());
    fleet.committed_all(n as i64, SCENARIO_LIMIT).await;
    fleet.stop_all(SCENARIO_LIMIT).await;
    assert_exactly_once(out.path(), &ids);
}

/// A member frozen (SIGSTOP) past its session timeout while `produce` streams: the other
/// takes its partitions; when it thaws, its commits are refused (the broker fences its old
/// generation), so it drops what it wrote since its last commit and rejoins. The union of
/// the output is exactly once. Needs a broker that fences commits by generation (Kafka,
/// Redpanda); tansu 0.6.0 does not.
pub async fn frozen_member_is_fenced(brokers: &str, replication: i32) {
    let n = 4_000;
    let topic = super::topic("fenced");
    create_topic(brokers, &topic, 4, replication).await;
    let (server, ids) = paced_stream(n, 9_700_000, 250).await;
    let mut producer = produce(brokers, &server, &topic, n);
    let out = tempfile::tempdir().unwrap();
    let mut fleet = Fleet::new(brokers, &topic, &topic, 4, out.path());
    fleet.start("a");
    fleet.start("b");
    fleet.settled(SCENARIO_LIMIT).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    fleet.freeze("a", true);
    // Past the 6 s session timeout, and past b's takeover.
    tokio::time::sleep(Duration::from_secs(15)).await;
    fleet.freeze("a", false);
    let s = fleet.settled(SCENARIO_LIMIT).await;
    eprintln!("after the thaw: {:?}", s.owners);
    assert!(producer.wait().await.unwrap().success());
    fleet.committed_all(n as i64, SCENARIO_LIMIT).await;
    fleet.stop_all(SCENARIO_LIMIT).await;
    assert_exactly_once(out.path(), &ids);
}
