//! Which lines of a slot's unfinished files stay, after a crash (or a lost membership): the
//! rule that keeps the union of all instances' finished files exactly once.
//!
//! A line of partition P at offset O is *committed* when the slot's last commit that landed
//! had P's offset above O: the group will never hand O out again, so the line stays, and is
//! finalized. Every other line is *tentative*: the group's next reader of P (maybe another
//! instance, maybe already) starts at the committed offset and writes O itself. A tentative
//! line stays only when this process reads P now and the group's offset for P is still the
//! slot's own last commit (nobody else committed P since); then reading resumes after it.
//! Otherwise it is dropped.
//!
//! The slot's last landed commit comes from its journal ([`super::journal`]). When the journal
//! ends in a pending commit whose outcome it does not know (the process died while the commit
//! was on its way), the group's offset decides, since offsets only move forward: below the
//! pending offset, the commit did not land; equal to it, it did. Above it (someone else
//! committed since, or nobody has an offset any more), the pending commit is taken as landed
//! and the lines it covers stay: if it had not landed, they are also in the other reader's
//! output (a duplicate, said in a warning), which is better than losing them. Output of a slot without a journal (named before slots
//! existed) is judged by the group's offsets alone.

use std::collections::BTreeMap;

use super::journal::State;

/// What happens to one partition's lines in a slot's unfinished files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cut {
    /// Lines below this offset were committed by the slot and stay; `None`: none were.
    pub(crate) committed: Option<i64>,
    /// The tentative lines (at or past `committed`) stay too.
    pub(crate) keep_tentative: bool,
}

impl Cut {
    pub(crate) fn keeps(&self, offset: i64) -> bool {
        self.keep_tentative || self.committed.is_some_and(|c| offset < c)
    }
}

/// Whose slot is judged, and what the group says now.
pub(crate) struct Judge<'a> {
    /// The slot's journal; `None` for output named before slots existed.
    pub(crate) state: Option<&'a State>,
    /// The group's committed offsets (next to read), of every partition that has one.
    pub(crate) group: &'a BTreeMap<i32, i64>,
    /// The partitions this process reads now.
    pub(crate) owned: &'a [i32],
    /// The slot is this process's own (an orphan's tentative lines never stay).
    pub(crate) own: bool,
}

impl Judge<'_> {
    /// The cut for `partition`, and a warning when it may leave a duplicate.
    pub(crate) fn cut(&self, partition: i32) -> (Cut, Option<String>) {
        let k = self.group.get(&partition).copied();
        let mut warning = None;
        let committed = match self.state {
            None => k,
            Some(s) => {
                let landed = s.landed.get(&partition).copied();
                match s.pending.as_ref().and_then(|m| m.get(&partition)).copied() {
                    Some(pending) if Some(pending) != landed => match k {
                        Some(k) if k == pending => Some(pending),
                        // Offsets only move forward: had it landed, the group would be there.
                        Some(k) if k < pending => landed,
                        _ => {
                            warning = Some(format!(
                                "partition {partition}: the output's last commit (offset {pending}) may not have landed before the process stopped, and the group's offset is now {}; its records from offset {} to {pending} are kept, and may also be in another instance's output",
                                show(k),
                                show(landed),
                            ));
                            Some(pending)
                        }
                    },
                    _ => landed,
                }
            }
        };
        if let (Some(k), Some(c)) = (k, committed) {
            if k < c && warning.is_none() {
                warning = Some(format!(
                    "partition {partition}: the group's offset ({k}) is behind what this output committed ({c}), so the records from {k} to {c} will be read again (was the group's offset reset?)"
                ));
            }
        }
        let keep_tentative = self.own && self.owned.contains(&partition) && k == committed;
        (
            Cut {
                committed,
                keep_tentative,
            },
            warning,
        )
    }
}

