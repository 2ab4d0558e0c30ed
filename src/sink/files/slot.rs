//! Slots: which process writes which files of an output directory.
//!
//! Several consumers of one group may share an output directory (on one machine), and a killed
//! consumer leaves files behind that someone must reconcile later. Each process therefore
//! writes under a *slot*: a name that is part of every file it creates
//! (`tweets-20261122T0524-0001.SLOT.jsonl`), so that files of different processes never
//! collide, and a state folder `.tweetpipe/` in the directory holds per slot
//!
//! - `SLOT.lock`, held with `flock` for as long as a process writes under the slot: a slot
//!   whose lock can be taken belongs to no running process (the kernel drops the lock of a
//!   process that dies, however it dies);
//! - `SLOT.journal`, what the slot's offsets commits were ([`super::journal`]).
//!
//! A process uses `--instance-id` as its slot name when it has one; otherwise it adopts a slot
//! an earlier process left (its own previous run, after a crash), or creates one named after
//! the host and a random suffix. Every other slot whose lock it can take is an *orphan*: its
//! files are reconciled and finalized by whoever finds it ([`super::DirSink`]), and the slot
//! is then deleted.

use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use super::IN_PROGRESS;

/// The state folder inside the output directory.
pub(crate) const STATE_DIR: &str = ".tweetpipe";
const LOCK: &str = ".lock";
/// The lock of whoever finalizes files named before slots existed (a name no slot listing
/// shows: slot names never start with a dot).
pub(crate) const UNSLOTTED: &str = ".unslotted";
const JOURNAL: &str = ".journal";

/// A slot this process holds the lock of.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) name: String,
    /// Kept open: closing it would drop the lock.
    _lock: File,
}

impl Slot {
    pub(crate) fn journal_path(&self, dir: &Path) -> PathBuf {
        state_dir(dir).join(format!("{}{JOURNAL}", self.name))
    }

    /// Deletes the slot's state (after its files were finalized): the journal, then the lock
    /// file. The lock is released when `self` is dropped.
    pub(crate) fn remove(self, dir: &Path) -> std::io::Result<()> {
        remove_if_there(&self.journal_path(dir))?;
        remove_if_there(&state_dir(dir).join(format!("{}{LOCK}", self.name)))
    }
}

pub(crate) fn state_dir(dir: &Path) -> PathBuf {
    dir.join(STATE_DIR)
}

fn remove_if_there(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Why a slot could not be had.
#[derive(Debug)]
pub(crate) enum Taken {
    /// A running process holds it.
    Busy,
    Io(std::io::Error),
}

impl From<std::io::Error> for Taken {
    fn from(e: std::io::Error) -> Self {
        Taken::Io(e)
    }
}

/// Takes the lock of slot `name` (creating its lock file), without waiting.
pub(crate) fn lock(dir: &Path, name: &str) -> Result<Slot, Taken> {
    let path = state_dir(dir).join(format!("{name}{LOCK}"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    Ok(Slot {
        name: name.to_string(),
        _lock: try_lock(file, &path)?,
    })
}

/// Locks `file`, opened from `path`, and checks that `path` still is that file.
fn try_lock(file: File, path: &Path) -> Result<File, Taken> {
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(if e.kind() == std::io::ErrorKind::WouldBlock {
            Taken::Busy
        } else {
            Taken::Io(e)
        });
    }
    // Whoever deletes an orphan's lock file does so while holding its lock; if that happened
    // between our open and our flock, we hold the lock of a file that is gone: not the slot.
    let ours = file.metadata()?.ino();
    match std::fs::metadata(path) {
        Ok(m) if m.ino() == ours => Ok(file),
        _ => Err(Taken::Busy),
    }
}

/// Every slot that has state in `dir` (a lock file), sorted.
pub(crate) fn names(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut out: Vec<String> = match std::fs::read_dir(state_dir(dir)) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(LOCK)
                    .filter(|n| !n.starts_with('.'))
                    .map(str::to_string)
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    out.sort();
    Ok(out)
}

/// A new slot name for a process without an instance id: the host's name and 16 random bits
/// (the name tells an operator where the files came from; the bits keep several processes
/// on one host apart).
pub(crate) fn generated_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .split('.')
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(32)
        .collect();
    let host = if host.is_empty() { "tweetpipe" } else { &host };
    // std's hasher keys are random per process: a source of random bits without a crate.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("{host}-{:04x}", h.finish() & 0xffff)
}

/// The name of a data file of `slot`: `SERIES-STAMP-SEQ.SLOT.jsonl.inprogress`.
pub(crate) fn file_name(series: &str, stamp: &str, seq: u32, slot: &str) -> String {
    format!("{series}-{stamp}-{seq:04}.{slot}.jsonl{IN_PROGRESS}")
}

/// The slot an in-progress data file belongs to: `Some("")` for a file named before slots
/// existed (`SERIES-STAMP-SEQ.jsonl.inprogress`), `None` for a file that is not ours.
pub(crate) fn slot_of(file_name: &str) -> Option<&str> {
    let stem = file_name
        .strip_suffix(IN_PROGRESS)?
        .strip_suffix(".jsonl")?;
    // Series, stamp and sequence hold no '.', so the slot is everything after the first one.
    Some(stem.split_once('.').map_or("", |(_, slot)| slot))
}

/// The in-progress data files of `slot` in `dir`, sorted (by name: creation order).
pub(crate) fn in_progress_files(dir: &Path, slot: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            slot_of(&name.to_string_lossy()) == Some(slot)
        })
        .map(|e| e.path())
        .collect();
    files.sort();
    Ok(files)
}

/// Whether `dir` holds in-progress files named before slots existed.
pub(crate) fn has_unslotted_files(dir: &Path) -> std::io::Result<bool> {
    Ok(!in_progress_files(dir, "")?.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_slot_and_read_back() {
        let n = file_name("tweets", "20261122T0524", 7, "vm1-3f9a");
        assert_eq!(n, "tweets-20261122T0524-0007.vm1-3f9a.jsonl.inprogress");
        assert_eq!(slot_of(&n), Some("vm1-3f9a"));
        // Instance ids may hold dots.
        let n = file_name("errors", "20261122T0524", 1, "eu.vm.2");
        assert_eq!(slot_of(&n), Some("eu.vm.2"));
        assert_eq!(
            slot_of("tweets-20261122T0524-0001.jsonl.inprogress"),
            Some("")
        );
        assert_eq!(slot_of("tweets-20261122T0524-0001.s.jsonl"), None);
        assert_eq!(slot_of("notes.txt"), None);
        let g = generated_name();
        assert!(
            g.len() > 5 && !g.contains('.') && g.rsplit_once('-').unwrap().1.len() == 4,
            "{g}"
        );
    }

    #[test]
    fn a_locked_slot_is_busy_until_its_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(state_dir(dir.path())).unwrap();
        let held = lock(dir.path(), "a").unwrap();
        assert!(matches!(lock(dir.path(), "a"), Err(Taken::Busy)));
        assert_eq!(names(dir.path()).unwrap(), vec!["a".to_string()]);
        drop(held);
        let again = lock(dir.path(), "a").unwrap();
        again.remove(dir.path()).unwrap();
        assert!(names(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn a_lock_file_deleted_under_a_waiting_process_is_not_the_slot() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(state_dir(dir.path())).unwrap();
        let path = state_dir(dir.path()).join("a.lock");
        // This process opened the lock file; then its holder removed the slot, and another
        // process made a new slot of that name.
        let early = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"").unwrap();
        assert!(matches!(try_lock(early, &path), Err(Taken::Busy)));
        assert!(lock(dir.path(), "a").is_ok());
    }
}
