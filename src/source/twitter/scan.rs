//! A top-level JSON object scanner: finds the byte span of each top-level member's value
//! without building anything for the rest.
//!
//! Every record on the stream is classified (tweet, control message, other), and that needs
//! only a few top-level keys of a 3-5 KB object. serde_json can only do it by deserializing
//! every nested value (even into `IgnoredAny`), a large share of `produce`'s CPU; this
//! scanner skips strings with `memchr` and nested values by bracket depth. It still rejects
//! anything that is not structurally one JSON object (unterminated strings, unbalanced
//! brackets, trailing bytes, invalid UTF-8), because such records are counted as unparsed.
//! Values we actually use are handed to serde_json, which validates them fully.

use std::ops::ControlFlow;

/// Calls `member(key, value_bytes)` for each top-level member of the object in `data`, with
/// `key` as written between the quotes (escapes not decoded), until `member` breaks. Returns
/// `None` if `data` is not a well-formed JSON object, as far as it was scanned: after an
/// early break only the envelope is checked (the scanned part is UTF-8, the whole ends with
/// `}`).
pub fn top_level_members<'a>(
    data: &'a [u8],
    mut member: impl FnMut(&'a [u8], &'a [u8]) -> ControlFlow<()>,
) -> Option<()> {
    let mut i = skip_ws(data, 0);
    if data.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(data, i + 1);
    if data.get(i) == Some(&b'}') {
        return (skip_ws(data, i + 1) == data.len()).then_some(());
    }
    loop {
        if data.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(data, i + 1)?;
        let key = &data[i + 1..key_end];
        i = skip_ws(data, key_end + 1);
        if data.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(data, i + 1);
        let end = value_end(data, start)?;
        if member(key, &data[start..end]).is_break() {
            // Only what was scanned is checked for UTF-8: the rest is the consumer's to parse.
            std::str::from_utf8(&data[..end]).ok()?;
            return data.trim_ascii_end().ends_with(b"}").then_some(());
        }
        i = skip_ws(data, end);
        match data.get(i) {
            Some(b',') => i = skip_ws(data, i + 1),
            Some(b'}') => {
                std::str::from_utf8(data).ok()?;
                return (skip_ws(data, i + 1) == data.len()).then_some(());
            }
            _ => return None,
        }
    }
}

fn skip_ws(data: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = data.get(i) {
        i += 1;
    }
    i
}

/// Index of the closing quote of a string whose content starts at `i`.
fn string_end(data: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let off = memchr::memchr2(b'"', b'\\', &data[i..])?;
        let p = i + off;
        if data[p] == b'"' {
            return Some(p);
        }
        // A backslash escapes the next byte, whatever it is.
        i = p + 2;
        if i > data.len() {
            return None;
        }
    }
}

/// Offset of the nearest quote, brace or bracket.
fn next_structural(hay: &[u8]) -> Option<usize> {
    let a = memchr::memchr3(b'"', b'{', b'}', hay);
    memchr::memchr2(b'[', b']', &hay[..a.unwrap_or(hay.len())]).or(a)
}

