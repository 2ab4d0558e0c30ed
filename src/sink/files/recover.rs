//! Removing lines from an unfinished output file: a torn last line left by a crash, and the
//! lines that reconciliation says must go ([`super::reconcile`]).
//!
//! Only what must go is removed, and a crash at any moment leaves either the old file or the
//! new one: when everything after the first line to drop goes, the file is truncated there
//! (only lines that must go are lost if that is interrupted); otherwise the file is rebuilt in
//! a scratch file (the kept head copied, then the kept lines of the rest) that is fsynced and
//! renamed over it.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::sink::line::kafka_position;

/// What [`filter`] did to a file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Filtered {
    /// Highest offset per partition among the kept lines it read.
    pub(crate) kept_max: BTreeMap<i32, i64>,
    pub(crate) kept: u64,
    pub(crate) dropped: u64,
    /// Bytes of a torn last line cut off.
    pub(crate) torn: u64,
    /// The file's length afterwards.
    pub(crate) len: u64,
}

/// Reads `path` from byte `from` on (the lines before it are known to stay), cuts a torn
/// last line, and removes every line for which `keep(partition, offset)` is false. `scratch`
/// is a path on the same file system for the rebuilt file.
pub(crate) fn filter(
    path: &Path,
    from: u64,
    keep: &mut dyn FnMut(i32, i64) -> bool,
    scratch: &Path,
) -> std::io::Result<Filtered> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let from = from.min(len);
    let scan = scan(&mut file, from, keep)?;
    let mut out = scan.filtered;
    out.torn = len - scan.good_end;
    let Some(first_drop) = scan.first_drop else {
        if out.torn > 0 {
            truncate(&file, scan.good_end)?;
        }
        out.len = scan.good_end;
        return Ok(out);
    };
    if !scan.after_first_drop.iter().any(|k| *k) {
        truncate(&file, first_drop)?;
        out.len = first_drop;
        return Ok(out);
    }
    out.len = rebuild(&mut file, path, first_drop, &scan.after_first_drop, scratch)?;
    Ok(out)
}

struct Scan {
    filtered: Filtered,
    /// End of the last complete line.
    good_end: u64,
    first_drop: Option<u64>,
    /// From the first line to drop on: whether each line stays.
    after_first_drop: Vec<bool>,
}

fn scan(
    file: &mut File,
    from: u64,
    keep: &mut dyn FnMut(i32, i64) -> bool,
) -> std::io::Result<Scan> {
    file.seek(SeekFrom::Start(from))?;
    let mut reader = BufReader::with_capacity(1 << 20, &mut *file);
    let mut s = Scan {
        filtered: Filtered::default(),
        good_end: from,
        first_drop: None,
        after_first_drop: Vec::new(),
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        let stays = match kafka_position(&line) {
            Some((p, o)) if !keep(p, o) => false,
            Some((p, o)) => {
                let m = s.filtered.kept_max.entry(p).or_insert(o);
                *m = (*m).max(o);
                true
            }
            None => true, // not a line of ours; never ours to drop
        };
        if stays {
            s.filtered.kept += 1;
        } else {
            s.filtered.dropped += 1;
            s.first_drop.get_or_insert(s.good_end);
        }
        if s.first_drop.is_some() {
            s.after_first_drop.push(stays);
        }
        s.good_end += n as u64;
    }
    Ok(s)
}

fn truncate(file: &File, len: u64) -> std::io::Result<()> {
    file.set_len(len)?;
    file.sync_all()
}

/// Writes the head `[0, first_drop)` and the kept lines after it to `scratch`, then renames
/// it over `path`; the new length.
fn rebuild(
    file: &mut File,
    path: &Path,
    first_drop: u64,
    stays: &[bool],
    scratch: &Path,
) -> std::io::Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(scratch)?);
    file.seek(SeekFrom::Start(0))?;
    // (Linux copies the head inside the kernel: copy_file_range.)
    std::io::copy(&mut (&mut *file).take(first_drop), out.get_mut())?;
    let mut len = first_drop;
    let mut reader = BufReader::with_capacity(1 << 20, &mut *file);
    let mut line = Vec::new();
    for &stay in stays {
        line.clear();
        reader.read_until(b'\n', &mut line)?;
        if stay {
            out.write_all(&line)?;
            len += line.len() as u64;
        }
    }
    let out = out.into_inner().map_err(|e| e.into_error())?;
    out.sync_all()?;
    std::fs::rename(scratch, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(p: i32, o: i64) -> String {
        format!("{{\"id\":\"{p}-{o}\",\"kafka\":{{\"partition\":{p},\"offset\":{o}}}}}\n")
    }

    fn positions(path: &Path) -> Vec<(i32, i64)> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| kafka_position(l.as_bytes()).unwrap())
            .collect()
    }

    #[test]
    fn a_torn_tail_is_cut_and_nothing_else_changes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a");
        std::fs::write(
            &f,
            format!("{}{}{{\"id\":\"3\",\"ka", line(0, 7), line(1, 3)),
        )
        .unwrap();
        let r = filter(&f, 0, &mut |_, _| true, &dir.path().join("s")).unwrap();
        assert_eq!(r.torn, 13);
        assert_eq!(r.kept, 2);
        assert_eq!(r.kept_max, BTreeMap::from([(0, 7), (1, 3)]));
        assert_eq!(positions(&f), vec![(0, 7), (1, 3)]);
        assert_eq!(r.len, std::fs::metadata(&f).unwrap().len());
    }

    #[test]
    fn lines_to_drop_at_the_end_are_truncated_away() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a");
        let all: String = [line(0, 1), line(1, 1), line(0, 2), line(1, 2)].concat();
        std::fs::write(&f, &all).unwrap();
        let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&f).unwrap());
        let r = filter(&f, 0, &mut |_, o| o < 2, &dir.path().join("s")).unwrap();
        assert_eq!((r.kept, r.dropped), (2, 2));
        assert_eq!(positions(&f), vec![(0, 1), (1, 1)]);
        let same = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&f).unwrap());
        assert_eq!(ino, same, "truncated in place");
    }

    #[test]
    fn lines_to_drop_among_lines_that_stay_are_removed_by_a_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a");
        let all: String = [line(0, 1), line(1, 1), line(0, 2), line(1, 2), line(0, 3)].concat();
        std::fs::write(&f, &all).unwrap();
        let head = line(0, 1).len() as u64;
        // Partition 1's lines from offset 1 go; partition 0's all stay.
        let r = filter(&f, head, &mut |p, _| p != 1, &dir.path().join("s")).unwrap();
        assert_eq!((r.kept, r.dropped), (2, 2));
        assert_eq!(positions(&f), vec![(0, 1), (0, 2), (0, 3)]);
        assert_eq!(r.kept_max, BTreeMap::from([(0, 3)]), "only what it read");
        assert!(!dir.path().join("s").exists());
        assert_eq!(r.len, std::fs::metadata(&f).unwrap().len());
    }
}
