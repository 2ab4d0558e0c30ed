//! Rotating JSON-lines files in the output directory, one series per kind of record:
//! `tweets-20261122T0524-0001.SLOT.jsonl` and so on, where SLOT names the process that wrote
//! it ([`slot`]), so that several consumers can share a directory. A file being written
//! carries the suffix `.inprogress`, so nothing downstream mistakes it for a finished one.
//! Files rotate when the UTC hour changes and when they reach the rotation size.
//!
//! Durability: [`Sink::flush`] fsyncs every open file (and the directory when a file was
//! created) and notes the offsets about to be committed in the slot's journal ([`journal`]);
//! a rotated file is renamed to its final name only after the offsets covering it were
//! committed ([`Sink::committed`]). So a finished file never holds a record beyond the
//! committed offsets: only `.inprogress` files can, and those lines are *tentative*: whoever
//! reads the partition next may write them too. They are removed ([`reconcile`],
//! [`recover`]) when
//! - the consumer gives up partitions without a commit (its membership was lost): [`Sink::revoke`];
//! - an earlier process of this slot crashed: at the first [`Sink::reconcile`], which keeps
//!   them only for a partition this process reads now and nobody committed since (reading
//!   then resumes after them: [`Sink::resume`]);
//! - a consumer that shared the directory crashed and nobody restarted it: its slot is an
//!   orphan, and the next reconciliation of any process finalizes its committed lines and
//!   removes the rest.

pub(crate) mod journal;
pub(crate) mod reconcile;
pub(crate) mod recover;
pub(crate) mod slot;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Timelike, Utc};

use self::journal::{Header, Journal, State};
use self::reconcile::{Cut, Judge};
use self::slot::{Slot, Taken};
use super::line::{self, JsonLines};
use super::{Encoded, Encoder, Error, Kind, Sink, SinkFuture};

pub(crate) const IN_PROGRESS: &str = ".inprogress";

/// Whose output this is: the group and topic it was read from, and the consumer's instance
/// id when it has one.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) group: String,
    pub(crate) topic: String,
    pub(crate) instance_id: Option<String>,
}

struct Open {
    writer: BufWriter<File>,
    path: PathBuf,
    bytes: u64,
    /// UTC hours since the epoch when the file was opened.
    hour: i64,
    /// Every line before this byte is committed.
    clean: u64,
}

/// A rotated file, synced, waiting for the commit that covers it.
struct Unfinished {
    path: PathBuf,
    clean: u64,
}

/// What an earlier process of this slot left, reconciled at the first `reconcile`.
struct Earlier {
    files: Vec<PathBuf>,
    /// Its journal; `None` for files named before slots existed.
    state: Option<State>,
}

pub(crate) struct DirSink {
    dir: PathBuf,
    rotate_bytes: u64,
    header: Header,
    slot: Slot,
    journal: Journal,
    open: [Option<Open>; 3],
    rotated: Vec<Unfinished>,
    earlier: Option<Earlier>,
    /// After reconciliation: where reading resumes in partitions whose tentative lines stayed.
    kept: BTreeMap<i32, i64>,
    seq: u32,
    /// A file was created since the last sync: the directory entry needs an fsync too.
    dir_dirty: bool,
    /// Orphans of another group or topic, warned about once.
    foreign: Vec<String>,
}

