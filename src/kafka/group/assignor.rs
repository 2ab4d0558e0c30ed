//! The partition assignors `range` and `roundrobin`, computing exactly what Kafka's Java
//! `RangeAssignor` and `RoundRobinAssignor` compute (librdkafka's agree with them).
//!
//! Why exactly: the group's leader runs the assignor for everyone, and the leader may be any
//! member, a librdkafka consumer as well as one of ours. The same subscriptions must give the
//! same assignment whoever leads, or a change of leader alone moves partitions around.
//!
//! Both are *eager* assignors: every member gives up all its partitions before a rebalance,
//! and the result depends only on the members and their subscriptions, not on who owned what.
//! Members are ordered as Java orders them (`MemberInfo.compareTo`): static members (with a
//! `group.instance.id`) first, by instance id, then the others by member id, comparing strings
//! by UTF-16 code units as Java's `String.compareTo` does.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use super::error::GroupError;
use super::protocol::Assignment;

/// A partition assignment strategy, named as in Kafka's `partition.assignment.strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Assignor {
    /// Per topic, consecutive ranges of partitions, the first members getting one more.
    Range,
    /// All partitions of all topics in turn to each member subscribed to their topic.
    RoundRobin,
}

/// One member of the group as the leader sees it in the JoinGroup response.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub topics: Vec<String>,
}

impl Assignor {
    /// The protocol name in JoinGroup, shared with every other Kafka client.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "range" => Some(Assignor::Range),
            "roundrobin" => Some(Assignor::RoundRobin),
            _ => None,
        }
    }

    /// `range,roundrobin` (Kafka's `partition.assignment.strategy`): the strategies in order of preference, at least one,
    /// none twice.
    pub(crate) fn parse_list(list: &str) -> Result<Vec<Assignor>, GroupError> {
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim) {
            let Some(a) = Assignor::from_name(name) else {
                return Err(GroupError::Usage(format!(
                    "assignor list {list:?}: unknown assignor {name:?}; give range, roundrobin or both in order of preference, e.g. range,roundrobin"
                )));
            };
            if out.contains(&a) {
                return Err(GroupError::Usage(format!(
                    "assignor list {list:?} names {name} twice"
                )));
            }
            out.push(a);
        }
        Ok(out)
    }

    /// Assigns the partitions of `partition_counts` (topic → number of partitions; topics
    /// missing from it get nothing) to `members`. Every member is in the answer, possibly with
    /// nothing.
    pub(crate) fn assign(
        self,
        members: &[Member],
        partition_counts: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Assignment> {
        let mut sorted: Vec<&Member> = members.iter().collect();
        sorted.sort_by(|a, b| java_member_order(a, b));
        let mut out: BTreeMap<String, Assignment> = members
            .iter()
            .map(|m| (m.member_id.clone(), Assignment::new()))
            .collect();
        let mut give = |member: &str, topic: &str, partitions: &[i32]| {
            if !partitions.is_empty() {
                out.get_mut(member)
                    .expect("every member has an entry")
                    .entry(topic.to_string())
                    .or_default()
                    .extend_from_slice(partitions);
            }
        };
        match self {
            Assignor::Range => {
                for (topic, &count) in partition_counts {
                    let takers: Vec<&&Member> = sorted
                        .iter()
                        .filter(|m| m.topics.iter().any(|t| t == topic))
                        .collect();
                    if takers.is_empty() || count <= 0 {
                        continue;
                    }
                    let n = takers.len() as i32;
                    let (each, extra) = (count / n, count % n);
                    for (i, m) in takers.iter().enumerate() {
                        let i = i as i32;
                        let start = each * i + i.min(extra);
                        let len = each + i32::from(i < extra);
                        let range: Vec<i32> = (start..start + len).collect();
                        give(&m.member_id, topic, &range);
                    }
                }
            }
            Assignor::RoundRobin => {
                // Java: the subscribed topics in order (a TreeSet of Strings), each topic's
                // partitions ascending, dealt around the sorted members, skipping members not
                // subscribed to the partition's topic.
                let mut topics: Vec<&str> = sorted
                    .iter()
                    .flat_map(|m| m.topics.iter().map(String::as_str))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                topics.sort_by(|a, b| java_cmp(a, b));
                let mut next = 0usize;
                for topic in topics {
                    let Some(&count) = partition_counts.get(topic) else {
                        continue;
                    };
                    for p in 0..count {
                        while !sorted[next % sorted.len()]
                            .topics
                            .iter()
                            .any(|t| t == topic)
                        {
                            next += 1;
                        }
                        give(&sorted[next % sorted.len()].member_id, topic, &[p]);
                        next += 1;
                    }
                }
            }
        }
        out
    }
}

