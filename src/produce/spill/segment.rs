//! The on-disk format of a spill segment, and reading one back. Pure functions over bytes,
//! so the reader can be fuzzed and tested without a file system.
//!
//! A segment is the 8-byte magic `TPSPILL1`, then records, each:
//!
//! ```text
//! u32 LE  body length N
//! u32 LE  CRC-32C of the body
//! body:   i64 LE  receive time, microseconds since the Unix epoch
//!         i32 LE  key length, -1 for no key
//!         key bytes, then the value (the rest of the body)
//! ```
//!
//! Why: a crash mid-write leaves a record cut short, and a disk can return garbage; the
//! length says where a record should end and the checksum says whether what is there is what
//! was written. Reading stops at the first record that fails either check and reports its byte
//! offset; everything before it is intact. CRC-32C because it is what Kafka's record batches
//! use (the same crate rskafka uses), and fast.

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::produce::record::RawRecord;

pub const MAGIC: &[u8; 8] = b"TPSPILL1";

/// Framing bytes before a record's body.
pub(crate) const RECORD_HEADER: usize = 8;

/// Body bytes before the key.
const BODY_HEADER: usize = 12;

/// A body longer than this is not something we wrote (records are bounded by
/// `--max-record-bytes`, at most a few MiB): the length field itself is corrupt.
pub(crate) const MAX_BODY: usize = 256 * 1024 * 1024;

/// Bytes `record` takes in a segment.
pub(crate) fn encoded_len(record: &RawRecord) -> usize {
    RECORD_HEADER + BODY_HEADER + record.key.as_ref().map_or(0, Bytes::len) + record.value.len()
}

/// Appends `record`, framed, to `out`.
pub(crate) fn encode(record: &RawRecord, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; RECORD_HEADER]);
    out.extend_from_slice(&record.timestamp.timestamp_micros().to_le_bytes());
    match &record.key {
        Some(k) => {
            out.extend_from_slice(&(k.len() as i32).to_le_bytes());
            out.extend_from_slice(k);
        }
        None => out.extend_from_slice(&(-1i32).to_le_bytes()),
    }
    out.extend_from_slice(&record.value);
    let body = &out[start + RECORD_HEADER..];
    let len = body.len() as u32;
    let crc = crc32c::crc32c(body);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What reading a segment found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub records: Vec<RawRecord>,
    /// Bytes of the segment that hold intact records (magic included).
    pub valid_len: usize,
    /// The first thing wrong, if anything: reading stopped there.
    pub problem: Option<Corruption>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Corruption {
    /// Byte offset in the segment where the bad record starts.
    pub offset: usize,
    pub reason: String,
}

/// Reads every intact record of a segment. Never panics, whatever `data` holds.
pub(crate) fn decode(data: Bytes) -> Scan {
    let mut scan = Scan::default();
    if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
        // An empty file is a segment created just before a crash: nothing lost.
        if !data.is_empty() {
            scan.problem = Some(Corruption {
                offset: 0,
                reason: "not a tweetpipe spill segment (no TPSPILL1 header)".into(),
            });
        }
        return scan;
    }
    let mut at = MAGIC.len();
    scan.valid_len = at;
    while at < data.len() {
        match decode_one(&data, at) {
            Ok((record, next)) => {
                scan.records.push(record);
                at = next;
                scan.valid_len = at;
            }
            Err(reason) => {
                scan.problem = Some(Corruption { offset: at, reason });
                break;
            }
        }
    }
    scan
}

