//! A slot's journal: what its offset commits were, so that after a crash the output it holds
//! can be split into what was committed (keep) and what was not (someone will read it again).
//!
//! One JSON object per line, appended:
//! - a header (`slot`, `group`, `topic`): a journal of another group or topic is not ours to
//!   reconcile (the committed offsets we know are of our group and topic);
//! - `{"landed":{P:O,…}}`: each partition's committed offset as of a compaction;
//! - `{"pending":{P:O,…}}`: the offsets a commit is about to send. Written and fsynced after
//!   the output is durable and before the commit request leaves, so the journal never knows
//!   less than Kafka may;
//! - `{"done":true}` / `{"failed":true}`: that commit's outcome. Not fsynced: losing it (only a
//!   power cut can) leaves the pending commit undecided, which reconciliation settles with the
//!   group's offsets (see [`super::reconcile`]).
//!
//! A torn last line (a crash mid-append) is ignored: a pending line is complete before its
//! commit is sent. The file is rewritten to its state when it grows past [`COMPACT_BYTES`].

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Beyond this the journal is rewritten to one snapshot (tens of thousands of commits).
#[cfg(not(test))]
const COMPACT_BYTES: u64 = 1 << 20;
/// Small in tests, so that compaction is reached without thousands of fsyncs.
#[cfg(test)]
const COMPACT_BYTES: u64 = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Header {
    pub(crate) slot: String,
    pub(crate) group: String,
    pub(crate) topic: String,
    /// The name was made up for a process without an instance id, so any later process may
    /// adopt the slot; a named slot is only ever its instance's.
    pub(crate) generated: bool,
}

/// What the journal says about the slot's commits.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct State {
    /// Each partition's last offset this slot committed (the next to read).
    pub(crate) landed: BTreeMap<i32, i64>,
    /// A commit sent (or about to be) whose outcome is unknown: after a crash it may or may
    /// not have landed.
    pub(crate) pending: Option<BTreeMap<i32, i64>>,
}

/// One line after the header: exactly one field is set. (A struct, not an untagged enum:
/// serde cannot read integer map keys through an untagged enum.)
#[derive(Default, Serialize, Deserialize)]
struct Line {
    #[serde(skip_serializing_if = "Option::is_none")]
    landed: Option<BTreeMap<i32, i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pending: Option<BTreeMap<i32, i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    done: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed: Option<bool>,
}

/// Reads a journal: its header and state, `None` when there is none (or not even a header).
pub(crate) fn read(path: &Path) -> std::io::Result<Option<(Header, State)>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut lines = Vec::new();
    let mut reader = BufReader::new(file);
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line)? == 0 || line.last() != Some(&b'\n') {
            break; // the end, or a torn last line
        }
        lines.push(line);
    }
    let Some(header) = lines
        .first()
        .and_then(|l| serde_json::from_slice::<Header>(l).ok())
    else {
        return Ok(None);
    };
    let mut state = State::default();
    for l in &lines[1..] {
        // A line written by a newer version, or damaged, is of no use and skipped.
        let Ok(line) = serde_json::from_slice::<Line>(l) else {
            continue;
        };
        if let Some(landed) = line.landed {
            state.landed = landed;
        }
        if let Some(pending) = line.pending {
            state.pending = Some(pending);
        }
        if line.done.is_some() {
            if let Some(p) = state.pending.take() {
                state.landed.extend(p);
            }
        }
        if line.failed.is_some() {
            state.pending = None;
        }
    }
    Ok(Some((header, state)))
}

/// A journal open for appending.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    header: Header,
    state: State,
    bytes: u64,
}

