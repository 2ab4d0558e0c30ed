//! The fault suite: the faults users hit, against a real broker process and the local Twitter
//! stand-in, each case asserting on the set of tweet ids that reach the topic (or the
//! consumer's output).
//!
//! Kafka side (brokers of the tests' own, so stopping one does not stall other tests):
//! stopped with SIGSTOP mid-stream, absent at start, and the producer SIGKILLed while its spill
//! holds records (with a torn tail made on purpose). Twitter side: what `tests/produce.rs`
//! does not already cover (a 10 MB line, invalid UTF-8). Consumer: SIGKILLed repeatedly while
//! the producer is still streaming.
//!
//! Each test prints its figures (records, faults, duplicates) with `eprintln!`;
//! docs/reliability.md quotes them.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::twitter::{Action, Conn, Creds, StandIn};
use support::*;
use tokio::io::AsyncReadExt;

const LIMIT: Duration = Duration::from_secs(180);

fn id_of(value: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(value).expect("JSON");
    v["id_str"].as_str().expect("id_str").to_string()
}

/// `tweets` served `per_tick` at a time every `tick` (about per_tick/tick tweets a second),
/// then the connection is held open.
fn paced(tweets: &[Vec<u8>], per_tick: usize, tick: Duration) -> Vec<Action> {
    let mut actions = Vec::new();
    for chunk in tweets.chunks(per_tick) {
        actions.push(Action::Records(Arc::new(chunk.to_vec())));
        actions.push(Action::Sleep(tick));
    }
    actions.push(Action::Stall);
    actions
}

/// A stand-in that streams `sent` once, `per_tick` tweets every `tick`.
async fn paced_standin(sent: &[Vec<u8>], per_tick: usize, tick: Duration) -> StandIn {
    StandIn::start(vec![Conn::ok(paced(sent, per_tick, tick))], Creds::test()).await
}

/// `produce` reading the stand-in at `url` (filter `track=x`) into `topic` on `brokers`, then
/// `extra`.
fn produce_args<'a>(
    brokers: &'a str,
    topic: &'a str,
    url: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "produce",
        "--brokers",
        brokers,
        "--topic",
        topic,
        "--stream-url",
        url,
        "--track",
        "x",
    ];
    args.extend_from_slice(extra);
    args
}

/// The flags of a producer that spills soon: a channel of `capacity` records, a 1 s Kafka
/// timeout, the spill in `spill_dir`, no stats lines; then `more`.
fn spilling<'a>(capacity: &'a str, spill_dir: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--channel-capacity",
        capacity,
        "--kafka-timeout",
        "1s",
        "--spill-dir",
        spill_dir,
        "--stats-interval",
        "0s",
    ];
    args.extend_from_slice(more);
    args
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: sending a signal to a process this test started.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
}

/// A running `tweetpipe` whose stderr is collected as it comes (a full pipe would block it).
struct Running {
    cmd: tokio::process::Command,
    child: tokio::process::Child,
    stderr: tokio::task::JoinHandle<String>,
}

/// How a stopped `tweetpipe` ended.
struct Ended {
    code: i32,
    stderr: String,
    summary: Option<Summary>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        Self::start_cmd(tweetpipe(args))
    }

    fn start_cmd(mut cmd: tokio::process::Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tweetpipe");
        let mut pipe = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s).await;
            s
        });
        Running { cmd, child, stderr }
    }

    fn pid(&self) -> i32 {
        self.child.id().unwrap() as i32
    }

    /// SIGTERM, then the exit code, everything it wrote on stderr, and its summary.
    async fn stop(mut self) -> Ended {
        signal(self.pid(), libc::SIGTERM);
        let status = tokio::time::timeout(LIMIT, self.child.wait())
            .await
            .expect("exits after SIGTERM")
            .unwrap();
        Ended {
            code: status.code().unwrap_or(-1),
            stderr: self.stderr.await.unwrap(),
            summary: summary_of(&self.cmd),
        }
    }

    async fn kill(mut self) -> String {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
        self.stderr.await.unwrap()
    }
}

/// A count from the summary of a run that ended, e.g. `summary_value(&summary, "spilled")`.
fn summary_value(summary: &Option<Summary>, key: &str) -> u64 {
    summary
        .as_ref()
        .expect("the run wrote its summary")
        .get(key)
}