/// Java's `String.compareTo`: by UTF-16 code units. Differs from Rust's byte order only when
/// characters above U+FFFF meet characters from U+E000 to U+FFFF.
fn java_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// `AbstractPartitionAssignor.MemberInfo.compareTo`.
fn java_member_order(a: &Member, b: &Member) -> Ordering {
    match (&a.instance_id, &b.instance_id) {
        (Some(x), Some(y)) => java_cmp(x, y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => java_cmp(&a.member_id, &b.member_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, topics: &[&str]) -> Member {
        Member {
            member_id: id.into(),
            instance_id: None,
            topics: topics.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn counts(c: &[(&str, i32)]) -> BTreeMap<String, i32> {
        c.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    fn of(a: &BTreeMap<String, Assignment>, member: &str) -> Vec<(String, i32)> {
        a[member]
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
            .collect()
    }

    fn tps(v: &[(&str, i32)]) -> Vec<(String, i32)> {
        v.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    #[test]
    fn parse_keeps_the_order_and_refuses_unknown_or_repeated_names() {
        assert_eq!(
            Assignor::parse_list("roundrobin, range").unwrap(),
            vec![Assignor::RoundRobin, Assignor::Range]
        );
        let e = Assignor::parse_list("range,sticky").unwrap_err();
        assert!(e.is_usage() && e.to_string().contains("\"sticky\""), "{e}");
        assert!(Assignor::parse_list("range,range").unwrap_err().is_usage());
        assert!(Assignor::parse_list("").unwrap_err().is_usage());
    }

    /// RangeAssignorTest.testTwoConsumersOneTopicThreePartitions and
    /// testTwoConsumersTwoTopicsSixPartitions.
    #[test]
    fn range_as_kafkas_tests_expect() {
        let c = counts(&[("t", 3)]);
        let a = Assignor::Range.assign(&[member("c1", &["t"]), member("c2", &["t"])], &c);
        assert_eq!(of(&a, "c1"), tps(&[("t", 0), ("t", 1)]));
        assert_eq!(of(&a, "c2"), tps(&[("t", 2)]));

        let c = counts(&[("t1", 3), ("t2", 3)]);
        let ms = [member("c1", &["t1", "t2"]), member("c2", &["t1", "t2"])];
        let a = Assignor::Range.assign(&ms, &c);
        assert_eq!(
            of(&a, "c1"),
            tps(&[("t1", 0), ("t1", 1), ("t2", 0), ("t2", 1)])
        );
        assert_eq!(of(&a, "c2"), tps(&[("t1", 2), ("t2", 2)]));
    }

    /// testMultipleConsumersMixedTopics, for both assignors (they agree on it).
    #[test]
    fn mixed_subscriptions_as_kafkas_tests_expect() {
        let c = counts(&[("topic1", 3), ("topic2", 2)]);
        let ms = [
            member("consumer1", &["topic1"]),
            member("consumer2", &["topic1", "topic2"]),
            member("consumer3", &["topic1"]),
        ];
        for assignor in [Assignor::Range, Assignor::RoundRobin] {
            let a = assignor.assign(&ms, &c);
            assert_eq!(of(&a, "consumer1"), tps(&[("topic1", 0)]), "{assignor:?}");
            assert_eq!(
                of(&a, "consumer2"),
                tps(&[("topic1", 1), ("topic2", 0), ("topic2", 1)]),
                "{assignor:?}"
            );
            assert_eq!(of(&a, "consumer3"), tps(&[("topic1", 2)]), "{assignor:?}");
        }
    }

    /// RoundRobinAssignorTest.testTwoConsumersTwoTopicsSixPartitions.
    #[test]
    fn roundrobin_deals_partitions_in_turn() {
        let c = counts(&[("t1", 3), ("t2", 3)]);
        let ms = [member("c2", &["t1", "t2"]), member("c1", &["t1", "t2"])];
        let a = Assignor::RoundRobin.assign(&ms, &c);
        assert_eq!(of(&a, "c1"), tps(&[("t1", 0), ("t1", 2), ("t2", 1)]));
        assert_eq!(of(&a, "c2"), tps(&[("t1", 1), ("t2", 0), ("t2", 2)]));
    }

    /// The shapes tweetpipe runs: one topic, 4 partitions over 2 members, 6 over 4, and more
    /// members than partitions (the last ones idle).
    #[test]
    fn one_topic_splits() {
        let m = |n: usize| -> Vec<Member> {
            (0..n).map(|i| member(&format!("m{i}"), &["t"])).collect()
        };
        let a = Assignor::Range.assign(&m(2), &counts(&[("t", 4)]));
        assert_eq!(
            (of(&a, "m0").len(), of(&a, "m1")),
            (2, tps(&[("t", 2), ("t", 3)]))
        );
        let a = Assignor::Range.assign(&m(4), &counts(&[("t", 6)]));
        let sizes: Vec<usize> = (0..4).map(|i| of(&a, &format!("m{i}")).len()).collect();
        assert_eq!(sizes, vec![2, 2, 1, 1]);
        let a = Assignor::RoundRobin.assign(&m(4), &counts(&[("t", 6)]));
        assert_eq!(of(&a, "m1"), tps(&[("t", 1), ("t", 5)]));
        let a = Assignor::Range.assign(&m(3), &counts(&[("t", 2)]));
        assert!(of(&a, "m2").is_empty() && a.len() == 3);
        // A topic nobody has metadata for is skipped, not a panic.
        let a = Assignor::RoundRobin.assign(&m(2), &counts(&[]));
        assert!(a.values().all(|x| x.is_empty()));
    }

    /// Static members come first, by instance id, whatever their member ids; then dynamic
    /// ones by member id.
    #[test]
    fn members_are_ordered_as_java_orders_them() {
        let mut s1 = member("zzz-1", &["t"]);
        s1.instance_id = Some("b".into());
        let mut s2 = member("yyy-2", &["t"]);
        s2.instance_id = Some("a".into());
        let d = member("aaa-3", &["t"]);
        let a = Assignor::Range.assign(&[d, s1, s2], &counts(&[("t", 3)]));
        assert_eq!(of(&a, "yyy-2"), tps(&[("t", 0)]));
        assert_eq!(of(&a, "zzz-1"), tps(&[("t", 1)]));
        assert_eq!(of(&a, "aaa-3"), tps(&[("t", 2)]));
    }

    /// U+10000 is a surrogate pair in UTF-16 (0xD800 0xDC00), which Java orders before
    /// U+FF61, although its UTF-8 bytes come after.
    #[test]
    fn strings_compare_by_utf16_code_units() {
        let (high, mid) = ("\u{10000}", "\u{FF61}");
        assert!(high > mid, "Rust's order");
        assert_eq!(java_cmp(high, mid), Ordering::Less);
        let a = Assignor::Range.assign(
            &[member(mid, &["t"]), member(high, &["t"])],
            &counts(&[("t", 2)]),
        );
        assert_eq!(of(&a, high), tps(&[("t", 0)]));
    }
}
