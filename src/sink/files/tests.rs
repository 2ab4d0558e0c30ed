//! The file sink through its contract, as the consumer drives it: processes that crash (a
//! sink dropped without `close`), restart, share a directory, lose partitions; and what each
//! file holds afterwards.

use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::error::Classify;
use crate::sink::Entry;

fn who(instance: Option<&str>) -> Identity {
    Identity {
        group: "g".into(),
        topic: "t".into(),
        instance_id: instance.map(str::to_string),
    }
}

/// Records `offsets` of `partition` as one batch.
fn batch(partition: i32, offsets: std::ops::Range<i64>) -> Encoded {
    let mut e = Encoded::with_capacity(partition, 8, 8 * 1024);
    for o in offsets {
        e.bytes.extend_from_slice(
            format!("{{\"id\":\"{partition}-{o}\",\"kafka\":{{\"partition\":{partition},\"offset\":{o}}}}}")
                .as_bytes(),
        );
        e.entries.push(Entry {
            offset: o,
            kind: Kind::Tweet,
            end: e.bytes.len(),
        });
    }
    e
}

fn write(s: &mut DirSink, partition: i32, offsets: std::ops::Range<i64>) {
    let b = batch(partition, offsets);
    s.write(&b, 0..b.entries.len()).unwrap();
}

async fn commit(s: &mut DirSink, next: &[(i32, i64)]) {
    let next: BTreeMap<i32, i64> = next.iter().copied().collect();
    s.flush(&next).await.unwrap();
    s.committed().unwrap();
}

/// (partition, offset) of lines.
type Positions = Vec<(i32, i64)>;

/// (partition, offset) of every line in `dir`: finished files, and unfinished ones.
fn lines(dir: &Path) -> (Positions, Positions) {
    let (mut done, mut open) = (Vec::new(), Vec::new());
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    names.sort();
    for p in names {
        let into = if p.to_string_lossy().ends_with(IN_PROGRESS) {
            &mut open
        } else {
            &mut done
        };
        for l in std::fs::read_to_string(&p).unwrap().lines() {
            into.push(line::kafka_position(l.as_bytes()).unwrap());
        }
    }
    done.sort();
    open.sort();
    (done, open)
}

fn range(p: i32, r: std::ops::Range<i64>) -> Vec<(i32, i64)> {
    r.map(|o| (p, o)).collect()
}

fn group(pairs: &[(i32, i64)]) -> BTreeMap<i32, i64> {
    pairs.iter().copied().collect()
}

#[tokio::test]
async fn a_restart_that_still_owns_its_partitions_keeps_its_tentative_lines_and_resumes_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = DirSink::open(dir.path(), 1 << 20, &who(None)).unwrap();
    s.reconcile(&[0, 1], &BTreeMap::new()).await.unwrap();
    write(&mut s, 0, 0..10);
    write(&mut s, 1, 0..5);
    commit(&mut s, &[(0, 10), (1, 5)]).await;
    write(&mut s, 0, 10..14); // tentative: the process dies before its next commit
    let slot = s.slot().to_string();
    drop(s);

    let mut s = DirSink::open(dir.path(), 1 << 20, &who(None)).unwrap();
    assert_eq!(s.slot(), slot, "the crashed process's slot is adopted");
    s.reconcile(&[0, 1], &group(&[(0, 10), (1, 5)]))
        .await
        .unwrap();
    let resume = s.resume(&[0, 1]).await.unwrap();
    assert_eq!(
        resume,
        group(&[(0, 14)]),
        "partition 1 has nothing past its commit"
    );
    commit(&mut s, &[(0, 14), (1, 5)]).await;
    s.close().await.unwrap();
    let (done, open) = lines(dir.path());
    assert_eq!(done, [range(0, 0..14), range(1, 0..5)].concat());
    assert!(open.is_empty());
}