impl Journal {
    /// Starts the journal at `path` afresh with `state` (atomically replacing what is there).
    pub(crate) fn create(path: &Path, header: Header, state: State) -> std::io::Result<Self> {
        let bytes = rewrite(path, &header, &state)?;
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            header,
            state,
            bytes,
        })
    }

    pub(crate) fn state(&self) -> &State {
        &self.state
    }

    /// A commit of `next` is about to be sent: durable before it is.
    pub(crate) fn pending(&mut self, next: &BTreeMap<i32, i64>) -> std::io::Result<()> {
        self.append(&Line {
            pending: Some(next.clone()),
            ..Line::default()
        })?;
        self.file.sync_data()?;
        self.state.pending = Some(next.clone());
        Ok(())
    }

    /// The pending commit landed.
    pub(crate) fn done(&mut self) -> std::io::Result<()> {
        let Some(p) = self.state.pending.take() else {
            return Ok(());
        };
        self.state.landed.extend(p);
        if self.bytes > COMPACT_BYTES {
            return self.resolve(self.state.landed.clone());
        }
        self.append(&Line {
            done: Some(true),
            ..Line::default()
        })
    }

    /// The pending commit was refused (it did not land).
    pub(crate) fn failed(&mut self) -> std::io::Result<()> {
        if self.state.pending.take().is_none() {
            return Ok(());
        }
        self.append(&Line {
            failed: Some(true),
            ..Line::default()
        })
    }

    /// Sets the committed offsets as reconciliation decided them (no commit pending).
    pub(crate) fn resolve(&mut self, landed: BTreeMap<i32, i64>) -> std::io::Result<()> {
        self.state = State {
            landed,
            pending: None,
        };
        self.bytes = rewrite(&self.path, &self.header, &self.state)?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        Ok(())
    }

    fn append(&mut self, line: &Line) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec(line).expect("serializing to memory");
        bytes.push(b'\n');
        self.file.write_all(&bytes)?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }
}

/// Writes `header` and `state` to a temporary file and renames it over `path`; its size.
fn rewrite(path: &Path, header: &Header, state: &State) -> std::io::Result<u64> {
    let mut out = serde_json::to_vec(header).expect("serializing to memory");
    out.push(b'\n');
    let landed = Line {
        landed: Some(state.landed.clone()),
        ..Line::default()
    };
    serde_json::to_writer(&mut out, &landed).expect("serializing to memory");
    out.push(b'\n');
    if let Some(p) = &state.pending {
        let pending = Line {
            pending: Some(p.clone()),
            ..Line::default()
        };
        serde_json::to_writer(&mut out, &pending).expect("serializing to memory");
        out.push(b'\n');
    }
    let tmp = path.with_extension("journal-new");
    let mut f = File::create(&tmp)?;
    f.write_all(&out)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(out.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            slot: "s".into(),
            group: "g".into(),
            topic: "t".into(),
            generated: true,
        }
    }

    fn map(pairs: &[(i32, i64)]) -> BTreeMap<i32, i64> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn replay_follows_pending_done_and_failed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.journal");
        let mut j = Journal::create(&path, header(), State::default()).unwrap();
        j.pending(&map(&[(0, 10), (1, 5)])).unwrap();
        j.done().unwrap();
        j.pending(&map(&[(0, 12)])).unwrap();
        j.failed().unwrap();
        j.pending(&map(&[(0, 15), (1, 9)])).unwrap();
        let (h, s) = read(&path).unwrap().unwrap();
        assert_eq!(h, header());
        // The last commit's outcome is not known: a crash now leaves it pending.
        assert_eq!(s.landed, map(&[(0, 10), (1, 5)]));
        assert_eq!(s.pending, Some(map(&[(0, 15), (1, 9)])));
        j.done().unwrap();
        let (_, s) = read(&path).unwrap().unwrap();
        assert_eq!(s.landed, map(&[(0, 15), (1, 9)]));
        assert_eq!(s.pending, None);
        assert_eq!(&s, j.state());
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_a_restart_keeps_the_pending_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.journal");
        let mut j = Journal::create(&path, header(), State::default()).unwrap();
        j.pending(&map(&[(0, 3)])).unwrap();
        j.done().unwrap();
        j.pending(&map(&[(0, 7)])).unwrap();
        drop(j);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"pend").unwrap();
        let (h, s) = read(&path).unwrap().unwrap();
        assert_eq!(s.pending, Some(map(&[(0, 7)])));
        // Adopted by a later process: the undecided commit stays undecided.
        let j = Journal::create(&path, h, s.clone()).unwrap();
        assert_eq!(read(&path).unwrap().unwrap().1, s);
        assert_eq!(j.state(), &s);
    }

    #[test]
    fn it_compacts_to_its_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.journal");
        let mut j = Journal::create(&path, header(), State::default()).unwrap();
        let mut n = 0;
        while std::fs::metadata(&path).unwrap().len() <= COMPACT_BYTES {
            n += 1;
            j.pending(&map(&[(0, n), (1, 2 * n)])).unwrap();
            j.done().unwrap();
        }
        n += 1;
        j.pending(&map(&[(0, n)])).unwrap();
        j.done().unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() < 200);
        let (_, s) = read(&path).unwrap().unwrap();
        assert_eq!(s.landed, map(&[(0, n), (1, 2 * (n - 1))]));
        assert!(read(&dir.path().join("none")).unwrap().is_none());
    }
}
