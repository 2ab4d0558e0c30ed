//! The PostgreSQL sink's encoder (`src/sink/postgres/copy.rs`), on any Kafka record value: the
//! binary COPY tuple it makes must be one PostgreSQL takes, or the batch goes through the slow
//! path that finds the refused record (or, worse, a malformed stream ends the COPY early).
//!
//! `scripts/fuzz` seeds the corpus with real v1.1 tweets and passes the tweet parser's
//! dictionary, so most inputs reach the tweet columns.
//!
//! Checks, by reading the tuple back with a parser of its own:
//! - the tuple is exactly its fields (a count, then each field's length and bytes), 24 for a
//!   tweet, 7 for a control message, 4 for an error;
//! - every text field is UTF-8 without NUL (PostgreSQL's text holds neither);
//! - `text[]` fields are one-dimensional arrays of text (lower bound 1, no NULLs) or empty;
//! - numbers have their type's width, scores are finite and in range, booleans are 0 or 1;
//!   the partition and offset are those given;
//! - a tweet's raw column is the value as received (without NULs); an error's value is the
//!   value byte for byte;
//! - a control message's jsonb is version 1 and JSON without a `\u0000` escape (jsonb refuses
//!   one).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tweetpipe::enrich::Enricher;
use tweetpipe::testing::copy::{encode, Table, OFFSET, PARTITION};

fn enricher() -> &'static Enricher {
    static E: OnceLock<Enricher> = OnceLock::new();
    E.get_or_init(Enricher::new)
}

/// The fields of a tuple (`None`: NULL); panics unless the tuple is exactly its fields.
fn fields(tuple: &[u8]) -> Vec<Option<&[u8]>> {
    let n = i16::from_be_bytes(tuple[..2].try_into().unwrap());
    assert!(n >= 0);
    let mut at = 2;
    let mut out = Vec::new();
    for _ in 0..n {
        let len = i32::from_be_bytes(tuple[at..at + 4].try_into().unwrap());
        at += 4;
        if len == -1 {
            out.push(None);
        } else {
            assert!(len >= 0, "a length below -1");
            out.push(Some(&tuple[at..at + len as usize]));
            at += len as usize;
        }
    }
    assert_eq!(at, tuple.len(), "bytes after the tuple's last field");
    out
}

fn text(field: Option<&[u8]>) -> &str {
    let bytes = field.expect("a NOT NULL text");
    let s = std::str::from_utf8(bytes).expect("text is UTF-8");
    assert!(!s.contains('\0'), "NUL in text");
    s
}

fn opt_text(field: Option<&[u8]>) {
    if field.is_some() {
        text(field);
    }
}

fn int<const N: usize>(field: Option<&[u8]>) -> [u8; N] {
    field.expect("a NOT NULL number").try_into().expect("the type's width")
}

fn float(field: Option<&[u8]>) -> f64 {
    let v = f64::from_be_bytes(int::<8>(field));
    assert!(v.is_finite());
    v
}

fn boolean(field: Option<&[u8]>) {
    assert!(matches!(int::<1>(field), [0] | [1]));
}

/// A `text[]`: its items.
fn text_array(field: Option<&[u8]>) -> Vec<String> {
    let a = field.expect("a NOT NULL array");
    let word = |at: usize| i32::from_be_bytes(a[at..at + 4].try_into().unwrap());
    let (ndim, has_nulls, oid) = (word(0), word(4), word(8));
    assert_eq!((has_nulls, oid), (0, 25), "text elements, no NULLs");
    match ndim {
        0 => {
            assert_eq!(a.len(), 12);
            Vec::new()
        }
        1 => {
            let (n, lower) = (word(12), word(16));
            assert!(n > 0 && lower == 1);
            let mut at = 20;
            let mut items = Vec::new();
            for _ in 0..n {
                let len = word(at);
                assert!(len >= 0, "a NULL element");
                let item = &a[at + 4..at + 4 + len as usize];
                items.push(text(Some(item)).to_string());
                at += 4 + len as usize;
            }
            assert_eq!(at, a.len(), "bytes after the array's last element");
            items
        }
        _ => panic!("{ndim} dimensions"),
    }
}

fn position(partition: Option<&[u8]>, offset: Option<&[u8]>) {
    assert_eq!(i32::from_be_bytes(int::<4>(partition)), PARTITION);
    assert_eq!(i64::from_be_bytes(int::<8>(offset)), OFFSET);
}

/// Whether `json` holds a `\u0000` escape (not an escaped backslash followed by `u0000`).
fn has_nul_escape(json: &str) -> bool {
    let b = json.as_bytes();
    json.match_indices("\\u0000").any(|(at, _)| {
        let backslashes = b[..at].iter().rev().take_while(|&&c| c == b'\\').count();
        backslashes % 2 == 0
    })
}

fuzz_target!(|value: &[u8]| {
    let (table, tuple) = encode(enricher(), value);
    let f = fields(&tuple);
    match table {
        Table::Tweets => {
            assert_eq!(f.len(), 24);
            assert!(!text(f[0]).is_empty(), "an id");
            int::<8>(f[1]); // created_at, microseconds since 2000
            for i in [2, 3, 4, 5, 6, 19, 20] {
                text(f[i]);
            }
            let (neg, neu, pos, compound) = (float(f[7]), float(f[8]), float(f[9]), float(f[10]));
            for s in [neg, neu, pos] {
                assert!((0.0..=1.0).contains(&s), "score {s}");
            }
            assert!((-1.0..=1.0).contains(&compound), "compound {compound}");
            for i in [11, 12, 13] {
                text_array(f[i]);
            }
            boolean(f[14]);
            opt_text(f[15]);
            boolean(f[16]);
            opt_text(f[17]);
            opt_text(f[18]);
            position(f[21], f[22]);
            let raw = std::str::from_utf8(value).expect("a tweet was UTF-8");
            assert_eq!(text(f[23]), raw.replace('\0', ""), "raw is the value as received");
        }
        Table::Deletes => {
            assert_eq!(f.len(), 7);
            assert!(!text(f[0]).is_empty(), "a kind");
            for i in [1, 2, 3] {
                opt_text(f[i]);
            }
            let jsonb = f[4].expect("a NOT NULL message");
            assert_eq!(jsonb[0], 1, "jsonb version 1");
            let json = std::str::from_utf8(&jsonb[1..]).expect("JSON is UTF-8");
            assert!(!has_nul_escape(json), "jsonb refuses \\u0000: {json}");
            let _: serde_json::Value = serde_json::from_str(json).expect("valid JSON");
            position(f[5], f[6]);
        }
        Table::Errors => {
            assert_eq!(f.len(), 4);
            assert!(!text(f[0]).is_empty(), "a reason");
            assert_eq!(f[1], Some(value), "the value byte for byte");
            position(f[2], f[3]);
        }
    }
});