#[tokio::test]
async fn a_restart_drops_what_another_instance_has_written_since() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = DirSink::open(dir.path(), 1 << 20, &who(None)).unwrap();
    s.reconcile(&[0, 1], &BTreeMap::new()).await.unwrap();
    write(&mut s, 0, 0..10);
    write(&mut s, 1, 0..5);
    commit(&mut s, &[(0, 10), (1, 5)]).await;
    write(&mut s, 0, 10..14);
    write(&mut s, 1, 5..8);
    drop(s);

    // Meanwhile partition 0 moved on (another instance read 10..20), and partition 1 now
    // belongs to someone else who has not committed yet.
    let mut s = DirSink::open(dir.path(), 1 << 20, &who(None)).unwrap();
    s.reconcile(&[0], &group(&[(0, 20), (1, 5)])).await.unwrap();
    assert!(s.resume(&[0]).await.unwrap().is_empty());
    commit(&mut s, &[(0, 20)]).await;
    s.close().await.unwrap();
    let (done, open) = lines(dir.path());
    assert_eq!(done, [range(0, 0..10), range(1, 0..5)].concat());
    assert!(open.is_empty());
}

#[tokio::test]
async fn a_crash_while_a_commit_was_on_its_way_is_settled_by_the_group_offset() {
    for (landed, want) in [(false, 10), (true, 14)] {
        let dir = tempfile::tempdir().unwrap();
        let mut s = DirSink::open(dir.path(), 1 << 20, &who(None)).unwrap();
        s.reconcile(&[0], &BTreeMap::new()).await.unwrap();
        write(&mut s, 0, 0..10);
        commit(&mut s, &[(0, 10)]).await;
        write(&mut s, 0, 10..14);
        // Durable and journaled, then the process dies during the commit.
        s.flush(&group(&[(0, 14)])).await.unwrap();
        drop(s);
        let k = if landed { 14 } else { 10 };
        let mut s = DirSink::open(dir.path(), 1 << 20, &who(Some("other"))).unwrap();
        // Not ours now: only committed lines may stay.
        s.reconcile(&[], &group(&[(0, k)])).await.unwrap();
        let (done, open) = lines(dir.path());
        assert_eq!(done, range(0, 0..want), "landed: {landed}");
        assert!(open.is_empty());
    }
}

#[tokio::test]
async fn an_orphan_is_finalized_by_another_process_with_its_tentative_lines_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = DirSink::open(dir.path(), 1 << 20, &who(None)).unwrap();
    a.reconcile(&[0, 1], &BTreeMap::new()).await.unwrap();
    let mut b = DirSink::open(dir.path(), 1 << 20, &who(Some("b"))).unwrap();
    assert_ne!(a.slot(), b.slot());
    b.reconcile(&[], &BTreeMap::new()).await.unwrap();
    write(&mut a, 0, 0..10);
    write(&mut a, 1, 0..10);
    commit(&mut a, &[(0, 10), (1, 10)]).await;
    write(&mut a, 0, 10..12);
    write(&mut a, 1, 10..11);
    // While `a` runs, its slot is no orphan: nothing of it is touched or finalized.
    b.reconcile(&[2], &group(&[(0, 10), (1, 10)]))
        .await
        .unwrap();
    let (done, open) = lines(dir.path());
    assert!(done.is_empty());
    assert_eq!(open[..20], [range(0, 0..10), range(1, 0..10)].concat()[..]);
    drop(a); // SIGKILL

    // `b` takes both partitions over at the next rebalance.
    b.reconcile(&[0, 1, 2], &group(&[(0, 10), (1, 10)]))
        .await
        .unwrap();
    let (done, open) = lines(dir.path());
    assert_eq!(done, [range(0, 0..10), range(1, 0..10)].concat());
    assert!(open.is_empty());
    assert_eq!(slot::names(dir.path()).unwrap(), vec!["b".to_string()]);
    write(&mut b, 0, 10..12);
    commit(&mut b, &[(0, 12), (1, 10)]).await;
    b.close().await.unwrap();
    let (done, _) = lines(dir.path());
    assert_eq!(done, [range(0, 0..12), range(1, 0..10)].concat());
}

