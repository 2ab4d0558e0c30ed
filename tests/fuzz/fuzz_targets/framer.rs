//! The stream framer (`src/source/framer.rs`), all three framings, fed in arbitrary pieces.
//!
//! Input layout (see `scripts/fuzz`, which writes seeds in it):
//! - byte 0: the framing (`% 3`: CRLF, `delimited=length`, newline);
//! - byte 1: `max_record_bytes`, 1..=64, small so that oversized records are common;
//! - byte 2: how many piece lengths follow (`% 16`; 0 means "one piece");
//! - that many bytes: piece lengths (low 7 bits, 0 allowed) and how each piece is pushed
//!   (high bit: `push_bytes`, else `push`), used in turn, cycling, until the stream is used up;
//! - the rest: the stream itself.
//!
//! Checks:
//! - no panic;
//! - after every push, `buffered()` stays within a bound set by `max_record_bytes` (or the
//!   longest length line, for `delimited=length`): one absurd line must never be buffered;
//! - differential: the frames, and the error if any, are exactly those of pushing the whole
//!   stream at once, with `push` or with `push_bytes`;
//! - every record is non-blank, within `max_record_bytes` (plus the `\r\n` a length-delimited
//!   body may leave in), and holds no terminator of its framing; every `Oversized(n)` is over it.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tweetpipe::testing::{Frame, FrameError, Framer, Framing};

/// The longest `delimited=length` length line the framer holds before calling it garbage
/// (its `MAX_LENGTH_LINE`), plus a `\r` that may be waiting for its `\n`.
const LENGTH_LINE_BOUND: usize = 25;

fn framing_of(b: u8) -> Framing {
    match b % 3 {
        0 => Framing::Crlf,
        1 => Framing::Length,
        _ => Framing::Newline,
    }
}

/// Frames of the whole stream pushed at once; stops at the first error, as the caller does.
fn at_once(
    framing: Framing,
    max: usize,
    stream: &[u8],
    as_bytes: bool,
) -> (Vec<Frame>, Option<FrameError>) {
    let mut f = Framer::new(framing, max);
    let mut out = Vec::new();
    let r = if as_bytes {
        f.push_bytes(Bytes::copy_from_slice(stream), &mut out)
    } else {
        f.push(stream, &mut out)
    };
    (out, r.err())
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let framing = framing_of(data[0]);
    let max = 1 + (data[1] as usize % 64);
    let n = data[2] as usize % 16;
    if data.len() < 3 + n {
        return;
    }
    let mut pieces: &[u8] = &data[3..3 + n];
    let stream = &data[3 + n..];
    // Empty pieces are pushed too, but a cycle of nothing but those would never end.
    if pieces.iter().all(|p| p & 0x7f == 0) {
        pieces = &[];
    }
    let n = pieces.len();

    let bound = match framing {
        Framing::Length => (max + 2).max(LENGTH_LINE_BOUND),
        Framing::Crlf | Framing::Newline => max + 2,
    };

    let mut f = Framer::new(framing, max);
    let mut out = Vec::new();
    let mut err = None;
    let mut at = 0;
    let mut i = 0;
    while at < stream.len() {
        let (len, as_bytes) = match pieces.get(i % n.max(1)) {
            Some(&p) => ((p & 0x7f) as usize, p & 0x80 != 0),
            None => (stream.len(), data[0] & 0x80 != 0),
        };
        i += 1;
        let end = (at + len).min(stream.len());
        let piece = &stream[at..end];
        at = end;
        let r = if as_bytes {
            f.push_bytes(Bytes::copy_from_slice(piece), &mut out)
        } else {
            f.push(piece, &mut out)
        };
        if let Err(e) = r {
            err = Some(e);
            break;
        }
        assert!(
            f.buffered() <= bound,
            "{framing:?} max {max}: buffered {} > {bound}",
            f.buffered()
        );
    }

    for frame in &out {
        match frame {
            Frame::Record(r) => {
                assert!(!r.iter().all(u8::is_ascii_whitespace), "blank record {r:?}");
                let limit = if framing == Framing::Length {
                    max + 2
                } else {
                    max
                };
                assert!(r.len() <= limit, "record of {} bytes, max {max}", r.len());
                match framing {
                    Framing::Newline => assert!(!r.contains(&b'\n'), "newline in {r:?}"),
                    Framing::Crlf => {
                        assert!(!r.windows(2).any(|w| w == b"\r\n"), "CRLF in {r:?}")
                    }
                    Framing::Length => {}
                }
            }
            Frame::Oversized(n) => assert!(*n > max, "Oversized({n}) with max {max}"),
            Frame::KeepAlive => {}
        }
    }

    let got = (out, err);
    let whole = at_once(framing, max, stream, false);
    assert_eq!(got, whole, "{framing:?} max {max}: pieces vs push at once");
    let whole_bytes = at_once(framing, max, stream, true);
    assert_eq!(
        whole_bytes, whole,
        "{framing:?} max {max}: push_bytes vs push at once"
    );
});
