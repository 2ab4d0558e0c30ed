//! Twitter API v2 end to end: `produce --api v2` and `tweetpipe rules` against the local
//! stand-in (bearer check, rule store, stream with backfill), a real broker (tansu), and the
//! consumer's output. Each test asserts on what reached the topic, the server's rules, or the
//! output files.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use support::twitter::{self, Action, Conn, Creds, StandIn, StoredRule, TEST_BEARER};
use support::*;
use tweetpipe::testing::partition_for_key;

const LIMIT: Duration = Duration::from_secs(120);

fn id_of(value: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(value).expect("record is JSON");
    v["data"]["id"].as_str().expect("data.id").to_string()
}

/// Every record of `sent` in the topic exactly once, byte-identical, keyed by `data.id` and
/// partitioned by that key; nothing else.
fn assert_each_once(reads: &[Read], sent: &[Vec<u8>], partitions: i32) {
    let by_id: BTreeMap<String, &Vec<u8>> = sent.iter().map(|t| (id_of(t), t)).collect();
    let mut seen = BTreeSet::new();
    for r in reads {
        let id = id_of(&r.value);
        assert!(seen.insert(id.clone()), "tweet {id} is in the topic twice");
        assert_eq!(&r.value, by_id[&id], "value of {id} is not byte-identical");
        assert_eq!(r.key.as_deref(), Some(id.as_bytes()), "key of {id}");
        assert_eq!(
            r.partition,
            partition_for_key(id.as_bytes(), partitions),
            "partition of {id}"
        );
    }
    assert_eq!(reads.len(), sent.len(), "record count in the topic");
}

/// Runs `produce --api v2` against `server` into a fresh topic until `max` records are in.
async fn produce_v2(server: &StandIn, name: &str, max: usize, extra: &[&str]) -> (String, Run) {
    let topic = topic(name);
    let run = run(produce_v2_cmd(server, &topic, max, extra), LIMIT).await;
    (topic, run)
}

/// The `produce --api v2` command of [`produce_v2`], into `topic`, for a test to adjust.
fn produce_v2_cmd(
    server: &StandIn,
    topic: &str,
    max: usize,
    extra: &[&str],
) -> tokio::process::Command {
    let brokers = brokers();
    let max = max.to_string();
    let url = server.v2_url();
    let mut args = vec![
        "produce",
        "--api",
        "v2",
        "--brokers",
        &brokers,
        "--topic",
        topic,
        "--stream-url",
        &url,
        "--max-records",
        &max,
        "--stats-interval",
        "0s",
    ];
    args.extend_from_slice(extra);
    tweetpipe(&args)
}