#[tokio::test]
async fn a_lost_membership_drops_what_was_written_since_the_last_commit() {
    let dir = tempfile::tempdir().unwrap();
    // Small files: the tentative lines span a rotated file and the open one.
    let mut s = DirSink::open(dir.path(), 400, &who(None)).unwrap();
    s.reconcile(&[0, 1], &BTreeMap::new()).await.unwrap();
    write(&mut s, 0, 0..3);
    write(&mut s, 1, 0..3);
    commit(&mut s, &[(0, 3), (1, 3)]).await;
    write(&mut s, 1, 3..6);
    write(&mut s, 0, 3..12);
    write(&mut s, 1, 6..8);
    // The commit is refused: the group moved on without us.
    s.flush(&group(&[(0, 12), (1, 8)])).await.unwrap();
    s.revoke(&[0, 1]).unwrap();
    // The next assignment gives partition 1 back; writing goes on in the same files.
    s.reconcile(&[1], &group(&[(0, 3), (1, 3)])).await.unwrap();
    write(&mut s, 1, 3..5);
    commit(&mut s, &[(1, 5)]).await;
    s.close().await.unwrap();
    let (done, open) = lines(dir.path());
    assert_eq!(done, [range(0, 0..3), range(1, 0..5)].concat());
    assert!(open.is_empty());
}

#[tokio::test]
async fn a_clean_revocation_keeps_everything_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = DirSink::open(dir.path(), 1 << 20, &who(None)).unwrap();
    s.reconcile(&[0, 1], &BTreeMap::new()).await.unwrap();
    write(&mut s, 0, 0..4);
    write(&mut s, 1, 0..4);
    commit(&mut s, &[(0, 4), (1, 4)]).await;
    s.revoke(&[0, 1]).unwrap();
    s.close().await.unwrap();
    let (done, _) = lines(dir.path());
    assert_eq!(done, [range(0, 0..4), range(1, 0..4)].concat());
}

#[tokio::test]
async fn one_instance_id_per_directory_and_foreign_output_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let _a = DirSink::open(dir.path(), 1 << 20, &who(Some("x"))).unwrap();
    let e = DirSink::open(dir.path(), 1 << 20, &who(Some("x")))
        .err()
        .unwrap();
    assert!(matches!(e, Error::SlotBusy { .. }), "{e}");
    assert_eq!(e.kind(), crate::error::Kind::Usage);

    // A crashed consumer of another topic left output here: never touched by ours.
    let other = Identity {
        topic: "other".into(),
        ..who(None)
    };
    let mut o = DirSink::open(dir.path(), 1 << 20, &other).unwrap();
    o.reconcile(&[0], &BTreeMap::new()).await.unwrap();
    write(&mut o, 0, 0..5);
    o.flush(&group(&[(0, 5)])).await.unwrap();
    drop(o);
    let mut s = DirSink::open(dir.path(), 1 << 20, &who(None)).unwrap();
    s.reconcile(&[0], &group(&[(0, 1)])).await.unwrap();
    assert_eq!(lines(dir.path()).1, range(0, 0..5));
    assert_eq!(slot::names(dir.path()).unwrap().len(), 3);
}

#[tokio::test]
async fn files_named_before_slots_follow_the_group_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir
        .path()
        .join("tweets-20261122T0524-0001.jsonl.inprogress");
    let b = batch(0, 0..6);
    let mut text = Vec::new();
    for i in 0..b.entries.len() {
        text.extend_from_slice(b.get(i));
        text.push(b'\n');
    }
    std::fs::write(&old, text).unwrap();
    let mut s = DirSink::open(dir.path(), 1 << 20, &who(None)).unwrap();
    s.reconcile(&[0], &group(&[(0, 4)])).await.unwrap();
    let (done, open) = lines(dir.path());
    assert_eq!(done, range(0, 0..4));
    assert!(open.is_empty());
    assert!(dir.path().join("tweets-20261122T0524-0001.jsonl").exists());
}
