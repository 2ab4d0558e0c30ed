//! The consumer protocol's two byte strings: a member's *subscription* (JoinGroup metadata) and
//! its *assignment* (SyncGroup), which the broker passes between members without reading them.
//!
//! Members of one group must read each other's bytes, whatever client wrote them (the Java
//! client, librdkafka, us), so the layouts are Kafka's own: a big-endian `int16` version, then
//! the `ConsumerProtocolSubscription` / `ConsumerProtocolAssignment` structure of that version
//! (kafka-protocol's generated types, which encode exactly Kafka's JSON schemas; the version
//! prefix is not part of them, so it is written and read here). Later versions only append
//! fields, so a version newer than we know is read as the newest we know, as the Java client
//! does, and trailing bytes are ignored.
//!
//! What we write matches librdkafka byte for byte: subscriptions in version 3 with empty (not
//! null) user data, no owned partitions (eager rebalancing revokes everything before joining),
//! generation -1 and no rack; assignments in version 0 with null user data. The subscription is
//! the same bytes at every join, which matters: brokers compare it to decide whether a member's
//! rejoin changes anything (tansu bumps the generation, and so starts another rebalance, when
//! it differs).

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition as AssignedTopic,
};
use kafka_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::{Decodable, Encodable, Message, StrBytes};

/// The protocol type of consumer groups in JoinGroup (Kafka's `ConsumerProtocol.PROTOCOL_TYPE`).
pub(crate) const PROTOCOL_TYPE: &str = "consumer";

/// The subscription version we write (librdkafka's and the Java client's current one).
const SUBSCRIPTION_VERSION: i16 = 3;

/// The assignment version we write. Versions 0-3 share one layout; 0 is what librdkafka writes
/// and what every consumer ever released reads.
const ASSIGNMENT_VERSION: i16 = 0;

/// Topic → partitions, ascending.
pub(crate) type Assignment = BTreeMap<String, Vec<i32>>;

/// A member's subscription as decoded from JoinGroup metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Subscription {
    /// The version the member wrote.
    pub version: i16,
    pub topics: Vec<String>,
    /// Opaque to range and roundrobin (sticky assignors keep their state here).
    pub user_data: Option<Bytes>,
    /// Partitions the member owns while joining (v1+; cooperative rebalancing).
    pub owned: Assignment,
    /// The generation the member last had (v2+; -1 when unknown).
    pub generation: i32,
    /// `client.rack` (v3+).
    pub rack: Option<String>,
}

/// Bytes that are not a consumer-protocol structure.
#[derive(Debug, thiserror::Error)]
#[error("undecodable consumer-protocol {what} ({len} bytes): {reason}")]
pub(crate) struct DecodeError {
    what: &'static str,
    len: usize,
    reason: String,
}

/// Our subscription to `topics`, as JoinGroup metadata.
pub(crate) fn encode_subscription(topics: &[String]) -> Bytes {
    let s = ConsumerProtocolSubscription::default()
        .with_topics(
            topics
                .iter()
                .map(|t| StrBytes::from_string(t.clone()))
                .collect(),
        )
        // Empty rather than null: Kafka 0.9's Java assignors cannot read a null.
        .with_user_data(Some(Bytes::new()))
        .with_owned_partitions(Vec::new())
        .with_generation_id(-1)
        .with_rack_id(None);
    encode_versioned(&s, SUBSCRIPTION_VERSION)
}

/// A member's JoinGroup metadata, written by any client.
pub(crate) fn decode_subscription(bytes: &[u8]) -> Result<Subscription, DecodeError> {
    let err = |reason: String| DecodeError {
        what: "subscription",
        len: bytes.len(),
        reason,
    };
    let (version, s) = decode_versioned::<ConsumerProtocolSubscription>(bytes).map_err(err)?;
    let mut owned = Assignment::new();
    for tp in s.owned_partitions {
        owned
            .entry(tp.topic.0.to_string())
            .or_default()
            .extend(tp.partitions);
    }
    Ok(Subscription {
        version,
        topics: s.topics.iter().map(|t| t.to_string()).collect(),
        user_data: s.user_data,
        owned,
        generation: s.generation_id,
        rack: s.rack_id.map(|r| r.to_string()),
    })
}

