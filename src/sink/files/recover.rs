//! Start-up recovery of the output directory after a crash.
//!
//! Only `.inprogress` files can hold records past the committed offsets (see the module doc
//! of [`super`]). Each is read back: a torn last line (the process died mid-write) is cut
//! off, and the highest Kafka offset per partition found in the file is returned, so the
//! consumer resumes after what is already written instead of writing it again.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::IN_PROGRESS;
use crate::sink::line::kafka_position;

#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// Highest offset written per partition, over all in-progress files.
    pub(crate) written: BTreeMap<i32, i64>,
    /// The in-progress files found (to be finalized once their offsets are committed).
    pub(crate) files: Vec<PathBuf>,
    /// Files whose torn tail was cut: (file, bytes removed).
    pub(crate) truncated: Vec<(PathBuf, u64)>,
    pub(crate) lines: u64,
}

pub(crate) fn recover(dir: &Path) -> std::io::Result<Recovered> {
    let mut rec = Recovered::default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(IN_PROGRESS))
        .collect();
    files.sort();
    for path in files {
        let mut file = OpenOptions::new().read(true).write(true).open(&path)?;
        let len = file.metadata()?.len();
        let mut reader = BufReader::with_capacity(1 << 20, &mut file);
        let mut line = Vec::new();
        let mut good: u64 = 0;
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 || line.last() != Some(&b'\n') {
                break;
            }
            good += n as u64;
            rec.lines += 1;
            if let Some((p, o)) = kafka_position(&line) {
                let e = rec.written.entry(p).or_insert(o);
                *e = (*e).max(o);
            }
        }
        drop(reader);
        if good < len {
            file.set_len(good)?;
            file.seek(SeekFrom::Start(good))?;
            file.sync_all()?;
            rec.truncated.push((path.clone(), len - good));
        }
        rec.files.push(path);
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_tail_is_cut_and_offsets_found() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join(format!("tweets-x.jsonl{IN_PROGRESS}"));
        std::fs::write(
            &f,
            b"{\"id\":\"1\",\"kafka\":{\"partition\":0,\"offset\":7}}\n{\"id\":\"2\",\"kafka\":{\"partition\":1,\"offset\":3}}\n{\"id\":\"3\",\"ka",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("tweets-done.jsonl"),
            b"{\"kafka\":{\"partition\":0,\"offset\":99}}\n",
        )
        .unwrap();
        let rec = recover(dir.path()).unwrap();
        assert_eq!(rec.written, BTreeMap::from([(0, 7), (1, 3)]));
        assert_eq!(rec.truncated.len(), 1);
        assert_eq!(rec.truncated[0].1, 13, "the torn tail is 13 bytes");
        assert_eq!(rec.lines, 2);
        assert!(std::fs::read(&f).unwrap().ends_with(b"}}\n"));
    }
}
