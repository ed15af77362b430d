//! Replaying one stage partition's commit log and changelog: the part of
//! the commit protocol (`storage::changelog`) that every reader of the two
//! logs shares. A standby's follower ([`crate::follow`]) drives it today;
//! restore and views over views are to drive it too
//! (docs/design/views-as-graphs.md, steps A1–A2).
//!
//! Pure: the caller hands it the records it read, each log in offset order,
//! and gets back the changes of every accepted commit once all of that
//! commit's records have arrived, with the positions after it. No I/O, no
//! clock, so it is tested here with logs written by hand.
//!
//! Invariants:
//! - A changelog record takes effect only through an accepted commit that
//!   names its offset ([`CommitChain`]); a rejected commit's records never do.
//! - Commits apply in log order, each only once every record below its
//!   `changelog_end` was read: the state is always that of an accepted commit.
//! - `settled` only grows, and everything below it is applied or dead.

use std::collections::VecDeque;
use storage::changelog::{split_changelog_key, Commit, CommitChain, CommittedOffsets};
use storage::{PartitionMeta, Table};

/// One changelog record as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub offset: i64,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
    pub timestamp_ms: Option<i64>,
}

/// A partition's replay: what is applied, and what was read ahead of it.
#[derive(Debug)]
pub struct ReplayBuffer {
    /// As applied.
    meta: PartitionMeta,
    chain: CommitChain,
    commit_read: i64,
    changelog_read: i64,
    /// Accepted commits not applied yet, in log order.
    ready: VecDeque<(i64, Commit)>,
    /// The records of rejected commits (a fenced writer's): they never apply.
    dead: CommittedOffsets,
    /// Everything below this changelog offset is applied or dead: where the
    /// replica stands, for its lag (a fenced writer's records past the last
    /// accepted commit would otherwise count as lag forever).
    settled: i64,
    /// Changelog records read, not applied yet, in offset order.
    records: VecDeque<Record>,
}

impl ReplayBuffer {
    /// A replay from `meta`, the positions of the state as it stands.
    pub fn new(meta: PartitionMeta) -> ReplayBuffer {
        ReplayBuffer {
            chain: CommitChain::new(meta.last_commit),
            commit_read: meta.commit_next,
            changelog_read: meta.changelog_next,
            settled: meta.changelog_next,
            meta,
            ready: VecDeque::new(),
            dead: CommittedOffsets::default(),
            records: VecDeque::new(),
        }
    }

    /// Next commit-log offset to read.
    pub fn commit_read(&self) -> i64 {
        self.commit_read
    }

    /// Next changelog offset to read.
    pub fn changelog_read(&self) -> i64 {
        self.changelog_read
    }

    /// Everything below this changelog offset is applied or dead.
    pub fn settled(&self) -> i64 {
        self.settled
    }

    /// The oldest record read that is neither applied nor dead, if any.
    pub fn oldest_unsettled(&self) -> Option<&Record> {
        self.records.iter().find(|r| r.offset >= self.settled)
    }

    /// Judges the commit at `offset` (one read before is ignored); an
    /// unreadable one is skipped.
    pub fn on_commit(&mut self, offset: i64, payload: Option<&[u8]>) {
        if offset < self.commit_read {
            return;
        }
        self.commit_read = offset + 1;
        let Some(commit) = payload.and_then(|p| Commit::decode(p).ok()) else {
            tracing::warn!(offset, "skipping unreadable commit record");
            return;
        };
        if self.chain.accept(offset, &commit) {
            self.ready.push_back((offset, commit));
        } else {
            self.dead.add(&commit);
        }
    }

    /// Buffers a changelog record; false (and ignored) when one at its
    /// offset was read before.
    pub fn on_record(&mut self, record: Record) -> bool {
        if record.offset < self.changelog_read {
            return false;
        }
        self.changelog_read = record.offset + 1;
        self.records.push_back(record);
        true
    }