/// An assignment, as SyncGroup carries it.
pub(crate) fn encode_assignment(assignment: &Assignment) -> Bytes {
    let a = ConsumerProtocolAssignment::default()
        .with_assigned_partitions(
            assignment
                .iter()
                .map(|(topic, partitions)| {
                    AssignedTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                        .with_partitions(partitions.clone())
                })
                .collect(),
        )
        .with_user_data(None);
    encode_versioned(&a, ASSIGNMENT_VERSION)
}

/// A SyncGroup assignment, written by any client's leader. No bytes at all mean no
/// partitions: what brokers hand a member the leader gave nothing (tansu) or forgot.
pub(crate) fn decode_assignment(bytes: &[u8]) -> Result<Assignment, DecodeError> {
    if bytes.is_empty() {
        return Ok(Assignment::new());
    }
    let (_, a) =
        decode_versioned::<ConsumerProtocolAssignment>(bytes).map_err(|reason| DecodeError {
            what: "assignment",
            len: bytes.len(),
            reason,
        })?;
    let mut out = Assignment::new();
    for tp in a.assigned_partitions {
        out.entry(tp.topic.0.to_string())
            .or_default()
            .extend(tp.partitions);
    }
    for partitions in out.values_mut() {
        partitions.sort_unstable();
        partitions.dedup();
    }
    Ok(out)
}

fn encode_versioned<T: Encodable>(value: &T, version: i16) -> Bytes {
    // Only our own values are encoded here, with fields valid in `version`: a failure is a bug.
    let size = value
        .compute_size(version)
        .expect("consumer-protocol structure of a valid version");
    let mut buf = BytesMut::with_capacity(2 + size);
    buf.put_i16(version);
    value
        .encode(&mut buf, version)
        .expect("consumer-protocol structure of a valid version");
    buf.freeze()
}

