//! A small zstd *encoder* that uses a dictionary, in pure Rust, for the Jetstream stand-in: the
//! frames it makes are standard zstd frames (RFC 8878) that name the dictionary and copy
//! strings out of its content, so any zstd decoder given Jetstream's dictionary decodes them
//! (the stand-in's self-test checks that with the reference `zstd` tool) and a decoder that
//! ignored the dictionary could not.
//!
//! It trades compression ratio for brevity: a greedy match finder (one hash table over the
//! dictionary's content, one over the event) and one match per block, so each block's
//! sequence section uses RLE mode for its three codes and needs no FSE tables. Literals are
//! stored raw. Ratios come out somewhat below the reference tool's on Jetstream events, which
//! is beside the point: the stand-in serves real dictionary frames at full speed.

use ruzstd::decoding::dictionary::Dictionary;

const MAGIC: u32 = 0xFD2F_B528;
/// A match shorter than this costs more (block header, sequence section) than it saves.
const MIN_MATCH: usize = 16;
const HASH_BITS: u32 = 16;
/// Window: 128 KiB, as Jetstream's encoder; every offset stays within it.
const WINDOW: usize = 128 * 1024;
/// Literals longer than this go out as a raw block of their own.
const MAX_LITERALS: usize = 64 * 1024;

pub struct DictEncoder {
    id: u32,
    content: Vec<u8>,
    /// hash of 8 bytes → position in `content` + 1 (0: empty).
    table: Vec<u32>,
}

fn hash(b: &[u8]) -> usize {
    let v = u64::from_le_bytes(b[..8].try_into().unwrap());
    (v.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - HASH_BITS)) as usize
}

/// The per-event table is smaller: it is cleared for every event.
const LOCAL_BITS: u32 = 12;

fn local_hash(b: &[u8]) -> usize {
    let v = u64::from_le_bytes(b[..8].try_into().unwrap());
    (v.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - LOCAL_BITS)) as usize
}

/// A tail compressed once (see [`DictEncoder::compress_tail`]).
pub struct Tail {
    prefix_len: usize,
    tail_len: usize,
    blocks: Vec<u8>,
}

impl DictEncoder {
    /// An encoder for `dictionary` (a zstd dictionary file).
    pub fn new(dictionary: &[u8]) -> Self {
        let dict = Dictionary::decode_dict(dictionary).expect("a zstd dictionary");
        let content = dict.dict_content;
        let mut table = vec![0u32; 1 << HASH_BITS];
        for at in 0..content.len().saturating_sub(8) {
            table[hash(&content[at..])] = at as u32 + 1;
        }
        DictEncoder {
            id: dict.id,
            content,
            table,
        }
    }