    /// Applies every accepted commit whose records have all arrived: each
    /// of its records goes to `apply` (table, key, new value or `None` for
    /// a delete), in changelog order. The positions after the last commit
    /// applied, when one was.
    pub fn apply_ready(
        &mut self,
        mut apply: impl FnMut(Table, &[u8], Option<&[u8]>),
    ) -> Option<&PartitionMeta> {
        let mut moved = false;
        while let Some((offset, commit)) = self.ready.front() {
            if commit.changelog_end > self.changelog_read {
                break; // its records are still on their way
            }
            while let Some(r) = self
                .records
                .pop_front_if(|r| r.offset < commit.changelog_end)
            {
                if !commit.holds(r.offset) {
                    continue; // another writer's, whose commit was not accepted
                }
                if let Some((table, key)) = split_changelog_key(&r.key) {
                    apply(table, key, r.value.as_deref());
                }
            }
            self.meta.last_commit = *offset;
            self.meta.commit_next = offset + 1;
            self.meta.changelog_next = self.meta.changelog_next.max(commit.changelog_end);
            self.meta.input_next = commit.input_next;
            self.meta.upstream = commit.upstream.clone();
            self.ready.pop_front();
            moved = true;
        }
        while let Some(r) = self.records.pop_front_if(|r| self.dead.holds(r.offset)) {
            self.settled = self.settled.max(r.offset + 1);
        }
        self.settled = self.settled.max(self.meta.changelog_next);
        moved.then_some(&self.meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use storage::changelog::{changelog_key, BatchId};

    fn record(offset: i64, key: &str, value: Option<&str>) -> Record {
        Record {
            offset,
            key: changelog_key(Table::Output, key.as_bytes()),
            value: value.map(|v| v.as_bytes().to_vec()),
            timestamp_ms: Some(1000 + offset),
        }
    }

    fn commit(epoch: u64, prev: i64, records: Vec<(i64, i64)>, end: i64) -> Vec<u8> {
        Commit {
            batch: BatchId { epoch, seq: 1 },
            prev,
            changelog_end: end,
            records,
            input_next: end * 10,
            upstream: BTreeMap::new(),
        }
        .encode()
    }

    /// What `apply_ready` applies, as (key, value) pairs.
    fn applied(r: &mut ReplayBuffer) -> (Vec<(String, Option<String>)>, Option<PartitionMeta>) {
        let mut out = Vec::new();
        let meta = r
            .apply_ready(|table, key, value| {
                assert_eq!(table, Table::Output);
                out.push((
                    String::from_utf8_lossy(key).into_owned(),
                    value.map(|v| String::from_utf8_lossy(v).into_owned()),
                ));
            })
            .cloned();
        (out, meta)
    }

    fn kv(k: &str, v: Option<&str>) -> (String, Option<String>) {
        (k.to_owned(), v.map(str::to_owned))
    }

    #[test]
    fn records_wait_for_their_commit_and_a_commit_for_its_records() {
        let mut r = ReplayBuffer::new(PartitionMeta::default());
        assert!(r.on_record(record(0, "a", Some("1"))));
        assert_eq!(applied(&mut r), (vec![], None), "no commit yet");
        r.on_commit(0, Some(&commit(1, -1, vec![(0, 2)], 2)));
        assert_eq!(applied(&mut r), (vec![], None), "record 1 not read yet");
        assert_eq!(r.settled(), 0);
        assert_eq!(r.oldest_unsettled().map(|x| x.offset), Some(0));
        assert!(r.on_record(record(1, "b", None)));
        let (changes, meta) = applied(&mut r);
        assert_eq!(changes, vec![kv("a", Some("1")), kv("b", None)]);
        let meta = meta.expect("a commit applied");
        assert_eq!(
            (
                meta.last_commit,
                meta.commit_next,
                meta.changelog_next,
                meta.input_next
            ),
            (0, 1, 2, 20)
        );
        assert_eq!(r.settled(), 2);
        assert_eq!(r.oldest_unsettled(), None);
        // Read again (a consumer that rewound): ignored.
        assert!(!r.on_record(record(1, "b", Some("again"))));
        r.on_commit(0, Some(&commit(1, -1, vec![(0, 2)], 2)));
        assert_eq!(applied(&mut r), (vec![], None));
    }

    #[test]
    fn a_fenced_writers_records_never_apply_and_count_as_settled() {
        // Writers 1 and 2 interleave; writer 2 (a zombie) commits on a
        // stale `prev` after writer 1's commit, so only writer 1's count.
        let mut r = ReplayBuffer::new(PartitionMeta::default());
        r.on_record(record(0, "a", Some("w1")));
        r.on_record(record(1, "a", Some("w2")));
        r.on_record(record(2, "b", Some("w1")));
        r.on_record(record(3, "b", Some("w2")));
        r.on_commit(0, Some(&commit(1, -1, vec![(0, 1), (2, 3)], 3)));
        r.on_commit(1, Some(&commit(2, -1, vec![(1, 2), (3, 4)], 4)));
        let (changes, meta) = applied(&mut r);
        assert_eq!(changes, vec![kv("a", Some("w1")), kv("b", Some("w1"))]);
        assert_eq!(meta.map(|m| m.last_commit), Some(0));
        // Record 3 is the zombie's, past the accepted end: settled, not lag.
        assert_eq!(r.settled(), 4);
        assert_eq!(r.oldest_unsettled(), None);
        // The next accepted commit builds on offset 0, not on the zombie's.
        r.on_record(record(4, "c", Some("w1")));
        r.on_commit(2, Some(&commit(1, 0, vec![(4, 5)], 5)));
        let (changes, meta) = applied(&mut r);
        assert_eq!(changes, vec![kv("c", Some("w1"))]);
        assert_eq!(
            meta.map(|m| (m.last_commit, m.changelog_next)),
            Some((2, 5))
        );
    }

    #[test]
    fn a_replay_resumes_from_the_positions_it_was_given() {
        let meta = PartitionMeta {
            last_commit: 4,
            commit_next: 5,
            changelog_next: 10,
            input_next: 100,
            upstream: BTreeMap::new(),
        };
        let mut r = ReplayBuffer::new(meta);
        assert_eq!(
            (r.commit_read(), r.changelog_read(), r.settled()),
            (5, 10, 10)
        );
        assert!(!r.on_record(record(9, "old", Some("x"))), "applied already");
        r.on_commit(5, Some(b"not json"));
        assert_eq!(r.commit_read(), 6, "an unreadable commit is skipped");
        r.on_record(record(10, "k", Some("v")));
        r.on_commit(6, Some(&commit(1, 3, vec![(10, 11)], 11)));
        assert_eq!(
            applied(&mut r),
            (vec![], None),
            "builds on a commit not last"
        );
        assert_eq!(r.settled(), 11, "its records are dead");
        r.on_commit(7, Some(&commit(1, 4, vec![], 11)));
        let (changes, meta) = applied(&mut r);
        assert_eq!(changes, vec![]);
        assert_eq!(meta.map(|m| m.last_commit), Some(7));
    }
}