/// Spill segment files in `dir`, oldest first.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "spill"));
    files.sort();
    files
}

/// Ids of the records in the spill, per segment.
fn spilled_ids(dir: &Path) -> Vec<(PathBuf, Vec<String>)> {
    segments(dir)
        .into_iter()
        .map(|p| {
            let scan = tweetpipe::testing::spill::decode(std::fs::read(&p).unwrap().into());
            let ids = scan.records.iter().map(|r| id_of(&r.value)).collect();
            (p, ids)
        })
        .collect()
}

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads the topic until it holds every id of `want` (or `limit` passes); returns how often
/// each id is there.
async fn ids_in_topic(
    brokers: &str,
    topic: &str,
    want: &BTreeSet<String>,
    limit: Duration,
) -> BTreeMap<String, usize> {
    let started = Instant::now();
    // read_topic_from waits for the topic too: the producer may create it only once it
    // reaches the broker.
    loop {
        let reads = read_topic_from(brokers, topic, want.len(), Duration::from_secs(20)).await;
        let mut count = BTreeMap::new();
        for r in &reads {
            *count.entry(id_of(&r.value)).or_insert(0) += 1;
        }
        if want.iter().all(|id| count.contains_key(id)) || started.elapsed() > limit {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until every id of `want` is in the topic (none lost) and the spill is empty, then
/// stops the producer with SIGTERM, which must exit 0. Returns how often each id is in the
/// topic, and the producer's stderr.
async fn delivered_then_stop(
    brokers: &str,
    topic: &str,
    want: &BTreeSet<String>,
    spill: &Path,
    producer: Running,
) -> (BTreeMap<String, usize>, String, Option<Summary>) {
    let count = ids_in_topic(brokers, topic, want, LIMIT).await;
    wait_until("the spill is drained", Duration::from_secs(60), || {
        segments(spill).is_empty()
    })
    .await;
    let Ended {
        code,
        stderr,
        summary,
    } = producer.stop().await;
    assert_eq!(code, 0, "{stderr}");
    let missing: Vec<_> = want
        .iter()
        .filter(|id| !count.contains_key(*id))
        .take(5)
        .collect();
    assert!(missing.is_empty(), "lost, e.g. {missing:?}");
    (count, stderr, summary)
}

/// A broker of the test's own, with a fresh 2-partition topic on it.
async fn broker_with_topic(broker_name: &str, topic_name: &str) -> (OwnBroker, String) {
    let broker = OwnBroker::start(broker_name, &[]);
    let topic = topic(topic_name);
    create_topic_on(&broker.addr, &topic).await;
    (broker, topic)
}

async fn create_topic_on(brokers: &str, topic: &str) {
    let r = run(
        tweetpipe(&[
            "topic",
            "create",
            "--brokers",
            brokers,
            "--topic",
            topic,
            "--partitions",
            "2",
        ]),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// 1. The broker stops answering (SIGSTOP) for longer than the channel can absorb while the
///    stream runs at ~2,000 tweets/s; then it resumes. Every tweet arrives, the stream
///    connection was never dropped by us, and the spill drained.
#[tokio::test(flavor = "multi_thread")]
async fn broker_stopped_mid_stream_loses_nothing() {
    let (broker, topic) = broker_with_topic("sigstop", "sigstop").await;
    let sent = tweets(8_000, 9_300_000_000);
    let want: BTreeSet<String> = sent.iter().map(|t| id_of(t)).collect();
    let server = paced_standin(&sent, 40, Duration::from_millis(20)).await;
    let spill = tempfile::tempdir().unwrap();
    let url = server.url();
    // Default time limits: requests in flight simply wait for the broker to come back.
    let producer = Running::start(&produce_args(
        &broker.addr,
        &topic,
        &url,
        &[
            "--channel-capacity",
            "500",
            "--spill-dir",
            spill.path().to_str().unwrap(),
            "--stats-interval",
            "1s",
        ],
    ));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    signal(broker.pid(), libc::SIGSTOP);
    let stopped = Duration::from_secs(5);
    tokio::time::sleep(stopped).await;
    signal(broker.pid(), libc::SIGCONT);

    let (count, stderr, summary) =
        delivered_then_stop(&broker.addr, &topic, &want, spill.path(), producer).await;
    let spilled = summary_value(&summary, "spilled");
    assert!(
        spilled > 500,
        "the spill took the overflow ({spilled} spilled): {stderr}"
    );
    assert_eq!(summary_value(&summary, "dropped"), 0, "{stderr}");
    assert_eq!(summary_value(&summary, "failed"), 0, "{stderr}");
    assert_eq!(
        server.seen().len(),
        1,
        "the stream connection was never dropped by us"
    );
    let records: usize = count.values().sum();
    eprintln!(
        "FIGURES sigstop: {} tweets at ~2000/s, broker stopped {stopped:?}; spilled {spilled}, \
         drained {}; in topic {} distinct, {} records ({} duplicates); lost 0",
        sent.len(),
        summary_value(&summary, "drained"),
        count.len(),
        records,
        records - count.len()
    );
}

/// 2. No broker at start; one appears on that address later. Same outcome.
#[tokio::test(flavor = "multi_thread")]
async fn brokers_unreachable_at_start_then_appear() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let topic = topic("late");
    let sent = tweets(3_000, 9_400_000_000);
    let want: BTreeSet<String> = sent.iter().map(|t| id_of(t)).collect();
    let server = paced_standin(&sent, 20, Duration::from_millis(20)).await;
    let spill = tempfile::tempdir().unwrap();
    let url = server.url();
    let producer = Running::start(&produce_args(
        &addr,
        &topic,
        &url,
        &spilling(
            "200",
            spill.path().to_str().unwrap(),
            &["--partitions", "2"],
        ),
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let port = port.to_string();
    let broker = OwnBroker::start("late", &["--port", &port]);
    assert_eq!(broker.addr, addr);
    let (count, stderr, summary) =
        delivered_then_stop(&broker.addr, &topic, &want, spill.path(), producer).await;
    assert!(stderr.contains("Kafka is unavailable"), "{stderr}");
    assert!(stderr.contains("Kafka is back"), "{stderr}");
    assert_eq!(summary_value(&summary, "dropped"), 0, "{stderr}");
    assert_eq!(server.seen().len(), 1, "one stream connection throughout");
    let records: usize = count.values().sum();
    eprintln!(
        "FIGURES late broker: {} tweets, broker absent the first 3 s; spilled {}; in topic {} \
         distinct, {} duplicates; lost 0",
        sent.len(),
        summary_value(&summary, "spilled"),
        count.len(),
        records - count.len()
    );
}

/// 3. The producer is SIGKILLed while its spill holds records (the broker frozen, so nothing
///    could be delivered), and the newest segment is then torn as a crash mid-write would
///    leave it. Started again: every record that was in the spill arrives, except the torn one,
///    which is reported with its byte offset; values are byte-identical.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_with_records_in_the_spill_then_restart() {
    let (broker, topic) = broker_with_topic("sigkill", "sigkill").await;
    signal(broker.pid(), libc::SIGSTOP);
    let sent = tweets(4_000, 9_500_000_000);
    let by_id: BTreeMap<String, Vec<u8>> = sent.iter().map(|t| (id_of(t), t.clone())).collect();
    let server = paced_standin(&sent, 200, Duration::from_millis(20)).await;
    let spill = tempfile::tempdir().unwrap();
    let spill_dir = spill.path().to_str().unwrap().to_string();
    let url = server.url();
    let extra = spilling("300", &spill_dir, &["--spill-segment-bytes", "256KiB"]);
    let producer = Running::start(&produce_args(&broker.addr, &topic, &url, &extra));
    // Everything but what the channel holds ends up in the spill.
    wait_until(
        "the spill holds the stream",
        Duration::from_secs(60),
        || {
            spilled_ids(spill.path())
                .iter()
                .map(|s| s.1.len())
                .sum::<usize>()
                >= 3_700
        },
    )
    .await;
    producer.kill().await;
    let before = spilled_ids(spill.path());
    let in_spill: usize = before.iter().map(|s| s.1.len()).sum();
    assert!(before.len() >= 2, "several segments ({})", before.len());
    // Tear the newest segment's last record.
    let (last_path, last_ids) = before.last().unwrap();
    let torn_id = last_ids.last().unwrap().clone();
    let len = std::fs::metadata(last_path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(last_path)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let expected: BTreeSet<String> = before
        .iter()
        .flat_map(|s| s.1.iter().cloned())
        .filter(|id| *id != torn_id)
        .collect();

    signal(broker.pid(), libc::SIGCONT);
    let more = tweets(100, 9_600_000_000);
    let server2 = paced_standin(&more, 10, Duration::from_millis(10)).await;
    let url2 = server2.url();
    let producer = Running::start(&produce_args(&broker.addr, &topic, &url2, &extra));
    let mut want = expected.clone();
    want.extend(more.iter().map(|t| id_of(t)));
    let (count, stderr, _) =
        delivered_then_stop(&broker.addr, &topic, &want, spill.path(), producer).await;
    assert!(
        stderr.contains("found spilled records from a previous run"),
        "{stderr}"
    );
    assert!(
        stderr.contains("damaged at byte") && stderr.contains("torn record"),
        "the torn tail is reported with its offset: {stderr}"
    );
    // Nothing corrupt: every value read back is byte-identical to what Twitter sent.
    let more_by_id: BTreeMap<String, Vec<u8>> =
        more.iter().map(|t| (id_of(t), t.clone())).collect();
    for r in read_topic_from(&broker.addr, &topic, want.len(), Duration::from_secs(20)).await {
        let id = id_of(&r.value);
        let original = by_id
            .get(&id)
            .or(more_by_id.get(&id))
            .expect("a tweet we sent");
        assert_eq!(&r.value, original, "value of {id}");
    }
    let records: usize = count.values().sum();
    eprintln!(
        "FIGURES sigkill: {} tweets served, {in_spill} in the spill at SIGKILL in {} segments, \
         1 torn by hand; after restart {} of the {} intact ones in the topic, {} duplicates",
        sent.len(),
        before.len(),
        expected.iter().filter(|id| count.contains_key(*id)).count(),
        expected.len(),
        records - count.len()
    );
}

/// 3b. SIGTERM while the broker is frozen: after --shutdown-timeout, what is queued, batched
///     or in flight goes to the spill (exit 0, nothing counted as failed), and the next run
///     delivers every tweet.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_with_kafka_frozen_spills_everything_for_the_next_run() {
    let (broker, topic) = broker_with_topic("sigterm", "sigterm-frozen").await;
    let sent = tweets(4_000, 9_550_000_000);
    let want: BTreeSet<String> = sent.iter().map(|t| id_of(t)).collect();
    let server = paced_standin(&sent, 20, Duration::from_millis(10)).await;
    let spill = tempfile::tempdir().unwrap();
    let spill_dir = spill.path().to_str().unwrap().to_string();
    let url = server.url();
    let producer = Running::start(&produce_args(
        &broker.addr,
        &topic,
        &url,
        &[
            "--channel-capacity",
            "5000",
            "--spill-dir",
            &spill_dir,
            "--stats-interval",
            "0s",
            "--shutdown-timeout",
            "2s",
        ],
    ));
    // Connected and producing, then the broker freezes with records in flight and queued.
    tokio::time::sleep(Duration::from_millis(500)).await;
    signal(broker.pid(), libc::SIGSTOP);
    assert!(server.wait_for_connections(1, LIMIT).await);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let Ended {
        code,
        stderr,
        summary,
    } = producer.stop().await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary_value(&summary, "failed"), 0, "{stderr}");
    assert_eq!(summary_value(&summary, "dropped"), 0, "{stderr}");
    assert!(stderr.contains("records remain in the spill"), "{stderr}");
    let accepted = summary_value(&summary, "accepted");
    let delivered = summary_value(&summary, "delivered");
    let in_spill: usize = spilled_ids(spill.path()).iter().map(|s| s.1.len()).sum();
    assert!(in_spill > 0, "{stderr}");
    let accepted_ids: BTreeSet<String> =
        sent[..accepted as usize].iter().map(|t| id_of(t)).collect();

    signal(broker.pid(), libc::SIGCONT);
    let idle = StandIn::start(vec![Conn::ok(vec![Action::Stall])], Creds::test()).await;
    let url2 = idle.url();
    let producer = Running::start(&produce_args(
        &broker.addr,
        &topic,
        &url2,
        &["--spill-dir", &spill_dir, "--stats-interval", "0s"],
    ));
    let (count, _, _) =
        delivered_then_stop(&broker.addr, &topic, &accepted_ids, spill.path(), producer).await;
    assert!(accepted_ids.is_subset(&want));
    let records: usize = count.values().sum();
    eprintln!(
        "FIGURES sigterm frozen: {accepted} accepted before SIGTERM, {delivered} acknowledged, \
         {in_spill} in the spill at exit (exit 0); after restart {} distinct in the topic, {} \
         duplicates",
        count.len(),
        records - count.len()
    );
}

/// 3c. The spill cannot be written (here: a file-size limit, RLIMIT_FSIZE with SIGXFSZ
///     ignored, so writes past 300 KB fail with EFBIG as they would with ENOSPC on a full disk):
///     the newest records are dropped and counted, nothing crashes, the stream stays connected,
///     and what was spilled is delivered once the broker is back.
#[tokio::test(flavor = "multi_thread")]
async fn a_spill_that_cannot_be_written_drops_the_newest_and_keeps_going() {
    let (broker, topic) = broker_with_topic("diskfull", "diskfull").await;
    signal(broker.pid(), libc::SIGSTOP);
    let sent = tweets(2_000, 9_560_000_000);
    let server = paced_standin(&sent, 100, Duration::from_millis(10)).await;
    let spill = tempfile::tempdir().unwrap();
    let url = server.url();
    let mut cmd = tweetpipe(&produce_args(
        &broker.addr,
        &topic,
        &url,
        &spilling("100", spill.path().to_str().unwrap(), &[]),
    ));
    const LIMIT_BYTES: u64 = 300 * 1024;
    // SAFETY: between fork and exec only async-signal-safe calls (signal, setrlimit).
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: LIMIT_BYTES,
                rlim_max: LIMIT_BYTES,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let producer = Running::start_cmd(cmd);
    wait_until("the stream is served", Duration::from_secs(60), || {
        spilled_ids(spill.path())
            .iter()
            .map(|s| s.1.len())
            .sum::<usize>()
            > 100
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let in_spill: BTreeSet<String> = spilled_ids(spill.path())
        .into_iter()
        .flat_map(|s| s.1)
        .collect();
    for p in segments(spill.path()) {
        assert!(std::fs::metadata(&p).unwrap().len() <= LIMIT_BYTES);
    }
    signal(broker.pid(), libc::SIGCONT);
    let (_, stderr, summary) =
        delivered_then_stop(&broker.addr, &topic, &in_spill, spill.path(), producer).await;
    let dropped = summary_value(&summary, "dropped");
    assert!(dropped > 0, "{stderr}");
    assert!(
        stderr.contains("writing to the spill failed") && stderr.contains("File too large"),
        "the write error is reported: {stderr}"
    );
    assert_eq!(server.seen().len(), 1, "the stream stayed connected");
    // Every served tweet was either delivered or counted as dropped.
    let delivered = summary_value(&summary, "delivered");
    assert_eq!(delivered + dropped, sent.len() as u64, "{stderr}");
    eprintln!(
        "FIGURES spill write errors: {} tweets with the broker frozen and spill files capped at \
         {LIMIT_BYTES} bytes: {} spilled and delivered after the broker came back, {dropped} \
         dropped and counted, no crash, one stream connection",
        sent.len(),
        in_spill.len()
    );
}

/// 4. Twitter side, beyond tests/produce.rs: a 10 MB line is skipped and reported without
///    being buffered, and a message that is not valid UTF-8 is forwarded unkeyed (for the
///    consumer's errors file); the tweets around them arrive.
#[tokio::test(flavor = "multi_thread")]
async fn a_10_mb_line_and_invalid_utf8() {
    let sent = tweets(20, 9_700_000_000);
    let mut actions: Vec<Action> = sent[..10].iter().cloned().map(Action::Record).collect();
    let huge = vec![b'x'; 10 * 1024 * 1024];
    actions.push(Action::Record(huge));
    actions.push(Action::Record(
        b"{\"text\":\"bad \xff\xfe bytes\"}".to_vec(),
    ));
    actions.extend(sent[10..].iter().cloned().map(Action::Record));
    actions.push(Action::Stall);
    let server = StandIn::start(vec![Conn::ok(actions)], Creds::test()).await;
    let topic = topic("huge");
    let b = brokers();
    let url = server.url();
    let r = run(
        tweetpipe(&produce_args(
            &b,
            &topic,
            &url,
            &["--max-records", "21", "--stats-interval", "0s"],
        )),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.summary("oversized_skipped"), 1, "{}", r.stderr);
    let reads = read_topic(&topic, 21, Duration::from_secs(30)).await;
    assert_eq!(reads.len(), 21);
    let bad: Vec<_> = reads.iter().filter(|r| r.key.is_none()).collect();
    assert_eq!(bad.len(), 1, "the invalid UTF-8 message, unkeyed");
    assert!(bad[0].value.starts_with(b"{\"text\":\"bad \xff"));
    let ids: BTreeSet<String> = reads
        .iter()
        .filter(|r| r.key.is_some())
        .map(|r| id_of(&r.value))
        .collect();
    assert_eq!(ids, sent.iter().map(|t| id_of(t)).collect());
}

/// 5. The consumer is SIGKILLed at random points, repeatedly, while the producer is still
///    streaming into the topic: the output holds every tweet exactly once. (One process,
///    `--assign all`: a SIGKILLed group member stays in the group until its session times
///    out; tests/group.rs kills and restarts group members.)
#[tokio::test(flavor = "multi_thread")]
async fn consumer_killed_repeatedly_while_the_producer_streams() {
    let n = 6_000;
    let sent = tweets(n, 9_800_000_000);
    let server = paced_standin(&sent, 10, Duration::from_millis(10)).await;
    let topic = topic("livekill");
    let b = brokers();
    create_topic_on(&b, &topic).await;
    let url = server.url();
    let producer = Running::start(&produce_args(&b, &topic, &url, &["--stats-interval", "0s"]));
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().to_str().unwrap();
    let consume_args = [
        "consume",
        "--brokers",
        &b,
        "--topic",
        &topic,
        "--group",
        &topic,
        "--assign",
        "all",
        "--output",
        out_dir,
        "--fetch-wait",
        "100ms",
        "--stats-interval",
        "0s",
        "--commit-interval",
        "20ms",
        "--rotate-bytes",
        "100000",
    ];
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill schedule seed {seed}");
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut kills = 0;
    for _ in 0..8 {
        let consumer = Running::start(&consume_args);
        tokio::time::sleep(Duration::from_millis(200 + rand() % 500)).await;
        consumer.kill().await;
        kills += 1;
    }
    // The producer serves ~1,000 tweets/s: it is still going during most of the kills.
    // `strict`: every line complete and parsed (after the consumer stopped); otherwise a line
    // still being written is left for the next look.
    let ids_out = |dir: &Path, strict: bool| -> BTreeMap<String, usize> {
        let mut count = BTreeMap::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if !p
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("tweets-")
            {
                continue;
            }
            // While the consumer runs, a file can be renamed (rotated) under our feet.
            let Ok(text) = std::fs::read_to_string(&p) else {
                continue;
            };
            for l in text.split_inclusive('\n') {
                if !l.ends_with('\n') && !strict {
                    continue;
                }
                let v: serde_json::Value = serde_json::from_str(l.trim_end())
                    .unwrap_or_else(|e| panic!("{}: {e}: {l}", p.display()));
                *count
                    .entry(v["id"].as_str().unwrap().to_string())
                    .or_insert(0) += 1;
            }
        }
        count
    };
    let consumer = Running::start(&consume_args);
    wait_until("every tweet is in the output", LIMIT, || {
        ids_out(out.path(), false).len() >= n
    })
    .await;
    let Ended { code, stderr, .. } = consumer.stop().await;
    assert_eq!(code, 0, "{stderr}");
    let Ended { code, stderr, .. } = producer.stop().await;
    assert_eq!(code, 0, "{stderr}");
    let count = ids_out(out.path(), true);
    let dups: Vec<_> = count.iter().filter(|(_, c)| **c > 1).take(5).collect();
    assert!(dups.is_empty(), "duplicated after kills: {dups:?}");
    assert_eq!(count.len(), n);
    eprintln!("FIGURES consumer kills: {n} tweets streamed at ~1000/s, consumer SIGKILLed {kills} times while producing; output {} lines, each tweet exactly once", count.values().sum::<usize>());
}
