//! Restore: bring a view's local state up to its changelog.
//!
//! Reads the commit topic from where local state stands, then each changelog
//! partition from its local position to its end, applying only records of
//! committed batches (see `storage::changelog`). Used for a cold start with
//! an empty data dir (replays everything) and for a restart on an old disk
//! (replays only the tail it missed) alike.

use common::{PartitionId, ViewId};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};
use storage::changelog::{split_changelog_key, BatchId, Commit, CommitFilter, BATCH_HEADER};
use storage::{PartitionMeta, StateBatch, StateStore, ViewMeta};

use crate::error::DataflowError;
use crate::kafka::{KafkaConfig, ViewTopics};

/// Where a restore left the view.
pub struct Restored {
    pub meta: ViewMeta,
    /// Whether any batch was ever committed (else the view starts fresh).
    pub has_commit: bool,
    /// Highest epoch seen on the commit topic.
    pub max_epoch: u64,
    pub changelog_next: BTreeMap<PartitionId, i64>,
    pub replayed: u64,
}

/// Give up when the broker delivers nothing for this long while records remain.
const STALL: Duration = Duration::from_secs(30);
const CHUNK: usize = 10_000;

pub fn restore(
    kafka: &KafkaConfig,
    store: &StateStore,
    view: ViewId,
    partitions: u32,
    topics: &ViewTopics,
) -> Result<Restored, DataflowError> {
    let consumer = kafka.consumer(&format!("restore_{view}"))?;
    let mut meta = store.view_meta(view)?.unwrap_or_default();
    let mut has_commit = meta.commit_next > 0;

    let mut committed = HashSet::new();
    let mut filter = CommitFilter::new(meta.epoch);
    let mut last: Option<Commit> = None;
    read_range(
        &consumer,
        kafka,
        &topics.commits,
        &[(0, meta.commit_next)],
        |_, offset, msg| {
            let Some(commit) = msg.payload().and_then(|p| Commit::decode(p).ok()) else {
                tracing::warn!(offset, "skipping unreadable commit record");
                return Ok(());
            };
            if filter.accept(&commit) {
                committed.insert(commit.batch);
                meta.commit_next = offset + 1;
                last = Some(commit);
            }
            Ok(())
        },
    )?;
    if let Some(c) = &last {
        has_commit = true;
        meta.epoch = c.batch.epoch;
        meta.batch = c.batch.seq;
        meta.source_offsets = c.source_offsets.clone();
    }

    let mut next: BTreeMap<PartitionId, i64> = BTreeMap::new();
    let mut starts = Vec::new();
    for p in 0..partitions {
        let pid = PartitionId(p);
        let pos = store.partition_meta(view, pid)?.changelog_next;
        next.insert(pid, pos);
        starts.push((p as i32, pos));
    }
    let mut batch = StateBatch::new();
    let mut replayed = 0u64;
    read_range(
        &consumer,
        kafka,
        &topics.changelog,
        &starts,
        |partition, offset, msg| {
            let pid = PartitionId(partition as u32);
            next.insert(pid, offset + 1);
            let batch_id = msg.headers().and_then(|h| {
                h.iter()
                    .find(|h| h.key == BATCH_HEADER)
                    .and_then(|h| h.value.and_then(BatchId::from_bytes))
            });
            let applies = batch_id.is_some_and(|b| committed.contains(&b));
            if applies {
                if let Some((table, key)) = msg.key().and_then(split_changelog_key) {
                    match msg.payload() {
                        Some(value) => batch.put(view, pid, table, key, value),
                        None => batch.delete(view, pid, table, key),
                    }
                    replayed += 1;
                }
            }
            batch.set_partition_meta(
                view,
                pid,
                PartitionMeta {
                    changelog_next: offset + 1,
                },
            );
            if batch.len() >= CHUNK {
                store.write(std::mem::take(&mut batch))?;
            }
            Ok(())
        },
    )?;
    batch.set_view_meta(view, &meta);
    store.write(batch)?;
    for (partition, position) in &next {
        let _span = tracing::debug_span!("partition", partition = partition.0).entered();
        tracing::debug!(changelog_next = position, "partition restored");
    }
    Ok(Restored {
        meta,
        has_commit,
        max_epoch: filter.max_epoch(),
        changelog_next: next,
        replayed,
    })
}

/// Reads each `(partition, from)` of `topic` up to the partition's end offset
/// as of the call, calling `f(partition, offset, message)` in order.
pub(crate) fn read_range(
    consumer: &BaseConsumer,
    kafka: &KafkaConfig,
    topic: &str,
    starts: &[(i32, i64)],
    mut f: impl FnMut(i32, i64, &rdkafka::message::BorrowedMessage<'_>) -> Result<(), DataflowError>,
) -> Result<(), DataflowError> {
    let mut ends = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for &(partition, from) in starts {
        let (low, high) = consumer.fetch_watermarks(topic, partition, kafka.timeout)?;
        let from = from.max(low);
        if from < high {
            ends.insert(partition, high);
            tpl.add_partition_offset(topic, partition, Offset::Offset(from))?;
        }
    }
    if ends.is_empty() {
        return Ok(());
    }
    consumer.assign(&tpl)?;
    let mut last_progress = Instant::now();
    while !ends.is_empty() {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(msg)) => {
                last_progress = Instant::now();
                let (partition, offset) = (msg.partition(), msg.offset());
                let Some(&end) = ends.get(&partition) else {
                    continue;
                };
                if offset < end {
                    f(partition, offset, &msg)?;
                }
                if offset + 1 >= end {
                    ends.remove(&partition);
                }
            }
            Some(Err(e)) => return Err(e.into()),
            None => {
                // A compacted tail may never deliver offset end-1: ask where we are.
                let positions = consumer.position()?;
                ends.retain(|p, end| {
                    !matches!(positions.find_partition(topic, *p).map(|e| e.offset()), Some(Offset::Offset(o)) if o >= *end)
                });
                if last_progress.elapsed() > STALL {
                    return Err(DataflowError::Timeout(STALL));
                }
            }
        }
    }
    consumer.unassign()?;
    Ok(())
}
