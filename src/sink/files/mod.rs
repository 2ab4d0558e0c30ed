//! Rotating JSON-lines files in the output directory, one series per stream:
//! `tweets-20261122T0524-0001.jsonl` and so on. A file being written carries the suffix
//! `.inprogress`, so nothing downstream mistakes it for a finished one. Files rotate when the
//! UTC hour changes and when they reach `--rotate-bytes`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{Timelike, Utc};

pub mod recover;

use crate::sink::Stream;

pub const IN_PROGRESS: &str = ".inprogress";

struct Open {
    writer: BufWriter<File>,
    path: PathBuf,
    bytes: u64,
    /// UTC hours since the epoch when the file was opened.
    hour: i64,
}

pub struct DirSink {
    dir: PathBuf,
    rotate_bytes: u64,
    open: [Option<Open>; 3],
    /// Rotated files, synced but not yet renamed (waiting for the offset commit).
    rotated: Vec<PathBuf>,
    seq: u32,
    /// A file was created since the last sync: the directory entry needs an fsync too.
    dir_dirty: bool,
}

impl DirSink {
    pub fn new(dir: &Path, rotate_bytes: u64) -> Self {
        DirSink {
            dir: dir.to_path_buf(),
            rotate_bytes: rotate_bytes.max(1),
            open: [None, None, None],
            rotated: Vec::new(),
            seq: 0,
            dir_dirty: false,
        }
    }

    pub fn write(&mut self, stream: Stream, line: &[u8]) -> std::io::Result<()> {
        let now = Utc::now();
        let hour = now.timestamp().div_euclid(3600);
        let i = stream.index();
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
            self.open[i] = Some(self.create(stream, now, hour)?);
        }
        let o = self.open[i].as_mut().expect("opened above");
        o.writer.write_all(line)?;
        o.writer.write_all(b"\n")?;
        o.bytes += line.len() as u64 + 1;
        Ok(())
    }

    fn create(
        &mut self,
        stream: Stream,
        now: chrono::DateTime<Utc>,
        hour: i64,
    ) -> std::io::Result<Open> {
        loop {
            self.seq += 1;
            let name = format!(
                "{}-{}T{:02}{:02}-{:04}.jsonl{IN_PROGRESS}",
                stream.name(),
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

    pub fn sync(&mut self) -> std::io::Result<()> {
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

    pub fn finalize_rotated(&mut self) -> std::io::Result<()> {
        if self.rotated.is_empty() {
            return Ok(());
        }
        for path in self.rotated.drain(..) {
            finalize(&path)?;
        }
        sync_dir(&self.dir)
    }

    pub fn close(&mut self) -> std::io::Result<()> {
        self.sync()?;
        for o in self.open.iter_mut() {
            if let Some(o) = o.take() {
                self.rotated.push(o.path);
            }
        }
        self.finalize_rotated()
    }
}

/// Renames `x.jsonl.inprogress` to `x.jsonl`.
pub fn finalize(path: &Path) -> std::io::Result<()> {
    let s = path.to_string_lossy();
    let finished = PathBuf::from(s.strip_suffix(IN_PROGRESS).unwrap_or(&s));
    std::fs::rename(path, finished)
}

pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}
