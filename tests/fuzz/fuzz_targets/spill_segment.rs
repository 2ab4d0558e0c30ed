//! The disk spill's segment reader (`src/produce/spill/segment.rs`), on any file content: what a crash
//! mid-write, a bad disk or a stray file can leave in the spill directory.
//!
//! The first input byte chooses whether the `TPSPILL1` header is put in front of the rest
//! (so most inputs get past it to the records); `scripts/fuzz` seeds the corpus with real
//! segments of sample tweets.
//!
//! Checks:
//! - no panic, and no allocation beyond the input (records are slices of it);
//! - the valid prefix is a prefix: `valid_len` never exceeds the input, and reading stopped
//!   exactly there when a problem is reported (its offset is `valid_len`), or at the end;
//! - encoding the records read reproduces the valid prefix byte for byte (the reader accepts
//!   exactly what the writer writes, nothing more);
//! - reading the valid prefix alone gives the same records and no problem.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tweetpipe::testing::spill as segment;

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let mut data = Vec::with_capacity(rest.len() + segment::MAGIC.len());
    if mode & 1 == 1 {
        data.extend_from_slice(segment::MAGIC);
    }
    data.extend_from_slice(rest);
    let data = Bytes::from(data);

    let scan = segment::decode(data.clone());
    assert!(scan.valid_len <= data.len());
    match &scan.problem {
        Some(p) => assert_eq!(p.0, scan.valid_len, "{p:?}"),
        None => assert!(
            scan.valid_len == data.len() || data.is_empty(),
            "no problem reported, yet {} of {} bytes read",
            scan.valid_len,
            data.len()
        ),
    }
    if scan.valid_len >= segment::MAGIC.len() {
        let mut again = segment::MAGIC.to_vec();
        for r in &scan.records {
            segment::encode(r, &mut again);
        }
        assert_eq!(&again[..], &data[..scan.valid_len], "re-encoding differs");

        let prefix = segment::decode(data.slice(..scan.valid_len));
        assert!(prefix.problem.is_none(), "{:?}", prefix.problem);
        assert_eq!(prefix.records.len(), scan.records.len());
    } else {
        assert!(scan.records.is_empty());
    }
});