    /// One zstd frame holding `input`.
    pub fn compress(&self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len() / 2 + 32);
        self.header(&mut out, input.len());
        self.blocks(&mut out, input, 0);
        out
    }

    /// The blocks of `tail`, compressed once, for frames of `prefix ++ tail` whose prefixes
    /// all have `prefix_len` bytes: matches reach into the dictionary at offsets that depend
    /// only on the position, and never into the prefix, so the blocks are valid behind any
    /// prefix of that length (which goes in a raw block of its own).
    pub fn compress_tail(&self, prefix_len: usize, tail: &[u8]) -> Tail {
        let mut blocks = Vec::new();
        self.blocks(&mut blocks, tail, prefix_len);
        Tail {
            prefix_len,
            tail_len: tail.len(),
            blocks,
        }
    }

    /// The frame of `prefix ++ tail`: a copy, no compression work. `None` when the prefix
    /// does not have the length the tail was compressed for.
    pub fn frame_with_tail(&self, prefix: &[u8], tail: &Tail) -> Option<Vec<u8>> {
        if prefix.len() != tail.prefix_len {
            return None;
        }
        let mut out = Vec::with_capacity(prefix.len() + tail.blocks.len() + 24);
        self.header(&mut out, prefix.len() + tail.tail_len);
        raw_block(&mut out, prefix, false);
        out.extend_from_slice(&tail.blocks);
        Some(out)
    }

    fn header(&self, out: &mut Vec<u8>, content_len: usize) {
        out.extend_from_slice(&MAGIC.to_le_bytes());
        // Frame header: 4-byte content size, not single-segment, no checksum, 4-byte dict id.
        out.push((2 << 6) | 3);
        out.push(7 << 3); // window 2^(10+7) = 128 KiB
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&(content_len as u32).to_le_bytes());
    }

    /// The blocks of `input`, which starts `base` bytes into the frame's content.
    fn blocks(&self, out: &mut Vec<u8>, input: &[u8], base: usize) {
        let mut local = vec![0u32; 1 << LOCAL_BITS];
        let n = input.len();
        let (mut at, mut lit_start) = (0, 0);
        while at + MIN_MATCH <= n {
            match self.best_match(input, at, base, &local) {
                Some((offset, len)) => {
                    self.block(out, &input[lit_start..at], Some((offset, len)), false);
                    for p in (at..at + len).step_by(4) {
                        if p + 8 <= n {
                            local[local_hash(&input[p..])] = p as u32 + 1;
                        }
                    }
                    at += len;
                    lit_start = at;
                }
                None => {
                    local[local_hash(&input[at..])] = at as u32 + 1;
                    at += 1;
                    if at - lit_start >= MAX_LITERALS {
                        raw_block(out, &input[lit_start..at], false);
                        lit_start = at;
                    }
                }
            }
        }
        raw_block(out, &input[lit_start..], true);
    }

    /// The longest match (offset, length) at `at`, from the event so far or the dictionary.
    fn best_match(
        &self,
        input: &[u8],
        at: usize,
        base: usize,
        local: &[u32],
    ) -> Option<(usize, usize)> {
        let limit = (input.len() - at).min(MAX_LITERALS);
        let mut best: Option<(usize, usize)> = None;
        if let Some(p) = local[local_hash(&input[at..])]
            .checked_sub(1)
            .map(|p| p as usize)
        {
            let len = common(&input[p..], &input[at..], limit);
            if len >= MIN_MATCH {
                best = Some((at - p, len));
            }
        }
        if let Some(p) = self.table[hash(&input[at..])]
            .checked_sub(1)
            .map(|p| p as usize)
        {
            let offset = base + at + (self.content.len() - p);
            let len = common(&self.content[p..], &input[at..], limit);
            if len >= MIN_MATCH && offset <= WINDOW && best.is_none_or(|(_, l)| len > l) {
                best = Some((offset, len));
            }
        }
        best
    }

    /// A compressed block: raw literals, then one match (RLE-coded sequence section).
    fn block(&self, out: &mut Vec<u8>, literals: &[u8], seq: Option<(usize, usize)>, last: bool) {
        let mut body = Vec::with_capacity(literals.len() + 16);
        literals_header(&mut body, literals.len());
        body.extend_from_slice(literals);
        if let Some((offset, len)) = seq {
            let (ll_code, ll_bits, ll_extra) = code(&LL, literals.len() as u32);
            let (ml_code, ml_bits, ml_extra) = code(&ML, len as u32);
            let of_base = offset as u32 + 3;
            let of_code = 31 - of_base.leading_zeros();
            let of_extra = of_base - (1 << of_code);
            body.push(1); // one sequence
            body.push(0b01_01_01_00); // RLE mode for literal lengths, offsets, match lengths
            body.extend_from_slice(&[ll_code, of_code as u8, ml_code]);
            // Written in the order the decoder reads them backwards: offset, match, literal.
            let mut bits = Bits::default();
            bits.put(ll_extra, ll_bits);
            bits.put(ml_extra, ml_bits);
            bits.put(of_extra, of_code);
            bits.put(1, 1); // end mark
            body.extend_from_slice(&bits.finish());
        } else {
            body.push(0);
        }
        let header = ((body.len() as u32) << 3) | (2 << 1) | u32::from(last);
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(&body);
    }
}

