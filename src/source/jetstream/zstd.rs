//! Jetstream's compressed frames: with `compress=true`, every binary WebSocket message is one
//! zstd frame made with Jetstream's own dictionary (bundled in `dictionary/`, with its licence).
//!
//! Decoded in pure Rust with `ruzstd` (no C zstd in the binary). What this file adds around it:
//! - **Bounded output.** A frame never decodes to more than `--max-record-bytes`: the content
//!   size and window its header declares are checked before decoding, and the decoder writes
//!   into a buffer of exactly that size, so a hostile or broken frame cannot make us allocate
//!   more (a "zip bomb" stops at the limit and is reported as oversized).
//! - **Checked content.** `ruzstd` reads the frame's checksum but does not compare it; we do,
//!   so a damaged frame is an error here instead of wrong JSON further on.
//! - **Cheap values.** Decoded events are copied into shared 64 KiB chunks and handed out as
//!   `Bytes` slices of them: one allocation per chunk, not per event.
//!
//! Cost: `ruzstd` copies the dictionary's content (about 100 KiB) into its window for every
//! frame, which is most of the time spent here; see `docs/performance.md` for the figure.

use bytes::{Bytes, BytesMut};
use ruzstd::decoding::dictionary::Dictionary;
use ruzstd::frame_decoder::FrameDecoderError;
use ruzstd::FrameDecoder;

/// Jetstream's `/subscribe` dictionary, as its repository ships it.
pub(crate) const DICTIONARY: &[u8] = include_bytes!("dictionary/legacy_subscribe.zdict");
/// The id written in that dictionary and in every frame made with it.
pub(crate) const DICTIONARY_ID: u32 = 1_612_007_021;

/// Largest window a frame may declare. Jetstream uses 128 KiB; the decoder keeps up to a window
/// of output in memory while a frame is unfinished, so this bounds memory as well.
const MAX_WINDOW: u64 = 8 << 20;
/// Decoded events are carved out of chunks of this size.
const CHUNK: usize = 64 * 1024;
const MAGIC: u32 = 0xFD2F_B528;

/// Why a frame could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    /// It decodes to more than the limit (`declared`: the size its header gives, if any).
    #[error("decodes to more than {limit} bytes{}", declared.map(|d| format!(" ({d} declared)")).unwrap_or_default())]
    TooLarge { limit: usize, declared: Option<u64> },
    /// Not a zstd frame made with Jetstream's dictionary, or damaged.
    #[error("not a valid zstd frame: {0}")]
    Corrupt(String),
}

/// Decodes Jetstream's frames; one per connection reader (it keeps the decoder's tables).
pub(crate) struct Decompressor {
    decoder: FrameDecoder,
    /// Exactly `limit` bytes long: the decoder fails rather than write past it.
    out: Vec<u8>,
    chunk: BytesMut,
    limit: usize,
}

impl Decompressor {
    /// A decompressor whose frames decode to at most `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        let mut decoder = FrameDecoder::new();
        let dict = Dictionary::decode_dict(DICTIONARY).expect("the bundled dictionary is valid");
        decoder.add_dict(dict).expect("one dictionary, added once");
        Decompressor {
            decoder,
            out: vec![0; limit],
            chunk: BytesMut::new(),
            limit,
        }
    }

    /// The event in `frame`, decompressed.
    pub(crate) fn decompress(&mut self, frame: &[u8]) -> Result<Bytes, DecodeError> {
        let header = Header::parse(frame)?;
        if let Some(id) = header.dictionary_id {
            if id != DICTIONARY_ID {
                return Err(DecodeError::Corrupt(format!(
                    "made with zstd dictionary {id}, not Jetstream's ({DICTIONARY_ID})"
                )));
            }
        }
        if let Some(size) = header.content_size {
            if size > self.limit as u64 {
                return Err(DecodeError::TooLarge {
                    limit: self.limit,
                    declared: Some(size),
                });
            }
        }
        if header.window > MAX_WINDOW {
            return Err(DecodeError::Corrupt(format!(
                "declares a {}-byte window, more than the {MAX_WINDOW} accepted",
                header.window
            )));
        }
        let n = match self.decoder.decode_all(frame, &mut self.out) {
            Ok(n) => n,
            Err(FrameDecoderError::TargetTooSmall) => {
                return Err(DecodeError::TooLarge {
                    limit: self.limit,
                    declared: None,
                })
            }
            Err(e) => return Err(DecodeError::Corrupt(e.to_string())),
        };
        if header.checksum {
            let sent = self.decoder.get_checksum_from_data();
            let computed = self.decoder.get_calculated_checksum();
            if sent != computed {
                return Err(DecodeError::Corrupt(format!(
                    "checksum mismatch (frame says {sent:08x?}, content gives {computed:08x?})"
                )));
            }
        }
        if self.chunk.capacity() - self.chunk.len() < n {
            self.chunk = BytesMut::with_capacity(CHUNK.max(n));
        }
        self.chunk.extend_from_slice(&self.out[..n]);
        Ok(self.chunk.split().freeze())
    }
}

/// The parts of a zstd frame header (RFC 8878, 3.1.1.1) checked before decoding.
#[derive(Debug, PartialEq, Eq)]
struct Header {
    window: u64,
    dictionary_id: Option<u32>,
    content_size: Option<u64>,
    checksum: bool,
}

