//! The spill directory: append-only segment files, bounded in bytes, one writer at a time.
//!
//! Files are `{id:020}.spill`, ids increasing, so name order is age order. The newest is the
//! active segment (appended to); the others are sealed and wait for the drain. A previous
//! run's segments are all sealed and drained first. A `LOCK` file held with `flock` keeps two
//! producers from sharing a directory.
//!
//! Appends happen on the stream reader's task, so they must never wait on anything slow: one
//! `write` per record into the page cache (a few microseconds), no fsync on this path (a
//! background task does that every fsync interval), and a std mutex held only for the write.
//! At the size bound or on a write error (disk full), the newest record is dropped, counted
//! and reported: what is already spilled is never given up for it.
//!
//! The spill is a durable queue and nothing more: whether a record goes to the channel or
//! here is the intake's decision.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use super::segment;
use crate::logging::{Every, QUIET};
use crate::produce::record::RawRecord;
use crate::produce::stats::Stats;

#[derive(Debug, Clone)]
pub(crate) struct SpillConfig {
    pub(crate) dir: PathBuf,
    /// Bytes of segment files on disk at most.
    pub(crate) max_bytes: u64,
    /// A segment is sealed once it holds this many bytes.
    pub(crate) segment_bytes: u64,
    pub(crate) fsync_interval: Duration,
}

/// A sealed segment on its way through the drain.
#[derive(Debug)]
pub(crate) struct Sealed {
    pub(crate) id: u64,
    pub(crate) path: PathBuf,
    /// Bytes on disk (the size bound counts these until the file is deleted).
    pub(crate) bytes: u64,
    /// Sealed by this run (fsync before reading it back) or left by a previous one.
    pub(crate) from_this_run: bool,
}

struct Active {
    id: u64,
    path: PathBuf,
    file: File,
    bytes: u64,
    records: u64,
}

struct Inner {
    sealed: VecDeque<Sealed>,
    active: Option<Active>,
    next_id: u64,
    /// Bytes of all segment files not yet deleted.
    on_disk: u64,
    /// Segments handed to the drain and not yet deleted.
    in_drain: usize,
    buf: Vec<u8>,
    dropping: Every,
}

pub(crate) struct Spill {
    cfg: SpillConfig,
    inner: Mutex<Inner>,
    stats: Arc<Stats>,
    /// Wakes the drain when something was spilled.
    pub(super) notify: Notify,
    _lock: File,
}

/// Whether a record was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offered {
    Spilled,
    Dropped,
}

/// Why the spill directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("spill directory {}: cannot {what}", .dir.display())]
    Unusable {
        dir: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("spill directory {} is in use by another tweetpipe produce", .dir.display())]
    Locked { dir: PathBuf },
}

impl crate::error::Classify for Error {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::Usage
    }
}