/// Runs `tweetpipe rules …` against `server`: exit code, stdout, stderr.
async fn rules(server: &StandIn, args: &[&str]) -> (i32, String, String) {
    let url = server.v2_url();
    let mut all = vec!["rules"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--stream-url", &url]);
    let out = tokio::time::timeout(
        LIMIT,
        tweetpipe(&all)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output(),
    )
    .await
    .expect("rules finishes")
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn no_bearer_in(text: &str) {
    assert!(
        !text.contains(TEST_BEARER) && !text.contains("SecretPart"),
        "the bearer token leaked:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_stream_reaches_the_topic_keyed_by_data_id() {
    let sent = v2_tweets(500, 1_600_000_000_000_000_000, "worldcup");
    let mut actions = vec![Action::KeepAlive];
    for (i, t) in sent.iter().enumerate() {
        actions.push(Action::Record(t.clone()));
        if i % 50 == 0 {
            actions.push(Action::KeepAlive);
        }
        if i == 250 {
            // An error object that does not end the stream: logged, counted, not produced.
            actions.push(Action::Record(
                br#"{"errors":[{"title":"ConnectionException","detail":"A rule could not be applied for a moment.","type":"https://api.twitter.com/2/problems/streaming-connection"}]}"#.to_vec(),
            ));
        }
    }
    let server = StandIn::start(vec![Conn::ok(actions).gzip()], Creds::test()).await;
    let topic = topic("v2e2e");
    let mut cmd = produce_v2_cmd(&server, &topic, sent.len(), &[]);
    // Everything any layer logs, to show the token is in none of it.
    cmd.env("TWEETPIPE_LOG", "trace");
    let run = run(cmd, LIMIT).await;
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("TRACE"), "trace logging is on");
    no_bearer_in(&run.stderr);
    assert_eq!(run.summary("stream_errors"), 1, "{}", run.stderr);
    assert!(run.stderr.contains("rule could not be applied"));
    assert_eq!(run.summary("reconnects"), 0);
    assert!(
        run.stderr.contains("stall_timeout=30s"),
        "v2's default stall timeout: {}",
        run.stderr
    );

    let seen = server.seen();
    assert_eq!(
        seen.len(),
        1,
        "one connection, no rules requests without --track"
    );
    assert!(
        seen[0].signature_ok,
        "bearer rejected: {:?}",
        seen[0].auth_error
    );
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, twitter::V2_STREAM_PATH);
    assert!(seen[0].accept_gzip);
    assert_eq!(
        seen[0].param("expansions"),
        Some("author_id,referenced_tweets.id")
    );
    let fields: BTreeSet<&str> = seen[0].param("tweet.fields").unwrap().split(',').collect();
    for needed in [
        "created_at",
        "author_id",
        "lang",
        "entities",
        "referenced_tweets",
    ] {
        assert!(fields.contains(needed), "tweet.fields lacks {needed}");
    }
    assert_eq!(seen[0].param("user.fields"), Some("username"));
    assert_eq!(seen[0].param("backfill_minutes"), None, "first connect");

    assert_each_once(&read_topic(&topic, sent.len(), LIMIT).await, &sent, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_operational_disconnect_reconnects_with_backfill_and_each_tweet_is_once_in_the_topic() {
    let sent = v2_tweets(100, 1_610_000_000_000_000_000, "olympics");
    let (before, after) = sent.split_at(60);
    let mut first: Vec<Action> = before.iter().cloned().map(Action::Record).collect();
    // The server announces the disconnect and then goes quiet: only acting on the error object
    // gets us a new connection (the stall timeout below is far beyond the test's limit).
    first.push(Action::Record(twitter::operational_disconnect()));
    first.push(Action::Stall);
    let mut second: Vec<Action> = after.iter().cloned().map(Action::Record).collect();
    second.push(Action::Stall);
    let server = StandIn::start(vec![Conn::ok(first), Conn::ok(second)], Creds::test()).await;
    let (topic, run) = produce_v2(
        &server,
        "v2backfill",
        sent.len(),
        &["--stall-timeout", "10m"],
    )
    .await;
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);

    let seen = server.seen();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    assert_eq!(seen[0].param("backfill_minutes"), None);
    assert_eq!(
        seen[1].param("backfill_minutes"),
        Some("1"),
        "a reconnect within a minute asks for one minute of backfill"
    );
    assert!(
        run.stderr.contains("operational-disconnect"),
        "{}",
        run.stderr
    );
    // The stand-in sent the 60 tweets of the first connection again, before the 40 new ones.
    assert!(
        run.stderr.contains("duplicates_dropped=60"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("stream_errors=1"), "{}", run.stderr);
    assert!(run.stderr.contains("backfills=1"), "{}", run.stderr);
    assert_eq!(run.summary("gaps"), 0, "backfill covered the reconnect");
    assert_each_once(&read_topic(&topic, sent.len(), LIMIT).await, &sent, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_backfill_refusal_is_reported_once_and_not_asked_again() {
    let sent = v2_tweets(90, 1_620_000_000_000_000_000, "t");
    let conn = |part: &[Vec<u8>], end: Action| {
        let mut a: Vec<Action> = part.iter().cloned().map(Action::Record).collect();
        a.push(end);
        Conn::ok(a)
    };
    let server = StandIn::start(
        vec![
            conn(&sent[..30], Action::DropMidChunk),
            conn(&sent[30..60], Action::DropMidChunk),
            conn(&sent[60..], Action::Stall),
        ],
        Creds::test(),
    )
    .await;
    server.refuse_backfill();
    let (topic, run) = produce_v2(&server, "v2refused", sent.len(), &[]).await;
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);

    let seen = server.seen();
    let backfill: Vec<Option<&str>> = seen.iter().map(|s| s.param("backfill_minutes")).collect();
    assert_eq!(
        backfill,
        vec![None, Some("1"), None, None],
        "asked once, refused, never again"
    );
    assert_eq!(
        seen[1].script_index, None,
        "the refusal is a 400, no stream"
    );
    assert_eq!(
        run.stderr.matches("refused backfill_minutes").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("duplicates_dropped=0"),
        "{}",
        run.stderr
    );
    // Both reconnects went without backfill: each left a gap, reported with its start and end.
    assert_eq!(run.summary("gaps"), 2, "{}", run.stderr);
    assert_eq!(run.stderr.matches("gap: tweets posted between").count(), 2);
    assert!(run.stderr.contains("gap_start="), "{}", run.stderr);
    assert_each_once(&read_topic(&topic, sent.len(), LIMIT).await, &sent, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_too_many_connections_waits_on_the_rate_limit_ladder() {
    let sent = v2_tweets(20, 1_630_000_000_000_000_000, "t");
    let server = StandIn::start(
        vec![
            Conn::too_many_connections(),
            Conn::too_many_connections(),
            Conn::ok(sent.iter().cloned().map(Action::Record).collect()),
        ],
        Creds::test(),
    )
    .await;
    let (topic, run) = produce_v2(
        &server,
        "v2toomany",
        sent.len(),
        &["--backoff-rate-limit-initial", "400ms"],
    )
    .await;
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    // The rate-limit class, doubling: never sooner than 400 ms, then 800 ms.
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(400));
    assert!(seen[2].at - seen[1].at >= Duration::from_millis(800));
    assert_eq!(
        run.stderr
            .lines()
            .filter(|l| l.contains("TooManyConnections"))
            .count(),
        2,
        "{}",
        run.stderr
    );
    assert_each_once(&read_topic(&topic, sent.len(), LIMIT).await, &sent, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_rules_list_add_delete_sync_and_dry_run() {
    let server = StandIn::start(vec![Conn::ok(vec![])], Creds::test()).await;
    let old = server.preset_rule("old stuff", Some("old"));

    let (code, out, err) = rules(&server, &["list"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&old) && out.contains("\"old stuff\""), "{out}");
    assert!(out.contains("1 rule(s)"), "{out}");

    // Dry run: validated, summary shown, nothing changes.
    let (code, out, err) = rules(
        &server,
        &["add", "cat has:images", "--tag", "cats", "--dry-run"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("dry run: created=1"), "{out}");
    assert_eq!(server.rules().len(), 1);
    assert_eq!(server.seen().last().unwrap().param("dry_run"), Some("true"));

    // An invalid rule: the server's error per rule, shown plainly; exit 2; nothing changes.
    let (code, out, err) = rules(&server, &["add", "(cat OR dog", "--tag", "pets"]).await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("invalid=1"), "{out}");
    assert!(
        out.contains("UnprocessableEntity") && out.contains("mismatched parentheses"),
        "{out}"
    );
    assert!(err.contains("fix the rule"), "{err}");
    assert_eq!(server.rules().len(), 1);

    let (code, out, err) = rules(&server, &["add", "cat has:images", "--tag", "cats"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("created=1"), "{out}");
    // Adding it again: a duplicate is reported, and is not a failure.
    let (code, out, _) = rules(&server, &["add", "cat has:images", "--tag", "cats"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("DuplicateRule"), "{out}");

    // Delete by value.
    let (code, out, err) = rules(&server, &["delete", "old stuff"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("deleted=1"), "{out}");
    assert_eq!(server.rules().len(), 1);

    // Sync from a file: a dry run changes nothing, the real one makes the server equal it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    std::fs::write(
        &file,
        "[[rule]]\nvalue = \"dog has:media\"\ntag = \"dogs\"\n\n[[rule]]\nvalue = \"#rustlang\"\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let (code, out, err) = rules(&server, &["sync", "--file", f, "--dry-run"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("would delete 1, would add 2"), "{out}");
    assert_eq!(server.rules().len(), 1);
    let (code, out, err) = rules(&server, &["sync", "--file", f]).await;
    assert_eq!(code, 0, "{err}");
    let now: Vec<(String, Option<String>)> = server
        .rules()
        .into_iter()
        .map(|StoredRule { value, tag, .. }| (value, tag))
        .collect();
    assert_eq!(
        now,
        vec![
            ("dog has:media".to_string(), Some("dogs".to_string())),
            ("#rustlang".to_string(), None)
        ],
        "{out}"
    );
    // In sync already: nothing to do.
    let (code, out, _) = rules(&server, &["sync", "--file", f]).await;
    assert_eq!(code, 0);
    assert!(out.contains("2 already match"), "{out}");

    // Delete by id.
    let id = server.rules()[0].id.clone();
    let (code, _, err) = rules(&server, &["delete", &id]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(server.rules().len(), 1);

    // A malformed rules file is a usage error naming it, before any request.
    let before = server.seen().len();
    std::fs::write(&file, "[[rule]]\nvalu = \"typo\"\n").unwrap();
    let (code, _, err) = rules(&server, &["sync", "--file", f]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("rules.toml"), "{err}");
    assert_eq!(server.seen().len(), before);

    for s in server.seen() {
        assert!(s.signature_ok, "bearer rejected on {} {}", s.method, s.path);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_bearer_token_is_checked_required_and_never_shown() {
    let server = StandIn::start(vec![Conn::ok(vec![])], Creds::test()).await;
    let brokers = brokers();
    let url = server.v2_url();

    // Wrong token: 401, exit 1, the message names the variable, never the value.
    let topic = topic("v2auth");
    let mut cmd = tweetpipe(&[
        "produce",
        "--api",
        "v2",
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--stream-url",
        &url,
    ]);
    cmd.env("TWITTER_BEARER_TOKEN", "AAAAwrong-bearer-SecretPart");
    let r = run(cmd, LIMIT).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("TWITTER_BEARER_TOKEN"), "{}", r.stderr);
    assert!(!r.stderr.contains("wrong-bearer"), "{}", r.stderr);
    assert_eq!(server.seen().len(), 1, "a 401 is not retried");
    assert!(!server.seen()[0].signature_ok);

    let mut cmd = tweetpipe(&["rules", "list", "--stream-url", &url]);
    cmd.env("TWITTER_BEARER_TOKEN", "AAAAwrong-bearer-SecretPart");
    let r = run(cmd, LIMIT).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("TWITTER_BEARER_TOKEN"), "{}", r.stderr);
    assert!(!r.stderr.contains("wrong-bearer"), "{}", r.stderr);

    // Missing token: exit 2 before connecting, naming the variable and --env-file.
    let mut cmd = tweetpipe(&[
        "produce",
        "--api",
        "v2",
        "--brokers",
        &brokers,
        "--stream-url",
        &url,
    ]);
    cmd.env_remove("TWITTER_BEARER_TOKEN");
    let r = run(cmd, LIMIT).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("TWITTER_BEARER_TOKEN") && r.stderr.contains("--env-file"),
        "{}",
        r.stderr
    );

    // v1.1 filter flags have no meaning on v2: exit 2, pointing at rules.
    let r = run(
        tweetpipe(&[
            "produce",
            "--api",
            "v2",
            "--follow",
            "12",
            "--stream-url",
            &url,
        ]),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("--follow") && r.stderr.contains("rules"),
        "{}",
        r.stderr
    );
    assert_eq!(server.seen().len(), 2, "no request for usage errors");
}

/// Every line of every `tweets-*` file in `dir`.
fn output_tweets(dir: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("tweets-") {
            for l in std::fs::read_to_string(&p).unwrap().lines() {
                out.push(serde_json::from_str(l).unwrap());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_end_to_end_from_rules_to_enriched_output() {
    let sent = v2_tweets(200, 1_640_000_000_000_000_000, "worldcup");
    let (before, after) = sent.split_at(120);
    let mut first: Vec<Action> = before.iter().cloned().map(Action::Record).collect();
    first.push(Action::DropMidChunk);
    let mut second: Vec<Action> = vec![Action::KeepAlive];
    second.extend(after.iter().cloned().map(Action::Record));
    second.push(Action::Stall);
    let server = StandIn::start(vec![Conn::ok(first), Conn::ok(second)], Creds::test()).await;
    server.preset_rule("someone else's rule", None);

    // --track: one rule per term replaces whatever was there, then the stream.
    let (topic, run) = produce_v2(
        &server,
        "v2consume",
        sent.len(),
        &["--track", "worldcup, olympics"],
    )
    .await;
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    no_bearer_in(&run.stderr);
    let rules: Vec<(String, Option<String>)> = server
        .rules()
        .into_iter()
        .map(|r| (r.value, r.tag))
        .collect();
    assert_eq!(
        rules,
        vec![
            ("worldcup".to_string(), Some("worldcup".to_string())),
            ("olympics".to_string(), Some("olympics".to_string()))
        ]
    );
    let seen = server.seen();
    let first_stream = seen
        .iter()
        .position(|s| s.path == twitter::V2_STREAM_PATH)
        .unwrap();
    assert!(
        seen[..first_stream]
            .iter()
            .all(|s| s.path == twitter::V2_RULES_PATH),
        "rules are synced before connecting"
    );
    assert!(
        run.stderr.contains("duplicates_dropped=120"),
        "{}",
        run.stderr
    );

    // The consumer reads the v2 records and writes each tweet once, enriched.
    let dir = tempfile::tempdir().unwrap();
    let brokers = brokers();
    let max = sent.len().to_string();
    let r = support::run(
        tweetpipe(&[
            "consume",
            "--brokers",
            &brokers,
            "--topic",
            &topic,
            "--group",
            &topic,
            "--output",
            dir.path().to_str().unwrap(),
            "--max-records",
            &max,
            "--fetch-wait",
            "100ms",
            "--stats-interval",
            "0s",
        ]),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = output_tweets(dir.path());
    let ids: BTreeSet<String> = out
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(out.len(), sent.len(), "each tweet once in the output");
    assert_eq!(ids, sent.iter().map(|t| id_of(t)).collect());
    // Twitter HTML-escapes these three in texts; the consumer undoes exactly them.
    let unescaped = |v: &serde_json::Value| {
        v.as_str()
            .unwrap()
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    for (t, v) in out.iter().map(|t| {
        let id = t["id"].as_str().unwrap();
        let src: serde_json::Value =
            serde_json::from_slice(sent.iter().find(|s| id_of(s) == id).unwrap()).unwrap();
        (t, src)
    }) {
        assert_eq!(t["source_format"], "v2");
        assert_eq!(t["user"]["id"], v["data"]["author_id"]);
        assert_eq!(
            t["user"]["screen_name"],
            v["includes"]["users"][0]["username"]
        );
        match v["data"]["referenced_tweets"][0]["id"].as_str() {
            Some(original) => {
                assert_eq!(t["is_retweet"], true);
                assert_eq!(t["retweeted_id"], original);
                // The text is the original's, not the truncated "RT @…" form.
                assert_eq!(t["text"], unescaped(&v["includes"]["tweets"][0]["text"]));
            }
            None => {
                assert_eq!(t["hashtags"], serde_json::json!(["v2t"]));
                assert_eq!(t["is_retweet"], false);
                assert_eq!(t["text"], unescaped(&v["data"]["text"]));
            }
        }
    }
}

/// `produce --api v2` into `topic`, running until signalled.
/// A running v2 producer, and the command it was started with (which names its summary file).
type Spawned = (tokio::process::Child, tokio::process::Command);

fn spawn_v2(server: &StandIn, topic: &str, extra: &[&str]) -> Spawned {
    let (brokers, url) = (brokers(), server.v2_url());
    let mut args = vec![
        "produce",
        "--api",
        "v2",
        "--brokers",
        &brokers,
        "--topic",
        topic,
        "--stream-url",
        &url,
        "--stats-interval",
        "0s",
    ];
    args.extend_from_slice(extra);
    let mut cmd = tweetpipe(&args);
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tweetpipe");
    (child, cmd)
}

async fn stop((child, cmd): Spawned) -> (Option<i32>, String, Option<Summary>) {
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGTERM) };
    let out = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("stops after SIGTERM")
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        summary_of(&cmd),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_a_second_instance_waits_and_never_knocks_the_first_off() {
    // An account allowing one connection: the first tweetpipe holds the stream; a second one
    // with the same token gets 429 TooManyConnections and must wait on the rate-limit ladder,
    // leaving the first connected (v1.1 would have dropped the older connection instead).
    let sent = v2_tweets(20, 1_650_000_000_000_000_000, "t");
    let mut actions: Vec<Action> = sent.iter().cloned().map(Action::Record).collect();
    actions.push(Action::Stall);
    let server = StandIn::start(vec![Conn::ok(actions)], Creds::test()).await;
    server.limit_v2_connections(1);
    let topic = topic("v2second");

    let first = spawn_v2(&server, &topic, &[]);
    assert!(server.wait_for_connections(1, LIMIT).await);
    // The topic exists once produce connects to the stream; all 20 arrive.
    assert_eq!(
        read_topic(&topic, sent.len(), LIMIT).await.len(),
        sent.len()
    );

    let second = spawn_v2(&server, &topic, &["--backoff-rate-limit-initial", "200ms"]);
    assert!(
        server.wait_for_connections(4, LIMIT).await,
        "three attempts"
    );
    let (code, second_err, _) = stop(second).await;
    assert_eq!(code, Some(0), "{second_err}");
    // The third answer may still be on its way when the signal lands.
    assert!(
        second_err
            .lines()
            .filter(|l| l.contains("TooManyConnections"))
            .count()
            >= 2,
        "{second_err}"
    );

    let seen = server.seen();
    assert_eq!(
        seen.iter().filter(|s| s.script_index.is_some()).count(),
        1,
        "only the first instance ever got the stream"
    );
    // The second's attempts: the rate-limit ladder, doubling from 200 ms.
    assert!(seen[2].at - seen[1].at >= Duration::from_millis(200));
    assert!(seen[3].at - seen[2].at >= Duration::from_millis(400));

    let (code, first_err, summary) = stop(first).await;
    assert_eq!(code, Some(0), "{first_err}");
    let summary = summary.expect("the first instance wrote its summary");
    assert_eq!(summary.get("reconnects"), 0, "{first_err}");
    assert_eq!(summary.get("delivered"), 20, "{first_err}");
    assert_each_once(&read_topic(&topic, sent.len(), LIMIT).await, &sent, 2);
}