/// Index just past the value starting at `i`.
fn value_end(data: &[u8], i: usize) -> Option<usize> {
    match data.get(i)? {
        b'"' => Some(string_end(data, i + 1)? + 1),
        b'{' | b'[' => {
            let mut stack: Vec<u8> = vec![data[i]];
            let mut j = i + 1;
            while let Some(off) = next_structural(&data[j..]) {
                let p = j + off;
                match data[p] {
                    b'"' => j = string_end(data, p + 1)? + 1,
                    open @ (b'{' | b'[') => {
                        stack.push(open);
                        j = p + 1;
                    }
                    close => {
                        let open = stack.pop()?;
                        if (open == b'{') != (close == b'}') {
                            return None;
                        }
                        j = p + 1;
                        if stack.is_empty() {
                            return Some(j);
                        }
                    }
                }
            }
            None
        }
        _ => {
            // A number or literal: up to the next delimiter; it must be non-empty and made of
            // the characters numbers and true/false/null use.
            let mut j = i;
            while let Some(&c) = data.get(j) {
                if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    break;
                }
                if !(c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.')) {
                    return None;
                }
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(s: &[u8]) -> Option<Vec<(String, String)>> {
        let mut out = Vec::new();
        top_level_members(s, |k, v| {
            out.push((
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            ));
            ControlFlow::Continue(())
        })?;
        Some(out)
    }

    #[test]
    fn spans_of_top_level_members() {
        let got = members(br#" { "a" : 1 , "id_str":"12\"3", "u":{"id_str":"9","x":[1,{"y":"]}"}]}, "t":true, "n":null } "#).unwrap();
        let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "id_str", "u", "t", "n"]);
        assert_eq!(got[1].1, r#""12\"3""#);
        assert_eq!(got[2].1, r#"{"id_str":"9","x":[1,{"y":"]}"}]}"#);
        assert_eq!(members(b"{}").unwrap(), vec![]);
    }

    #[test]
    fn stops_early_and_checks_the_envelope() {
        let mut seen = Vec::new();
        let stop_at_b = |k: &[u8], seen: &mut Vec<Vec<u8>>| {
            seen.push(k.to_vec());
            if k == b"b" {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        assert!(
            top_level_members(br#"{"a":1,"b":2,"c":[}"#, |k, _| stop_at_b(k, &mut seen)).is_some()
        );
        assert_eq!(seen, vec![b"a".to_vec(), b"b".to_vec()]);
        assert!(top_level_members(br#"{"a":1,"b":2,"c":"#, |k, _| stop_at_b(
            k,
            &mut Vec::new()
        ))
        .is_none());
    }

    #[test]
    fn rejects_what_is_not_one_object() {
        for bad in [
            &b""[..],
            b"[]",
            b"{",
            b"{\"a\":1",
            b"{\"a\" 1}",
            b"{\"a\":}",
            b"{\"a\":\"x}",
            b"{\"a\":[1,2}",
            b"{\"a\":{]}",
            b"{\"a\":1} x",
            b"not json",
            b"{\"a\":1,}",
            b"{\"a\":\"\xff\"}",
            b"{a:1}",
            b"{\"a\":\"x\\",
            b"{\"a\":1}}",
        ] {
            assert!(
                members(bad).is_none(),
                "accepted {:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// Whatever serde_json accepts as an object, the scanner accepts too, with the same keys.
    #[test]
    fn agrees_with_serde_on_mutated_tweets() {
        let base = br#"{"created_at":"Wed","id":12,"id_str":"12","text":"a \"q\" \\ [x] {y}","user":{"id_str":"9","n":[1,2.5e3,-1,{"k":null}]},"e":[],"f":false}"#;
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rand = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let mut v = base.to_vec();
            for _ in 0..(rand() % 3 + 1) {
                let pos = (rand() as usize) % v.len();
                match rand() % 3 {
                    0 => {
                        v.remove(pos);
                    }
                    1 => v.insert(pos, b"{}[]\",:\\ a1"[(rand() % 11) as usize]),
                    _ => v[pos] = b"{}[]\",:\\ a1"[(rand() % 11) as usize],
                }
            }
            let serde: Option<serde_json::Map<String, serde_json::Value>> =
                serde_json::from_slice(&v).ok();
            if let Some(map) = serde {
                let ours = members(&v)
                    .unwrap_or_else(|| panic!("rejected valid {:?}", String::from_utf8_lossy(&v)));
                // Duplicate keys collapse in a map, so compare sets.
                let ours: std::collections::BTreeSet<String> = ours
                    .into_iter()
                    .map(|(k, _)| serde_json::from_str(&format!("\"{k}\"")).unwrap())
                    .collect();
                let theirs: std::collections::BTreeSet<String> = map.keys().cloned().collect();
                assert_eq!(ours, theirs, "{:?}", String::from_utf8_lossy(&v));
            }
        }
    }
}