impl DirSink {
    /// Opens the output directory (creating it) and takes a slot in it.
    pub(crate) fn open(dir: &Path, rotate_bytes: u64, who: &Identity) -> Result<Self, Error> {
        let io = |what: &str| Error::io(format!("{what} {}", dir.display()));
        std::fs::create_dir_all(slot::state_dir(dir))
            .map_err(io("cannot create the output directory"))?;
        let (slot, old, generated) = take_slot(dir, who)?;
        let files = slot::in_progress_files(dir, &slot.name)
            .map_err(io("cannot list the output directory"))?;
        let header = Header {
            slot: slot.name.clone(),
            group: who.group.clone(),
            topic: who.topic.clone(),
            generated,
        };
        let state = old.map(|(_, s)| s);
        let journal = Journal::create(
            &slot.journal_path(dir),
            header.clone(),
            state.clone().unwrap_or_default(),
        )
        .map_err(io("cannot write the journal in"))?;
        tracing::info!(dir = %dir.display(), slot = %slot.name, "output files carry this slot name");
        if !files.is_empty() {
            tracing::info!(slot = %slot.name, files = files.len(), "found unfinished output of an earlier run; it is reconciled with the group's offsets before reading");
        }
        Ok(DirSink {
            dir: dir.to_path_buf(),
            rotate_bytes: rotate_bytes.max(1),
            header,
            earlier: (!files.is_empty()).then_some(Earlier { files, state }),
            slot,
            journal,
            open: [None, None, None],
            rotated: Vec::new(),
            kept: BTreeMap::new(),
            seq: 0,
            dir_dirty: false,
            foreign: Vec::new(),
        })
    }

    /// The slot this process writes under (part of every file name).
    pub(crate) fn slot(&self) -> &str {
        &self.slot.name
    }

    fn write_line(&mut self, kind: Kind, line: &[u8]) -> std::io::Result<()> {
        let now = Utc::now();
        let hour = now.timestamp().div_euclid(3600);
        let i = kind.index();
        let rotate = self.open[i]
            .as_ref()
            .is_some_and(|o| o.hour != hour || o.bytes >= self.rotate_bytes);
        if rotate {
            let mut o = self.open[i].take().expect("checked above");
            o.writer.flush()?;
            o.writer.get_ref().sync_data()?;
            self.rotated.push(Unfinished {
                path: o.path,
                clean: o.clean,
            });
        }
        if self.open[i].is_none() {
            self.open[i] = Some(self.create(kind, now, hour)?);
        }
        let o = self.open[i].as_mut().expect("opened above");
        o.writer.write_all(line)?;
        o.writer.write_all(b"\n")?;
        o.bytes += line.len() as u64 + 1;
        Ok(())
    }