fn show(o: Option<i64>) -> String {
    o.map_or_else(|| "none".to_string(), |o| o.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(landed: &[(i32, i64)], pending: Option<&[(i32, i64)]>) -> State {
        State {
            landed: landed.iter().copied().collect(),
            pending: pending.map(|p| p.iter().copied().collect()),
        }
    }

    fn judge<'a>(
        s: Option<&'a State>,
        group: &'a BTreeMap<i32, i64>,
        owned: &'a [i32],
        own: bool,
    ) -> Judge<'a> {
        Judge {
            state: s,
            group,
            owned,
            own,
        }
    }

    fn cut(committed: Option<i64>, keep_tentative: bool) -> Cut {
        Cut {
            committed,
            keep_tentative,
        }
    }

    #[test]
    fn own_partition_nobody_committed_since_keeps_everything() {
        let s = state(&[(0, 100)], None);
        let g = BTreeMap::from([(0, 100)]);
        let (c, w) = judge(Some(&s), &g, &[0], true).cut(0);
        assert_eq!(c, cut(Some(100), true));
        assert!(c.keeps(150) && c.keeps(99));
        assert!(w.is_none());
    }

    #[test]
    fn a_partition_someone_else_reads_or_moved_past_loses_its_tentative_lines() {
        let s = state(&[(0, 100)], None);
        // Not ours now: the next reader starts at 100.
        let g = BTreeMap::from([(0, 100)]);
        let (c, _) = judge(Some(&s), &g, &[1], true).cut(0);
        assert_eq!(c, cut(Some(100), false));
        assert!(c.keeps(99) && !c.keeps(100));
        // Ours again, but another instance committed 150 meanwhile: it wrote 100..150 too.
        let g = BTreeMap::from([(0, 150)]);
        let (c, w) = judge(Some(&s), &g, &[0], true).cut(0);
        assert_eq!(c, cut(Some(100), false));
        assert!(w.is_none());
        // An orphan's tentative lines never stay.
        let g = BTreeMap::from([(0, 100)]);
        assert_eq!(
            judge(Some(&s), &g, &[0], false).cut(0).0,
            cut(Some(100), false)
        );
    }

    #[test]
    fn a_partition_the_slot_never_committed_has_only_tentative_lines() {
        let s = state(&[], None);
        let g = BTreeMap::from([(3, 40)]);
        let (c, _) = judge(Some(&s), &g, &[3], true).cut(3);
        assert_eq!(c, cut(None, false));
        assert!(!c.keeps(0));
        // Nobody ever committed it, and it is ours: keep, and resume after.
        let g = BTreeMap::new();
        assert_eq!(judge(Some(&s), &g, &[3], true).cut(3).0, cut(None, true));
    }

    #[test]
    fn an_undecided_commit_is_settled_by_the_group_offset() {
        let s = state(&[(0, 100)], Some(&[(0, 120)]));
        // The group still has 100: the pending commit did not land.
        let g = BTreeMap::from([(0, 100)]);
        assert_eq!(
            judge(Some(&s), &g, &[], true).cut(0),
            (cut(Some(100), false), None)
        );
        // The group has 120: it landed.
        let g = BTreeMap::from([(0, 120)]);
        assert_eq!(
            judge(Some(&s), &g, &[0], true).cut(0),
            (cut(Some(120), true), None)
        );
        // Someone moved it on since: taken as landed, with a warning naming the range.
        let g = BTreeMap::from([(0, 180)]);
        let (c, w) = judge(Some(&s), &g, &[0], true).cut(0);
        assert_eq!(c, cut(Some(120), false));
        let w = w.unwrap();
        assert!(w.contains("from offset 100 to 120"), "{w}");
        // A partition the pending commit did not name: what landed.
        let s = state(&[(0, 100), (1, 7)], Some(&[(0, 120)]));
        let g = BTreeMap::from([(1, 9)]);
        assert_eq!(judge(Some(&s), &g, &[], true).cut(1).0, cut(Some(7), false));
    }

    #[test]
    fn offsets_moved_back_are_warned_about_and_output_without_a_journal_follows_the_group() {
        let s = state(&[(0, 100)], None);
        let g = BTreeMap::from([(0, 60)]);
        let (c, w) = judge(Some(&s), &g, &[0], true).cut(0);
        assert_eq!(c, cut(Some(100), false));
        assert!(w.unwrap().contains("from 60 to 100"));
        let g = BTreeMap::from([(0, 60)]);
        assert_eq!(
            judge(None, &g, &[0], false).cut(0),
            (cut(Some(60), false), None)
        );
    }
}
