//! The output line: one JSON object per record, in one of three series (enriched tweets;
//! deletes and other control messages; records we could not use), each ending with the
//! record's Kafka position, `"kafka":{"partition":P,"offset":O}`, which recovery reads back
//! ([`kafka_position`]). Written and read here only.

use super::{ConsumedRecord, Encoded, Encoder, Entry, Kind};
use crate::enrich::Outcome;

/// The JSON-lines encoder, for the file and stdout sinks.
pub(crate) struct JsonLines;

impl Encoder for JsonLines {
    fn encode(&self, record: &ConsumedRecord<'_>, outcome: &Outcome, out: &mut Encoded) {
        let line = &mut out.bytes;
        let kind = match outcome {
            Outcome::Tweet(t) => {
                serde_json::to_writer(&mut *line, t).expect("serializing to memory");
                Kind::Tweet
            }
            Outcome::Control { kind, raw } => {
                line.extend_from_slice(b"{\"kind\":");
                serde_json::to_writer(&mut *line, kind).expect("serializing to memory");
                line.extend_from_slice(b",\"message\":");
                serde_json::to_writer(&mut *line, &raw).expect("serializing to memory");
                line.push(b'}');
                Kind::Control
            }
            Outcome::Invalid { reason } => {
                line.extend_from_slice(b"{\"reason\":");
                serde_json::to_writer(&mut *line, &reason).expect("serializing to memory");
                line.extend_from_slice(b",\"value\":");
                serde_json::to_writer(&mut *line, &String::from_utf8_lossy(record.value))
                    .expect("serializing to memory");
                line.push(b'}');
                Kind::Error
            }
        };
        // Every line ends with its Kafka position; recovery reads it back from there.
        debug_assert_eq!(line.last(), Some(&b'}'));
        line.pop();
        line.extend_from_slice(
            format!(
                ",\"kafka\":{{\"partition\":{},\"offset\":{}}}}}",
                record.partition, record.offset
            )
            .as_bytes(),
        );
        out.entries.push(Entry {
            offset: record.offset,
            kind,
            end: out.bytes.len(),
        });
    }
}

/// The file series a kind of line goes to.
pub(crate) fn series(kind: Kind) -> &'static str {
    match kind {
        Kind::Tweet => "tweets",
        Kind::Control => "deletes",
        Kind::Error => "errors",
    }
}

/// The Kafka position a line ends with.
pub(crate) fn kafka_position(line: &[u8]) -> Option<(i32, i64)> {
    const TAG: &[u8] = b"\"kafka\":{\"partition\":";
    let at = memchr::memmem::rfind(line, TAG)? + TAG.len();
    let rest = std::str::from_utf8(&line[at..]).ok()?;
    let (p, rest) = rest.split_once(",\"offset\":")?;
    let o: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    Some((p.parse().ok()?, o.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_ends_with_its_position_and_reads_back() {
        let mut out = Encoded::with_capacity(3, 1, 1024);
        let record = ConsumedRecord {
            partition: 3,
            offset: 41,
            value: b"not json",
        };
        let outcome = Outcome::Invalid {
            reason: "not JSON".into(),
        };
        JsonLines.encode(&record, &outcome, &mut out);
        let line = out.get(0);
        let v: serde_json::Value = serde_json::from_slice(line).unwrap();
        assert_eq!(v["reason"], "not JSON");
        assert_eq!(v["value"], "not json");
        assert_eq!(kafka_position(line), Some((3, 41)));
        assert_eq!(out.entries[0].kind, Kind::Error);
    }
}