fn raw_block(out: &mut Vec<u8>, bytes: &[u8], last: bool) {
    let header = ((bytes.len() as u32) << 3) | u32::from(last);
    out.extend_from_slice(&header.to_le_bytes()[..3]);
    out.extend_from_slice(bytes);
}

fn literals_header(out: &mut Vec<u8>, size: usize) {
    match size {
        0..=31 => out.push((size as u8) << 3),
        32..=4095 => {
            out.extend_from_slice(&[((size & 0xF) << 4) as u8 | 0b0100, (size >> 4) as u8])
        }
        _ => out.extend_from_slice(&[
            ((size & 0xF) << 4) as u8 | 0b1100,
            (size >> 4) as u8,
            (size >> 12) as u8,
        ]),
    }
}

fn common(a: &[u8], b: &[u8], limit: usize) -> usize {
    a.iter()
        .zip(b)
        .take(limit)
        .take_while(|(x, y)| x == y)
        .count()
}

/// (baseline, extra bits) of literal-length codes 0..=35 (RFC 8878, 3.1.1.3.2.1.1).
const LL: [(u32, u32); 36] = [
    (0, 0),
    (1, 0),
    (2, 0),
    (3, 0),
    (4, 0),
    (5, 0),
    (6, 0),
    (7, 0),
    (8, 0),
    (9, 0),
    (10, 0),
    (11, 0),
    (12, 0),
    (13, 0),
    (14, 0),
    (15, 0),
    (16, 1),
    (18, 1),
    (20, 1),
    (22, 1),
    (24, 2),
    (28, 2),
    (32, 3),
    (40, 3),
    (48, 4),
    (64, 6),
    (128, 7),
    (256, 8),
    (512, 9),
    (1024, 10),
    (2048, 11),
    (4096, 12),
    (8192, 13),
    (16384, 14),
    (32768, 15),
    (65536, 16),
];

/// (baseline, extra bits) of match-length codes 0..=52.
const ML: [(u32, u32); 53] = [
    (3, 0),
    (4, 0),
    (5, 0),
    (6, 0),
    (7, 0),
    (8, 0),
    (9, 0),
    (10, 0),
    (11, 0),
    (12, 0),
    (13, 0),
    (14, 0),
    (15, 0),
    (16, 0),
    (17, 0),
    (18, 0),
    (19, 0),
    (20, 0),
    (21, 0),
    (22, 0),
    (23, 0),
    (24, 0),
    (25, 0),
    (26, 0),
    (27, 0),
    (28, 0),
    (29, 0),
    (30, 0),
    (31, 0),
    (32, 0),
    (33, 0),
    (34, 0),
    (35, 1),
    (37, 1),
    (39, 1),
    (41, 1),
    (43, 2),
    (47, 2),
    (51, 3),
    (59, 3),
    (67, 4),
    (83, 4),
    (99, 5),
    (131, 7),
    (259, 8),
    (515, 9),
    (1027, 10),
    (2051, 11),
    (4099, 12),
    (8195, 13),
    (16387, 14),
    (32771, 15),
    (65539, 16),
];

/// The code, its extra-bit count and the extra bits' value for `v`.
fn code(table: &[(u32, u32)], v: u32) -> (u8, u32, u32) {
    let c = table
        .iter()
        .rposition(|&(base, _)| base <= v)
        .expect("in range");
    let (base, bits) = table[c];
    assert!(v - base < (1 << bits).max(1), "{v} beyond code {c}");
    (c as u8, bits, v - base)
}

/// A little-endian bit writer (the stream zstd decoders read backwards).
#[derive(Default)]
struct Bits {
    bytes: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, v: u32, bits: u32) {
        if bits == 0 {
            return;
        }
        self.acc |= u64::from(v & ((1u64 << bits) - 1) as u32) << self.n;
        self.n += bits;
        while self.n >= 8 {
            self.bytes.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.bytes.push(self.acc as u8);
        }
        self.bytes
    }
}