impl Header {
    fn parse(b: &[u8]) -> Result<Header, DecodeError> {
        let short = || DecodeError::Corrupt(format!("{} bytes, too short for a frame", b.len()));
        if b.len() < 6 {
            return Err(short());
        }
        let magic = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if magic != MAGIC {
            return Err(DecodeError::Corrupt(format!(
                "starts with {magic:#010x}, not the zstd magic number"
            )));
        }
        let descriptor = b[4];
        let fcs_flag = descriptor >> 6;
        let single_segment = descriptor & 0x20 != 0;
        if descriptor & 0x08 != 0 {
            return Err(DecodeError::Corrupt("reserved header bit set".into()));
        }
        let mut at = 5;
        let mut window = 0;
        if !single_segment {
            let w = b[at];
            at += 1;
            let log = 10 + u64::from(w >> 3);
            let base = 1u64 << log;
            window = base + (base / 8) * u64::from(w & 7);
        }
        let dict_len = [0, 1, 2, 4][usize::from(descriptor & 3)];
        let fcs_len = match fcs_flag {
            0 if single_segment => 1,
            0 => 0,
            1 => 2,
            2 => 4,
            _ => 8,
        };
        let field = |at: usize, len: usize| -> Result<u64, DecodeError> {
            let bytes = b.get(at..at + len).ok_or_else(short)?;
            Ok(bytes
                .iter()
                .rev()
                .fold(0u64, |v, &byte| (v << 8) | u64::from(byte)))
        };
        let dictionary_id = match dict_len {
            0 => None,
            n => Some(field(at, n)? as u32).filter(|&id| id != 0),
        };
        at += dict_len;
        let content_size = match fcs_len {
            0 => None,
            2 => Some(field(at, 2)? + 256),
            n => Some(field(at, n)?),
        };
        if single_segment {
            window = content_size.unwrap_or(0);
        }
        Ok(Header {
            window,
            dictionary_id,
            content_size,
            checksum: descriptor & 0x04 != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 152 real events, each compressed on its own with Jetstream's dictionary by the
    /// reference `zstd` (1.5), as `[u32 LE length][frame]…` (see tests/data/jetstream/).
    pub(crate) fn real_frames() -> Vec<Vec<u8>> {
        let b = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/jetstream/frames.bin"),
        )
        .expect("tests/data/jetstream/frames.bin");
        let mut frames = Vec::new();
        let mut at = 0;
        while at < b.len() {
            let n = u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
            frames.push(b[at + 4..at + 4 + n].to_vec());
            at += 4 + n;
        }
        frames
    }

    fn real_events() -> Vec<Vec<u8>> {
        let text = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/jetstream/events_v1.jsonl"),
        )
        .unwrap();
        text.split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    }

    #[test]
    fn decodes_real_frames_to_the_events() {
        let frames = real_frames();
        let events = real_events();
        assert_eq!(frames.len(), 152);
        let mut d = Decompressor::new(1 << 20);
        for (frame, event) in frames.iter().zip(&events) {
            let h = Header::parse(frame).unwrap();
            assert_eq!(h.dictionary_id, Some(DICTIONARY_ID));
            assert_eq!(d.decompress(frame).unwrap(), &event[..]);
        }
    }

    #[test]
    fn limit_is_enforced_declared_or_not() {
        let frames = real_frames();
        let events = real_events();
        let (i, longest) = events
            .iter()
            .enumerate()
            .max_by_key(|(_, e)| e.len())
            .unwrap();
        let mut d = Decompressor::new(longest.len() - 1);
        let err = d.decompress(&frames[i]).unwrap_err();
        assert!(matches!(err, DecodeError::TooLarge { .. }), "{err:?}");
        // Exactly at the limit is fine, and the decoder is usable after a refusal.
        let mut d = Decompressor::new(longest.len());
        assert_eq!(d.decompress(&frames[i]).unwrap(), &longest[..]);
    }

    #[test]
    fn damaged_frames_are_errors_not_garbage() {
        let frames = real_frames();
        let mut d = Decompressor::new(1 << 20);
        let f = &frames[1];
        for bad in [
            Vec::new(),
            b"{\"did\":\"x\"}".to_vec(),
            f[..f.len() / 2].to_vec(),
            {
                // A flipped bit in the body: a decoding error or a checksum mismatch.
                let mut v = f.clone();
                let at = v.len() - 10;
                v[at] ^= 0x40;
                v
            },
            {
                // Trailing garbage after the frame.
                let mut v = f.clone();
                v.extend_from_slice(b"xyz");
                v
            },
        ] {
            let err = d.decompress(&bad).unwrap_err();
            assert!(matches!(err, DecodeError::Corrupt(_)), "{err:?}");
        }
        // Still fine afterwards.
        assert!(d.decompress(&frames[2]).is_ok());
    }

    #[test]
    fn header_fields() {
        // Single segment, 1-byte content size, no dictionary, checksum.
        let h = Header::parse(&[0x28, 0xB5, 0x2F, 0xFD, 0x24, 0x05, 0, 0]).unwrap();
        assert_eq!(
            h,
            Header {
                window: 5,
                dictionary_id: None,
                content_size: Some(5),
                checksum: true
            }
        );
        // Window descriptor 128 KiB, 4-byte dictionary id, 2-byte content size (+256).
        let id = DICTIONARY_ID.to_le_bytes();
        let h = Header::parse(&[
            0x28, 0xB5, 0x2F, 0xFD, 0x43, 0x38, id[0], id[1], id[2], id[3], 0x10, 0x00,
        ])
        .unwrap();
        assert_eq!(h.window, 128 * 1024);
        assert_eq!(h.dictionary_id, Some(DICTIONARY_ID));
        assert_eq!(h.content_size, Some(256 + 16));
        assert!(Header::parse(&[0x28, 0xB5, 0x2F, 0xFD, 0x43, 0x38, 1]).is_err());
    }
}
