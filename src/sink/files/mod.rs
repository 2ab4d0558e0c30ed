//! Rotating JSON-lines files in the output directory, one series per kind of record:
//! `tweets-20261122T0524-0001.jsonl` and so on. A file being written carries the suffix
//! `.inprogress`, so nothing downstream mistakes it for a finished one. Files rotate when the
//! UTC hour changes and when they reach the rotation size.
//!
//! Durability: [`Sink::flush`] fsyncs every open file (and the directory when a file was
//! created); a rotated file is renamed to its final name only after the offsets covering it
//! were committed ([`Sink::committed`]). So a file without `.inprogress` never holds a record
//! beyond the committed offsets. After a crash only `.inprogress` files can: [`recover`] finds
//! those records when the sink opens, and [`Sink::resume`] has the consumer start after them
//! instead of writing them twice.

pub(crate) mod recover;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Timelike, Utc};

use super::line::{self, JsonLines};
use super::{Encoded, Encoder, Error, Kind, Sink, SinkFuture};

pub(crate) const IN_PROGRESS: &str = ".inprogress";

struct Open {
    writer: BufWriter<File>,
    path: PathBuf,
    bytes: u64,
    /// UTC hours since the epoch when the file was opened.
    hour: i64,
}

pub(crate) struct DirSink {
    dir: PathBuf,
    rotate_bytes: u64,
    open: [Option<Open>; 3],
    /// Rotated files (and those an earlier run left), synced but not yet renamed: waiting for
    /// the offset commit.
    rotated: Vec<PathBuf>,
    /// Highest offset per partition in the files an earlier run left in progress.
    recovered: BTreeMap<i32, i64>,
    seq: u32,
    /// A file was created since the last sync: the directory entry needs an fsync too.
    dir_dirty: bool,
}

impl DirSink {
    /// Opens the output directory (creating it), and recovers what an earlier run left.
    pub(crate) fn open(dir: &Path, rotate_bytes: u64) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(Error::io(format!(
            "cannot create the output directory {}",
            dir.display()
        )))?;
        let rec = recover::recover(dir).map_err(Error::io(format!(
            "cannot recover the output directory {}",
            dir.display()
        )))?;
        for (file, cut) in &rec.truncated {
            tracing::warn!(file = %file.display(), bytes = cut, "cut a torn last line left by a crash");
        }
        if !rec.files.is_empty() {
            tracing::info!(files = rec.files.len(), lines = rec.lines, written = ?rec.written, "found output of an earlier run past its last commit");
        }
        Ok(DirSink {
            dir: dir.to_path_buf(),
            rotate_bytes: rotate_bytes.max(1),
            open: [None, None, None],
            rotated: rec.files,
            recovered: rec.written,
            seq: 0,
            dir_dirty: false,
        })
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
            self.rotated.push(o.path);
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
        loop {
            self.seq += 1;
            let name = format!(
                "{}-{}T{:02}{:02}-{:04}.jsonl{IN_PROGRESS}",
                line::series(kind),
                now.format("%Y%m%d"),
                now.hour(),
                now.minute(),
                self.seq
            );
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
        for path in self.rotated.drain(..) {
            finalize(&path)?;
        }
        sync_dir(&self.dir)
    }
}

impl Sink for DirSink {
    fn encoder(&self) -> Arc<dyn Encoder> {
        Arc::new(JsonLines)
    }

    /// After the last line an earlier run wrote, where the files show one.
    fn resume<'a>(&'a mut self, partitions: &'a [i32]) -> SinkFuture<'a, BTreeMap<i32, i64>> {
        let found = partitions
            .iter()
            .filter_map(|p| self.recovered.get(p).map(|o| (*p, o + 1)))
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

    fn flush<'a>(&'a mut self, _: &'a BTreeMap<i32, i64>) -> SinkFuture<'a, ()> {
        Box::pin(async {
            self.sync()
                .map_err(Error::io("making output durable (fsync)"))
        })
    }

    fn committed(&mut self) -> Result<(), Error> {
        self.finalize_rotated()
            .map_err(Error::io("finalizing rotated output"))
    }

    fn close(&mut self) -> SinkFuture<'_, ()> {
        Box::pin(async {
            self.sync().map_err(Error::io("closing output"))?;
            for o in self.open.iter_mut() {
                if let Some(o) = o.take() {
                    self.rotated.push(o.path);
                }
            }
            self.finalize_rotated().map_err(Error::io("closing output"))
        })
    }
}

/// Renames `x.jsonl.inprogress` to `x.jsonl`.
fn finalize(path: &Path) -> std::io::Result<()> {
    let s = path.to_string_lossy();
    let finished = PathBuf::from(s.strip_suffix(IN_PROGRESS).unwrap_or(&s));
    std::fs::rename(path, finished)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}