    fn create(
        &mut self,
        kind: Kind,
        now: chrono::DateTime<Utc>,
        hour: i64,
    ) -> std::io::Result<Open> {
        let stamp = format!(
            "{}T{:02}{:02}",
            now.format("%Y%m%d"),
            now.hour(),
            now.minute()
        );
        loop {
            self.seq += 1;
            let name = slot::file_name(line::series(kind), &stamp, self.seq, &self.slot.name);
            let path = self.dir.join(&name);
            let finished = self.dir.join(name.trim_end_matches(IN_PROGRESS));
            if finished.exists() {
                continue;
            }
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    self.dir_dirty = true;
                    return Ok(Open {
                        writer: BufWriter::with_capacity(256 * 1024, file),
                        path,
                        bytes: 0,
                        hour,
                        clean: 0,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn sync(&mut self) -> std::io::Result<()> {
        for o in self.open.iter_mut().flatten() {
            o.writer.flush()?;
            o.writer.get_ref().sync_data()?;
        }
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        Ok(())
    }

    fn finalize_rotated(&mut self) -> std::io::Result<()> {
        if self.rotated.is_empty() {
            return Ok(());
        }
        for f in self.rotated.drain(..) {
            finalize(&f.path)?;
        }
        sync_dir(&self.dir)
    }

    fn scratch(&self) -> PathBuf {
        slot::state_dir(&self.dir).join(format!("{}.rewrite", self.slot.name))
    }

    /// Drops the tentative lines of `partitions` from the unfinished files.
    fn drop_tentative(&mut self, partitions: &[i32]) -> std::io::Result<u64> {
        let landed = self.journal.state().landed.clone();
        let mut keep =
            |p: i32, o: i64| !partitions.contains(&p) || landed.get(&p).is_some_and(|c| o < *c);
        let scratch = self.scratch();
        let mut dropped = 0;
        for f in &mut self.rotated {
            let r = recover::filter(&f.path, f.clean, &mut keep, &scratch)?;
            dropped += r.dropped;
            f.clean = r.len;
        }
        for slot in &mut self.open {
            let Some(o) = slot.as_mut() else { continue };
            o.writer.flush()?;
            let r = recover::filter(&o.path, o.clean, &mut keep, &scratch)?;
            dropped += r.dropped;
            if r.dropped > 0 || r.torn > 0 {
                // Renamed over or truncated: append to what is there now.
                let file = OpenOptions::new().append(true).open(&o.path)?;
                o.writer = BufWriter::with_capacity(256 * 1024, file);
                o.bytes = r.len;
            }
            o.clean = r.len;
        }
        Ok(dropped)
    }

    /// The first reconciliation: this slot's files from an earlier process.
    fn reconcile_earlier(
        &mut self,
        earlier: Earlier,
        owned: &[i32],
        group: &BTreeMap<i32, i64>,
    ) -> std::io::Result<()> {
        let judge = Judge {
            state: earlier.state.as_ref(),
            group,
            owned,
            own: true,
        };
        let mut cuts = Cuts::new(judge);
        let scratch = self.scratch();
        let mut kept_max: BTreeMap<i32, i64> = BTreeMap::new();
        let (mut kept, mut dropped) = (0, 0);
        for path in earlier.files {
            let r = recover::filter(&path, 0, &mut |p, o| cuts.keeps(p, o), &scratch)?;
            if r.torn > 0 {
                tracing::warn!(file = %path.display(), bytes = r.torn, "cut a torn last line left by a crash");
            }
            (kept, dropped) = (kept + r.kept, dropped + r.dropped);
            for (p, o) in r.kept_max {
                let m = kept_max.entry(p).or_insert(o);
                *m = (*m).max(o);
            }
            self.rotated.push(Unfinished { path, clean: 0 });
        }
        for (p, max) in kept_max {
            let past_group = group.get(&p).is_none_or(|k| max + 1 > *k);
            if cuts.get(p).keep_tentative && past_group {
                self.kept.insert(p, max + 1);
            }
        }
        let mut partitions: Vec<i32> = cuts.cache.keys().copied().collect();
        if let Some(s) = &earlier.state {
            partitions.extend(s.landed.keys());
            partitions.extend(s.pending.iter().flat_map(|m| m.keys()));
        }
        let landed: BTreeMap<i32, i64> = partitions
            .into_iter()
            .filter_map(|p| cuts.get(p).committed.map(|c| (p, c)))
            .collect();
        self.journal.resolve(landed)?;
        cuts.warn();
        tracing::info!(slot = %self.slot.name, lines_kept = kept, lines_dropped = dropped, resume = ?self.kept, "reconciled the output of an earlier run with the group's offsets");
        Ok(())
    }

    /// Finalizes the output of every orphaned slot of this group and topic.
    fn sweep_orphans(&mut self, group: &BTreeMap<i32, i64>) -> std::io::Result<()> {
        for name in slot::names(&self.dir)? {
            if name == self.slot.name {
                continue;
            }
            let path = slot::state_dir(&self.dir).join(format!("{name}.journal"));
            if !self.ours(&name, journal::read(&path)?.map(|(h, _)| h)) {
                continue;
            }
            let orphan = match slot::lock(&self.dir, &name) {
                Ok(s) => s,
                Err(Taken::Busy) => continue,
                Err(Taken::Io(e)) => return Err(e),
            };
            // Read again under the lock: its last holder may have written since.
            let state = journal::read(&path)?.map(|(_, s)| s);
            let files = slot::in_progress_files(&self.dir, &name)?;
            self.sweep(&name, files, state.as_ref(), group)?;
            orphan.remove(&self.dir)?;
        }
        if slot::has_unslotted_files(&self.dir)? {
            if let Ok(lock) = slot::lock(&self.dir, slot::UNSLOTTED) {
                let files = slot::in_progress_files(&self.dir, "")?;
                self.sweep("(named before slots)", files, None, group)?;
                lock.remove(&self.dir)?;
            }
        }
        Ok(())
    }

    /// Whether an orphan's output is of our group and topic (else it is left alone).
    fn ours(&mut self, name: &str, header: Option<Header>) -> bool {
        let Some(h) = header else {
            return true; // a slot that died before writing its journal: nothing but its lock
        };
        if h.group == self.header.group && h.topic == self.header.topic {
            return true;
        }
        if !self.foreign.iter().any(|n| n == name) {
            self.foreign.push(name.to_string());
            tracing::warn!(slot = name, group = %h.group, topic = %h.topic, "the output directory holds unfinished output of another group or topic; only a consumer of that group and topic can finish it");
        }
        false
    }

    fn sweep(
        &mut self,
        name: &str,
        files: Vec<PathBuf>,
        state: Option<&State>,
        group: &BTreeMap<i32, i64>,
    ) -> std::io::Result<()> {
        let mut cuts = Cuts::new(Judge {
            state,
            group,
            owned: &[],
            own: false,
        });
        let scratch = self.scratch();
        let (mut kept, mut dropped) = (0, 0);
        for path in &files {
            let r = recover::filter(path, 0, &mut |p, o| cuts.keeps(p, o), &scratch)?;
            (kept, dropped) = (kept + r.kept, dropped + r.dropped);
            finalize(path)?;
        }
        sync_dir(&self.dir)?;
        cuts.warn();
        if files.is_empty() {
            tracing::debug!(slot = name, "removed the slot of a consumer that stopped");
        } else {
            tracing::info!(slot = name, files = files.len(), lines_kept = kept, lines_dropped = dropped, "finalized the output of a consumer that stopped without finishing it (its lines past its last commit are read again by the partitions' new owners)");
        }
        Ok(())
    }
}

/// Takes this process's slot: its instance id's, else one an earlier process left (a crash),
/// else a new one. Also answers the slot's journal and whether its name was made up.
#[allow(clippy::type_complexity)]
fn take_slot(dir: &Path, who: &Identity) -> Result<(Slot, Option<(Header, State)>, bool), Error> {
    let io = |what: &str| Error::io(format!("{what} {}", dir.display()));
    let journal_of = |name: &str| slot::state_dir(dir).join(format!("{name}.journal"));
    if let Some(id) = &who.instance_id {
        let slot = match slot::lock(dir, id) {
            Ok(s) => s,
            Err(Taken::Busy) => {
                return Err(Error::SlotBusy {
                    dir: dir.to_path_buf(),
                    slot: id.clone(),
                })
            }
            Err(Taken::Io(e)) => return Err(io("cannot lock a slot in")(e)),
        };
        let mut old = journal::read(&journal_of(id)).map_err(io("cannot read the journal in"))?;
        if let Some((h, _)) = &old {
            if h.group != who.group || h.topic != who.topic {
                let files = slot::in_progress_files(dir, id).map_err(io("cannot list"))?;
                if !files.is_empty() {
                    return Err(Error::Foreign {
                        dir: dir.to_path_buf(),
                        slot: id.clone(),
                        group: h.group.clone(),
                        topic: h.topic.clone(),
                    });
                }
                old = None;
            }
        }
        return Ok((slot, old, false));
    }
    for name in slot::names(dir).map_err(io("cannot list the slots in"))? {
        let Ok(Some((h, _))) = journal::read(&journal_of(&name)) else {
            continue;
        };
        if !h.generated || h.group != who.group || h.topic != who.topic {
            continue;
        }
        match slot::lock(dir, &name) {
            Ok(slot) => {
                let old =
                    journal::read(&journal_of(&name)).map_err(io("cannot read the journal in"))?;
                return Ok((slot, old, true));
            }
            Err(Taken::Busy) => continue,
            Err(Taken::Io(e)) => return Err(io("cannot lock a slot in")(e)),
        }
    }
    let taken = slot::names(dir).map_err(io("cannot list the slots in"))?;
    loop {
        let name = slot::generated_name();
        if taken.contains(&name) {
            continue;
        }
        match slot::lock(dir, &name) {
            Ok(slot) => return Ok((slot, None, true)),
            Err(Taken::Busy) => continue,
            Err(Taken::Io(e)) => return Err(io("cannot lock a slot in")(e)),
        }
    }
}

/// Each partition's cut, decided once.
struct Cuts<'a> {
    judge: Judge<'a>,
    cache: BTreeMap<i32, Cut>,
    warnings: Vec<String>,
}

impl<'a> Cuts<'a> {
    fn new(judge: Judge<'a>) -> Self {
        Cuts {
            judge,
            cache: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    fn get(&mut self, p: i32) -> Cut {
        if let Some(c) = self.cache.get(&p) {
            return *c;
        }
        let (cut, warning) = self.judge.cut(p);
        self.warnings.extend(warning);
        self.cache.insert(p, cut);
        cut
    }

    fn keeps(&mut self, p: i32, o: i64) -> bool {
        self.get(p).keeps(o)
    }

    fn warn(&self) {
        for w in &self.warnings {
            tracing::warn!("{w}");
        }
    }
}

impl Sink for DirSink {
    fn encoder(&self) -> Arc<dyn Encoder> {
        Arc::new(JsonLines)
    }

    fn reconcile<'a>(
        &'a mut self,
        owned: &'a [i32],
        committed: &'a BTreeMap<i32, i64>,
    ) -> SinkFuture<'a, ()> {
        Box::pin(async move {
            if let Some(earlier) = self.earlier.take() {
                self.reconcile_earlier(earlier, owned, committed)
                    .map_err(Error::io("reconciling the output of an earlier run"))?;
            }
            self.sweep_orphans(committed)
                .map_err(Error::io("finalizing the output of a stopped consumer"))
        })
    }

    /// After the lines an earlier run of this slot left, where they stayed.
    fn resume<'a>(&'a mut self, partitions: &'a [i32]) -> SinkFuture<'a, BTreeMap<i32, i64>> {
        let found = partitions
            .iter()
            .filter_map(|p| self.kept.remove(p).map(|o| (*p, o)))
            .collect();
        Box::pin(async move { Ok(found) })
    }

    fn write(&mut self, batch: &Encoded, range: std::ops::Range<usize>) -> Result<(), Error> {
        for i in range {
            let kind = batch.entries[i].kind;
            self.write_line(kind, batch.get(i))
                .map_err(Error::io("writing output"))?;
        }
        Ok(())
    }

    fn flush<'a>(&'a mut self, next: &'a BTreeMap<i32, i64>) -> SinkFuture<'a, ()> {
        Box::pin(async move {
            self.sync()
                .map_err(Error::io("making output durable (fsync)"))?;
            self.journal
                .pending(next)
                .map_err(Error::io("writing the output's journal"))
        })
    }

    fn committed(&mut self) -> Result<(), Error> {
        self.journal
            .done()
            .map_err(Error::io("writing the output's journal"))?;
        for o in self.open.iter_mut().flatten() {
            o.clean = o.bytes;
        }
        self.finalize_rotated()
            .map_err(Error::io("finalizing rotated output"))
    }

    fn revoke(&mut self, partitions: &[i32]) -> Result<(), Error> {
        // A pending commit that `committed` did not confirm was refused.
        self.journal
            .failed()
            .map_err(Error::io("writing the output's journal"))?;
        let dropped = self
            .drop_tentative(partitions)
            .map_err(Error::io("removing uncommitted output"))?;
        if dropped > 0 {
            tracing::info!(partitions = ?partitions, lines = dropped, "removed the output written past the last commit of partitions given up without a commit; their next reader writes it");
        }
        Ok(())
    }

    fn close(&mut self) -> SinkFuture<'_, ()> {
        Box::pin(async {
            self.sync().map_err(Error::io("closing output"))?;
            for o in self.open.iter_mut() {
                if let Some(o) = o.take() {
                    self.rotated.push(Unfinished {
                        path: o.path,
                        clean: o.clean,
                    });
                }
            }
            self.finalize_rotated().map_err(Error::io("closing output"))
        })
    }
}

/// Renames `x.jsonl.inprogress` to `x.jsonl`; an empty file (all its lines were removed) is
/// deleted instead.
fn finalize(path: &Path) -> std::io::Result<()> {
    if std::fs::metadata(path)?.len() == 0 {
        return std::fs::remove_file(path);
    }
    let s = path.to_string_lossy();
    let finished = PathBuf::from(s.strip_suffix(IN_PROGRESS).unwrap_or(&s));
    std::fs::rename(path, finished)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests;