fn decode_versioned<T: Decodable + Message>(bytes: &[u8]) -> Result<(i16, T), String> {
    let Some((head, mut body)) = bytes.split_first_chunk::<2>() else {
        return Err("shorter than its version".into());
    };
    let version = i16::from_be_bytes(*head);
    if version < 0 {
        return Err(format!("version {version}"));
    }
    let readable = version.min(T::VERSIONS.max);
    let value = T::decode(&mut body, readable).map_err(|e| format!("version {version}: {e}"))?;
    Ok((version, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's layouts written out by hand: int16 version, int32 array lengths, int16-prefixed
    /// strings, int32-prefixed bytes (-1 = null).
    struct Layout(Vec<u8>);
    impl Layout {
        fn new(version: i16) -> Self {
            Layout(version.to_be_bytes().to_vec())
        }
        fn i16(mut self, v: i16) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn i32(mut self, v: i32) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn str(self, s: &str) -> Self {
            let mut l = self.i16(s.len() as i16);
            l.0.extend_from_slice(s.as_bytes());
            l
        }
        fn bytes(self, b: &[u8]) -> Self {
            let mut l = self.i32(b.len() as i32);
            l.0.extend_from_slice(b);
            l
        }
    }

    /// What librdkafka's `rd_kafka_consumer_protocol_member_metadata_new` writes for a
    /// range/roundrobin member subscribed to `tweets` without client.rack: v3, one topic, empty
    /// user data, no owned partitions, generation -1, null rack.
    #[test]
    fn our_subscription_is_librdkafkas_bytes() {
        let expected = Layout::new(3)
            .i32(1)
            .str("tweets")
            .bytes(b"")
            .i32(0)
            .i32(-1)
            .i16(-1)
            .0;
        assert_eq!(encode_subscription(&["tweets".into()]).as_ref(), expected);
        let back = decode_subscription(&expected).unwrap();
        assert_eq!(back.version, 3);
        assert_eq!(back.topics, vec!["tweets".to_string()]);
        assert_eq!(back.user_data.as_deref(), Some(&b""[..]));
        assert_eq!(back.generation, -1);
        assert_eq!(back.rack, None);
    }

    /// Kafka 0.9-2.3 Java consumers write v0 (topics, user data); a cooperative Java consumer
    /// writes v3 with owned partitions, its generation and its rack.
    #[test]
    fn subscriptions_of_every_version_decode() {
        let v0 = Layout::new(0)
            .i32(2)
            .str("a")
            .str("b")
            .i32(-1) // null user data
            .0;
        let s = decode_subscription(&v0).unwrap();
        assert_eq!(
            (s.version, s.topics.clone()),
            (0, vec!["a".into(), "b".into()])
        );
        assert_eq!((s.user_data, s.generation), (None, -1));

        let v3 = Layout::new(3)
            .i32(1)
            .str("tweets")
            .bytes(&[7, 8])
            .i32(1)
            .str("tweets")
            .i32(2)
            .i32(0)
            .i32(3)
            .i32(41)
            .str("rack-a")
            .0;
        let s = decode_subscription(&v3).unwrap();
        assert_eq!(s.user_data.as_deref(), Some(&[7u8, 8][..]));
        assert_eq!(
            s.owned,
            Assignment::from([("tweets".to_string(), vec![0, 3])])
        );
        assert_eq!((s.generation, s.rack.as_deref()), (41, Some("rack-a")));
    }

    /// A version from the future reads as the newest we know, its extra fields ignored.
    #[test]
    fn a_newer_subscription_version_reads_as_v3() {
        let v9 = Layout::new(9)
            .i32(1)
            .str("t")
            .bytes(b"")
            .i32(0)
            .i32(5)
            .i16(-1)
            .i32(1234) // a field v3 does not know
            .0;
        let s = decode_subscription(&v9).unwrap();
        assert_eq!(
            (s.version, s.topics, s.generation),
            (9, vec!["t".to_string()], 5)
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &[][..],
            &[0][..],
            &[0xff, 0xff][..],
            &[0, 0, 0, 0, 0, 9][..],
        ] {
            assert!(decode_subscription(bytes).is_err(), "{bytes:?}");
        }
        assert!(decode_assignment(&[0, 0, 0, 0, 0, 1, 0]).is_err());
    }

    /// What librdkafka's `rd_kafka_group_MemberState_consumer_write` writes: v0, per topic its
    /// name and partitions, then the user data (null for range/roundrobin).
    #[test]
    fn our_assignment_is_librdkafkas_bytes() {
        let a = Assignment::from([
            ("a".to_string(), vec![0, 2]),
            ("tweets".to_string(), vec![1]),
        ]);
        let expected = Layout::new(0)
            .i32(2)
            .str("a")
            .i32(2)
            .i32(0)
            .i32(2)
            .str("tweets")
            .i32(1)
            .i32(1)
            .i32(-1)
            .0;
        assert_eq!(encode_assignment(&a).as_ref(), expected);
        assert_eq!(decode_assignment(&expected).unwrap(), a);
    }

    /// The Java client writes v3 (same layout); user data is ignored; no bytes = nothing.
    #[test]
    fn assignments_of_other_versions_and_empty_ones_decode() {
        let v3 = Layout::new(3)
            .i32(1)
            .str("tweets")
            .i32(3)
            .i32(5)
            .i32(1)
            .i32(3)
            .bytes(&[1, 2, 3])
            .0;
        assert_eq!(
            decode_assignment(&v3).unwrap(),
            Assignment::from([("tweets".to_string(), vec![1, 3, 5])])
        );
        assert_eq!(decode_assignment(&[]).unwrap(), Assignment::new());
        let none = Layout::new(0).i32(0).i32(-1).0;
        assert_eq!(decode_assignment(&none).unwrap(), Assignment::new());
    }
}
