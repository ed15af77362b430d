//! Restore: bring one stage partition's local state up to its changelog.
//!
//! Reads the partition's commit log from where local state stands, judging
//! each commit by the chain rule (`storage::changelog::CommitChain`), then the
//! changelog partition from its local position up to the end named by the
//! last accepted commit, applying only the records accepted commits name.
//! Used for a takeover with no local state (replays everything), a restart on
//! an old disk (replays only the tail it missed), and after a writer finds it
//! was fenced, alike.

use common::{PartitionId, ViewId};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};
use storage::changelog::{split_changelog_key, Commit, CommitChain, CommittedOffsets};
use storage::{PartitionMeta, Stage, StateBatch, StateStore};

use crate::error::DataflowError;
use crate::kafka::{KafkaConfig, StageTopics};

/// Give up when the broker delivers nothing for this long while records remain.
const STALL: Duration = Duration::from_secs(30);
const CHUNK: usize = 10_000;

/// What one restore did.
pub struct Restored {
    pub meta: PartitionMeta,
    /// Changelog records applied.
    pub replayed: u64,
    /// Commit records read.
    pub commits: u64,
}

/// Which stage partition to restore, and where its log lives.
pub struct Target<'a> {
    pub view: ViewId,
    pub stage: Stage,
    pub partition: PartitionId,
    pub topics: &'a StageTopics,
}

/// Restores one stage partition; `progress(applied, end, oldest, at_commit)`
/// is called as the changelog is replayed, `oldest` being the time of the
/// first commit the local state lacks (the age of what it has not applied)
/// and `at_commit` whether local state stands at an accepted commit (it does
/// throughout when the whole catch-up lands as one write, as a warm
/// standby's does; a longer replay writes in chunks between commits).
pub fn restore(
    kafka: &KafkaConfig,
    consumer: &BaseConsumer,
    store: &StateStore,
    target: &Target<'_>,
    mut progress: impl FnMut(i64, i64, Option<i64>, bool),
) -> Result<Restored, DataflowError> {
    let Target {
        view,
        stage,
        partition,
        topics,
    } = *target;
    let p = partition.0 as i32;
    let before = store.partition_meta(view, stage, partition)?;
    let mut meta = before.clone();
    let mut chain = CommitChain::new(meta.last_commit);
    let mut accepted = CommittedOffsets::default();
    let mut changelog_end = meta.changelog_next;
    let mut commits = 0u64;
    let mut oldest = None;
    let (_, commits_end) = consumer.fetch_watermarks(&topics.commits, p, kafka.timeout)?;
    read_range(
        consumer,
        &topics.commits,
        p,
        meta.commit_next,
        commits_end,
        |offset, msg| {
            meta.commit_next = offset + 1;
            commits += 1;
            let Some(commit) = msg.payload().and_then(|p| Commit::decode(p).ok()) else {
                tracing::warn!(offset, "skipping unreadable commit record");
                return Ok(());
            };
            if chain.accept(offset, &commit) {
                if commit.changelog_end > before.changelog_next {
                    oldest = oldest.or(msg.timestamp().to_millis());
                }
                accepted.add(&commit);
                meta.last_commit = offset;
                meta.input_next = commit.input_next;
                meta.upstream = commit.upstream;
                changelog_end = changelog_end.max(commit.changelog_end);
            }
            Ok(())
        },
    )?;

    let mut batch = StateBatch::new();
    let mut replayed = 0u64;
    let start = meta.changelog_next;
    // Chunks count applied records; the range bounds them.
    let one_write = changelog_end - start <= CHUNK as i64;
    progress(start, changelog_end, oldest, one_write);
    read_range(
        consumer,
        &topics.changelog,
        p,
        start,
        changelog_end,
        |offset, msg| {
            if accepted.holds(offset) {
                if let Some((table, key)) = msg.key().and_then(split_changelog_key) {
                    match msg.payload() {
                        Some(value) => batch.put(view, partition, table, key, value),
                        None => batch.delete(view, partition, table, key),
                    }
                    replayed += 1;
                }
            }
            if batch.len() >= CHUNK {
                // A partial replay moves the changelog position but keeps the
                // commit positions of before: a restore cut short here reads
                // the same commits again and so knows which batches count.
                let partial = PartitionMeta {
                    changelog_next: offset + 1,
                    ..before.clone()
                };
                batch.set_partition_meta(view, stage, partition, &partial);
                store.write(std::mem::take(&mut batch))?;
                progress(offset + 1, changelog_end, oldest, false);
            }
            Ok(())
        },
    )?;
    meta.changelog_next = changelog_end;
    batch.set_partition_meta(view, stage, partition, &meta);
    store.write(batch)?;
    progress(changelog_end, changelog_end, None, true);
    Ok(Restored {
        meta,
        replayed,
        commits,
    })
}
/// Reads `[from, end)` of one partition of `topic` in order, calling
/// `f(offset, message)`. Offsets a compaction removed are skipped over.
pub(crate) fn read_range(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    from: i64,
    end: i64,
    mut f: impl FnMut(i64, &rdkafka::message::BorrowedMessage<'_>) -> Result<(), DataflowError>,
) -> Result<(), DataflowError> {
    if from >= end {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(from))?;
    consumer.assign(&tpl)?;
    let mut last_progress = Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(msg)) => {
                last_progress = Instant::now();
                let offset = msg.offset();
                if offset < end {
                    f(offset, &msg)?;
                }
                if offset + 1 >= end {
                    break;
                }
            }
            Some(Err(e)) => return Err(e.into()),
            None => {
                // A compacted tail may never deliver offset end-1: ask where we are.
                let position = consumer.position()?;
                if matches!(position.find_partition(topic, partition).map(|e| e.offset()), Some(Offset::Offset(o)) if o >= end)
                {
                    break;
                }
                if last_progress.elapsed() > STALL {
                    return Err(DataflowError::Timeout(STALL));
                }
            }
        }
    }
    consumer.unassign()?;
    Ok(())
}