fn decode_one(data: &Bytes, at: usize) -> Result<(RawRecord, usize), String> {
    let left = data.len() - at;
    if left < RECORD_HEADER {
        return Err(format!(
            "torn record: {left} bytes where a record header needs {RECORD_HEADER}"
        ));
    }
    let u32_at = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
    let len = u32_at(at) as usize;
    let crc = u32_at(at + 4);
    if !(BODY_HEADER..=MAX_BODY).contains(&len) {
        return Err(format!("record length {len} is impossible"));
    }
    let body_at = at + RECORD_HEADER;
    if data.len() - body_at < len {
        return Err(format!(
            "torn record: {} of its {len} bytes are there",
            data.len() - body_at
        ));
    }
    let body = &data[body_at..body_at + len];
    let actual = crc32c::crc32c(body);
    if actual != crc {
        return Err(format!(
            "checksum mismatch (stored {crc:08x}, computed {actual:08x})"
        ));
    }
    let micros = i64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
    let key_len = i32::from_le_bytes(body[8..12].try_into().expect("4 bytes"));
    let key_at = body_at + BODY_HEADER;
    let (key, value_at) = match key_len {
        -1 => (None, key_at),
        n if n >= 0 && (n as usize) <= len - BODY_HEADER => {
            let n = n as usize;
            (Some(data.slice(key_at..key_at + n)), key_at + n)
        }
        n => return Err(format!("key length {n} does not fit the record")),
    };
    let received = DateTime::<Utc>::from_timestamp_micros(micros)
        .ok_or_else(|| format!("timestamp {micros} µs is out of range"))?;
    Ok((
        RawRecord::new(key, data.slice(value_at..body_at + len), received, None),
        body_at + len,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: Option<&str>, value: &str, micros: i64) -> RawRecord {
        RawRecord::new(
            key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            Bytes::copy_from_slice(value.as_bytes()),
            DateTime::<Utc>::from_timestamp_micros(micros).unwrap(),
            None,
        )
    }

    fn segment(records: &[RawRecord]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for r in records {
            let before = out.len();
            encode(r, &mut out);
            assert_eq!(out.len() - before, encoded_len(r));
        }
        out
    }

    fn same(a: &RawRecord, b: &RawRecord) -> bool {
        a.key == b.key && a.value == b.value && a.timestamp == b.timestamp
    }

    #[test]
    fn round_trip() {
        let records = [
            record(Some("1234"), "{\"id_str\":\"1234\"}", 1_700_000_000_123_456),
            record(None, "{\"delete\":{}}", 0),
            record(Some(""), "", -5),
        ];
        let scan = decode(Bytes::from(segment(&records)));
        assert!(scan.problem.is_none(), "{:?}", scan.problem);
        assert_eq!(scan.records.len(), 3);
        for (a, b) in scan.records.iter().zip(&records) {
            assert!(same(a, b), "{a:?} != {b:?}");
        }
    }

    /// A crash mid-write: every cut keeps exactly the records wholly before it, and reports
    /// the offset where the torn one starts.
    #[test]
    fn a_torn_tail_keeps_the_valid_prefix_at_every_cut() {
        let records: Vec<_> = (0..4)
            .map(|i| record(Some(&i.to_string()), &"x".repeat(10 + i * 7), i as i64))
            .collect();
        let full = segment(&records);
        let mut ends = vec![MAGIC.len()];
        for r in &records {
            ends.push(ends.last().unwrap() + encoded_len(r));
        }
        for cut in MAGIC.len()..full.len() {
            let scan = decode(Bytes::copy_from_slice(&full[..cut]));
            let whole = ends.iter().filter(|&&e| e <= cut).count() - 1;
            assert_eq!(scan.records.len(), whole, "cut at {cut}");
            assert_eq!(scan.valid_len, ends[whole], "cut at {cut}");
            let torn = cut != ends[whole];
            assert_eq!(scan.problem.is_some(), torn, "cut at {cut}");
            if let Some(p) = scan.problem {
                assert_eq!(p.offset, ends[whole]);
                assert!(p.reason.contains("torn"), "{}", p.reason);
            }
        }
    }

    #[test]
    fn a_flipped_bit_is_caught_by_the_checksum() {
        let records = [record(Some("1"), "hello", 1), record(Some("2"), "world", 2)];
        let full = segment(&records);
        let second = MAGIC.len() + encoded_len(&records[0]);
        for i in second + RECORD_HEADER..full.len() {
            let mut bad = full.clone();
            bad[i] ^= 0x10;
            let scan = decode(Bytes::from(bad));
            assert_eq!(scan.records.len(), 1, "byte {i}");
            let p = scan.problem.expect("detected");
            assert_eq!(p.offset, second);
            assert!(p.reason.contains("checksum"), "{}", p.reason);
        }
    }

    #[test]
    fn garbage_and_empty_files() {
        assert!(decode(Bytes::new()).problem.is_none());
        let scan = decode(Bytes::from_static(b"hello world, not a segment"));
        assert_eq!(scan.problem.unwrap().offset, 0);
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 12]);
        let scan = decode(Bytes::from(huge));
        assert!(scan.problem.unwrap().reason.contains("impossible"));
    }
}