impl Spill {
    /// Opens (creating it if needed) and locks the spill directory, and finds the segments a
    /// previous run left.
    pub(crate) fn open(cfg: SpillConfig, stats: Arc<Stats>) -> Result<Arc<Spill>, Error> {
        let dir = &cfg.dir;
        let unusable = |what| {
            move |source| Error::Unusable {
                dir: dir.clone(),
                what,
                source,
            }
        };
        std::fs::create_dir_all(dir).map_err(unusable("create it"))?;
        let lock = lock_dir(dir)?;
        let mut found: Vec<(u64, PathBuf, u64)> = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(unusable("list it"))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(id) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".spill"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
            found.push((id, path, bytes));
        }
        found.sort();
        let on_disk = found.iter().map(|f| f.2).sum();
        let next_id = found.last().map_or(0, |f| f.0 + 1);
        if !found.is_empty() {
            tracing::warn!(
                dir = %dir.display(),
                segments = found.len(),
                mb = on_disk as f64 / 1e6,
                "found spilled records from a previous run; delivering them first"
            );
        }
        let sealed: VecDeque<Sealed> = found
            .into_iter()
            .map(|(id, path, bytes)| Sealed {
                id,
                path,
                bytes,
                from_this_run: false,
            })
            .collect();
        stats
            .spill_bytes
            .store(on_disk, std::sync::atomic::Ordering::Relaxed);
        Ok(Arc::new(Spill {
            inner: Mutex::new(Inner {
                sealed,
                active: None,
                next_id,
                on_disk,
                in_drain: 0,
                buf: Vec::new(),
                dropping: Every::new(QUIET),
            }),
            cfg,
            stats,
            notify: Notify::new(),
            _lock: lock,
        }))
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.cfg.dir
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent enough state (at worst a segment
        // with a torn tail, which the reader handles): keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `record` to the spill (a live record the channel had no room for, a batch the
    /// producer gave up on, or the channel's content at shutdown). `Dropped` when the bound or
    /// a write error stopped it. Never waits on anything but the write.
    pub(crate) fn append(&self, record: &RawRecord) -> Offered {
        let mut inner = self.lock();
        self.append_locked(&mut inner, record)
    }

    /// Like [`Spill::append`], for a record that may have come from the spill: once it is in
    /// a newer segment, its old segment no longer needs it.
    pub(crate) fn keep(&self, record: &RawRecord) -> Offered {
        let offered = self.append(record);
        if offered == Offered::Spilled {
            if let Some(t) = &record.spill {
                t.ack(false);
            }
        }
        offered
    }

    fn append_locked(&self, inner: &mut Inner, record: &RawRecord) -> Offered {
        let len = segment::encoded_len(record) as u64;
        if inner.on_disk + len > self.cfg.max_bytes {
            self.dropped(inner, "the spill is full (its size bound)", None);
            return Offered::Dropped;
        }
        if let Err(e) = self.write_locked(inner, record) {
            self.dropped(inner, "writing to the spill failed", Some(e));
            return Offered::Dropped;
        }
        inner.on_disk += len;
        self.stats
            .spill_bytes
            .store(inner.on_disk, std::sync::atomic::Ordering::Relaxed);
        Stats::add(&self.stats.spilled, 1);
        self.notify.notify_one();
        Offered::Spilled
    }

    fn write_locked(&self, inner: &mut Inner, record: &RawRecord) -> std::io::Result<()> {
        if inner.active.is_none() {
            // The id is used up even if creating the file fails, so a later attempt (the disk
            // has room again) does not trip over a half-made file of the same name.
            let id = inner.next_id;
            inner.next_id += 1;
            let path = self.cfg.dir.join(format!("{id:020}.spill"));
            let mut file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)?;
            if let Err(e) = file.write_all(segment::MAGIC) {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
            inner.on_disk += segment::MAGIC.len() as u64;
            inner.active = Some(Active {
                id,
                path,
                file,
                bytes: segment::MAGIC.len() as u64,
                records: 0,
            });
        }
        let mut buf = std::mem::take(&mut inner.buf);
        buf.clear();
        segment::encode(record, &mut buf);
        let active = inner.active.as_mut().expect("opened above");
        let result = active.file.write_all(&buf);
        inner.buf = buf;
        if let Err(e) = result {
            // Take back a partial write so later records do not sit behind a torn one; if
            // even that fails, seal the segment here (its reader stops at the torn record,
            // and nothing is written after it).
            let active = inner.active.as_mut().expect("opened above");
            if active.file.set_len(active.bytes).is_err() {
                self.seal_active(inner);
            }
            return Err(e);
        }
        let written = inner.buf.len() as u64;
        let active = inner.active.as_mut().expect("opened above");
        active.bytes += written;
        active.records += 1;
        if active.bytes >= self.cfg.segment_bytes {
            self.seal_active(inner);
        }
        Ok(())
    }

    fn seal_active(&self, inner: &mut Inner) {
        if let Some(a) = inner.active.take() {
            if a.records == 0 {
                // Nothing in it: not worth a drain round.
                let _ = std::fs::remove_file(&a.path);
                inner.on_disk = inner.on_disk.saturating_sub(a.bytes);
                return;
            }
            inner.sealed.push_back(Sealed {
                id: a.id,
                path: a.path,
                bytes: a.bytes,
                from_this_run: true,
            });
        }
    }

    fn dropped(&self, inner: &mut Inner, why: &str, error: Option<std::io::Error>) {
        Stats::add(&self.stats.dropped, 1);
        if let Some(n) = inner.dropping.tick() {
            let error = error.map(|e| e.to_string()).unwrap_or_default();
            tracing::error!(
                dir = %self.cfg.dir.display(),
                spill_mb = inner.on_disk as f64 / 1e6,
                max_mb = self.cfg.max_bytes as f64 / 1e6,
                dropped_since_last_report = n,
                dropped_total = Stats::get(&self.stats.dropped),
                %error,
                "{why}: dropping the newest live records (what is spilled is kept); raise the spill's bound, free disk space, or check the brokers"
            );
        }
    }

    /// The next segment for the drain, oldest first: a sealed one, else the active one sealed
    /// now. `None` when the spill is empty.
    pub(crate) fn next_for_drain(&self) -> Option<Sealed> {
        let mut inner = self.lock();
        if inner.sealed.is_empty() {
            self.seal_active(&mut inner);
        }
        match inner.sealed.pop_front() {
            Some(s) => {
                inner.in_drain += 1;
                Some(s)
            }
            None => None,
        }
    }

    /// Every record of `segment` was acknowledged (or spilled again): delete it.
    pub(crate) fn segment_done(&self, segment: &Sealed) {
        if let Err(e) = std::fs::remove_file(&segment.path) {
            tracing::error!(path = %segment.path.display(), "cannot delete a delivered spill segment: {e}; delete it by hand, or its records will be sent again by the next run");
        }
        let mut inner = self.lock();
        inner.in_drain = inner.in_drain.saturating_sub(1);
        inner.on_disk = inner.on_disk.saturating_sub(segment.bytes);
        self.stats
            .spill_bytes
            .store(inner.on_disk, std::sync::atomic::Ordering::Relaxed);
    }

    /// A segment the drain gave up on (unreadable): it stays on disk, out of the count of
    /// segments in flight.
    pub(crate) fn segment_abandoned(&self, _segment: &Sealed) {
        let mut inner = self.lock();
        inner.in_drain = inner.in_drain.saturating_sub(1);
    }

    /// Nothing spilled is waiting or in flight.
    pub(crate) fn is_empty(&self) -> bool {
        let inner = self.lock();
        inner.sealed.is_empty()
            && inner.in_drain == 0
            && inner.active.as_ref().is_none_or(|a| a.records == 0)
    }

    /// Bytes of segment files on disk.
    pub(crate) fn bytes_on_disk(&self) -> u64 {
        self.lock().on_disk
    }

    /// fsyncs the active segment every `--spill-fsync-interval`, off the reader's task.
    pub(crate) fn spawn_fsync(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(this.cfg.fsync_interval.max(Duration::from_millis(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let file = {
                    let inner = this.lock();
                    inner.active.as_ref().and_then(|a| a.file.try_clone().ok())
                };
                if let Some(f) = file {
                    let _ = tokio::task::spawn_blocking(move || f.sync_data()).await;
                }
            }
        })
    }

    /// Flushes the active segment to stable storage now (at exit).
    pub(crate) fn sync_now(&self) {
        let inner = self.lock();
        if let Some(a) = &inner.active {
            let _ = a.file.sync_data();
        }
    }
}

/// Holds an exclusive `flock` on `dir/LOCK` for the life of the process.
fn lock_dir(dir: &Path) -> Result<File, Error> {
    let path = dir.join("LOCK");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| Error::Unusable {
            dir: dir.to_path_buf(),
            what: "create its LOCK file",
            source,
        })?;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(Error::Locked {
            dir: dir.to_path_buf(),
        });
    }
    Ok(file)
}
