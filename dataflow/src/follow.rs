//! Standbys: replaying the changelog of stage partitions another node is the
//! active of, continuously, into this node's RocksDB.
//!
//! One follower thread per stage reads the commit log and the changelog of
//! every partition the stage hands it ([`Wanted`]), judging commits by the
//! same chain rule as a restore (`storage::changelog::CommitChain`), and
//! applies each accepted commit's records as soon as the changelog up to its
//! end has arrived — one RocksDB write for the records and the positions, as
//! the active wrote them. A standby is therefore always at the state of some
//! accepted commit, and becoming the active only needs the records written
//! since (`crate::restore` from the local positions).
//!
//! The stage thread takes a partition away under [`Wanted`]'s lock, which
//! the follower holds while it writes: once `Wanted::set` returns, the
//! follower never writes that partition again.

use common::PartitionId;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use storage::{PartitionMeta, Stage, StateBatch};

use crate::error::DataflowError;
use crate::replay::{Record, ReplayBuffer};
use crate::status::{Role, TaskState, ViewStatus};
use crate::task::{AssignPacer, StepEnv};

/// Records read per poll round before applying what is ready.
const ROUND: usize = 20_000;

/// The partitions a stage's follower replays, each with the generation it
/// was handed over in (a partition taken away and handed back is reloaded
/// from the store, where the stage left it).
pub(crate) struct Wanted {
    stage: Stage,
    status: Arc<ViewStatus>,
    inner: Mutex<(u64, BTreeMap<i32, u64>)>,
}

impl Wanted {
    pub(crate) fn new(stage: Stage, status: Arc<ViewStatus>) -> Wanted {
        Wanted {
            stage,
            status,
            inner: Mutex::new((0, BTreeMap::new())),
        }
    }

    /// Makes `parts` the followed partitions. A partition dropped here is
    /// never written by the follower again, and its standby status goes —
    /// unless it is in `taking`: the stage is about to become its active,
    /// and until its restore starts the standby's state (at an accepted
    /// commit, no longer updated) still answers reads within its lag.
    pub(crate) fn set(&self, parts: impl IntoIterator<Item = i32>, taking: &BTreeSet<i32>) {
        let mut inner = self.inner.lock().expect("wanted lock");
        let (gen, old) = &mut *inner;
        let mut new = BTreeMap::new();
        for p in parts {
            let g = match old.get(&p) {
                Some(g) => *g,
                None => {
                    *gen += 1;
                    *gen
                }
            };
            new.insert(p, g);
        }
        for p in old
            .keys()
            .filter(|p| !new.contains_key(p) && !taking.contains(p))
        {
            let id = PartitionId(*p as u32);
            if self
                .status
                .replica(self.stage, id)
                .is_some_and(|s| s.role == Role::Standby)
            {
                self.status.remove_partition(self.stage, id);
            }
        }
        *old = new;
    }

    /// Whether partition `p` is followed.
    pub(crate) fn follows(&self, p: i32) -> bool {
        self.lock().1.contains_key(&p)
    }

    fn lock(&self) -> MutexGuard<'_, (u64, BTreeMap<i32, u64>)> {
        self.inner.lock().expect("wanted lock")
    }

    fn snapshot(&self) -> BTreeMap<i32, u64> {
        self.lock().1.clone()
    }
}

/// The step name of a stage's follower.
pub fn step(stage: Stage) -> &'static str {
    match stage {
        Stage::View => "view-standby",
        Stage::Resolve => "resolve-standby",
    }
}

/// One followed partition: its replay, and how the consumer reads it.
struct Tail {
    generation: u64,
    /// Whether the consumer reads this tail from its positions yet (it does
    /// from the first assignment after the tail was made).
    synced: bool,
    /// The changelog's end as asked of the broker when the tail was made:
    /// the statistics may still carry an older one from a previous time the
    /// partition was followed.
    end_floor: Option<i64>,
    replay: ReplayBuffer,
    /// Timestamp of the last changelog record read: any record not read yet
    /// was written after it.
    last_read_ms: Option<i64>,
}

impl Tail {
    fn new(generation: u64, meta: PartitionMeta) -> Tail {
        Tail {
            generation,
            synced: false,
            end_floor: None,
            replay: ReplayBuffer::new(meta),
            last_read_ms: None,
        }
    }

    fn on_record(&mut self, msg: &rdkafka::message::BorrowedMessage<'_>) {
        let timestamp_ms = msg.timestamp().to_millis();
        let read = self.replay.on_record(Record {
            offset: msg.offset(),
            key: msg.key().unwrap_or_default().to_vec(),
            value: msg.payload().map(<[u8]>::to_vec),
            timestamp_ms,
        });
        if read {
            self.last_read_ms = timestamp_ms.or(self.last_read_ms);
        }
    }

    /// Moves every accepted commit whose records have all arrived into
    /// `batch`.
    fn apply_ready(&mut self, env: &StepEnv, stage: Stage, p: PartitionId, batch: &mut StateBatch) {
        let view = env.spec.id;
        let applied = self.replay.apply_ready(|table, key, value| match value {
            Some(v) => batch.put(view, p, table, key, v),
            None => batch.delete(view, p, table, key),
        });
        if let Some(meta) = applied {
            batch.set_partition_meta(view, stage, p, meta);
        }
    }
}

/// Replays the partitions `wanted` names until the view stops.
pub(crate) fn run(env: &StepEnv, stage: Stage, wanted: &Wanted) -> Result<(), DataflowError> {
    let log = env.topics.stage(stage);
    let parts = env.spec.def.partitions;
    env.kafka.create_topics(&[
        (log.changelog.as_str(), parts, true),
        (log.commits.as_str(), parts, false),
    ])?;
    let group = env
        .kafka
        .view_group(env.spec.id, &env.spec.def.name, step(stage));
    let consumer = env.kafka.watermarked_consumer(&group)?;
    env.status.set_step(step(stage), TaskState::Running);
    let mut tails: BTreeMap<i32, Tail> = BTreeMap::new();
    let mut pacer = AssignPacer::default();
    while !env.cancelled() {
        let want = wanted.snapshot();
        let current: BTreeMap<i32, u64> = tails.iter().map(|(p, t)| (*p, t.generation)).collect();
        if want != current {
            tails.retain(|p, t| want.get(p) == Some(&t.generation));
            for (p, generation) in &want {
                if !tails.contains_key(p) {
                    let meta =
                        env.store
                            .partition_meta(env.spec.id, stage, PartitionId(*p as u32))?;
                    tracing::info!(
                        partition = p,
                        from = meta.changelog_next,
                        "following as a standby"
                    );
                    let mut tail = Tail::new(*generation, meta);
                    tail.end_floor = consumer
                        .fetch_watermarks(&log.changelog, *p, env.kafka.timeout)
                        .map(|(_, high)| high)
                        .ok();
                    tails.insert(*p, tail);
                }
            }
            pacer.request();
        }
        if pacer.due() {
            assign(&consumer, log, &tails)?;
            tails.values_mut().for_each(|t| t.synced = true);
        }
        if tails.is_empty() {
            std::thread::park_timeout(Duration::from_millis(100));
            continue;
        }
        let mut wait = Duration::from_millis(100);
        for _ in 0..ROUND {
            let msg = match consumer.poll(wait) {
                None => break,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "standby consumer error");
                    break;
                }
                Some(Ok(msg)) => msg,
            };
            wait = Duration::ZERO;
            let Some(tail) = tails.get_mut(&msg.partition()).filter(|t| t.synced) else {
                continue; // not followed, or read from a position of before
            };
            if msg.topic() == log.commits {
                tail.replay.on_commit(msg.offset(), msg.payload());
            } else {
                tail.on_record(&msg);
            }
        }
        let held = wanted.lock();
        let mut batch = StateBatch::new();
        for (p, tail) in tails.iter_mut() {
            if held.1.get(p) != Some(&tail.generation) {
                continue; // taken away meanwhile: the stage owns it now
            }
            tail.apply_ready(env, stage, PartitionId(*p as u32), &mut batch);
        }
        if !batch.is_empty() {
            env.store.write(batch)?;
        }
        for (p, tail) in &tails {
            if held.1.get(p) != Some(&tail.generation) {
                continue;
            }
            let end = match (tail.end_floor, consumer.context().high(&log.changelog, *p)) {
                (Some(floor), high) => floor
                    .max(high.unwrap_or(0))
                    .max(tail.replay.changelog_read()),
                // The end is unknown, and a replica that cannot see the end
                // cannot claim to have reached it.
                (None, _) => tail.replay.changelog_read() + 1,
            };
            let id = PartitionId(*p as u32);
            // The oldest record not applied, when it has been read; else
            // every record missing was written after the last one read (or
            // after the replica was last caught up, whichever is later).
            let oldest = match tail.replay.oldest_unsettled() {
                Some(r) => r.timestamp_ms,
                None => tail.last_read_ms.map(|read| {
                    let caught_up = env
                        .status
                        .replica(stage, id)
                        .and_then(|s| s.caught_up_at_ms);
                    caught_up.map_or(read, |c| read.max(c))
                }),
            };
            env.status
                .set_partition(stage, id, Role::Standby, tail.replay.settled(), end, oldest);
        }
        drop(held);
    }
    wanted.set([], &BTreeSet::new());
    Ok(())
}

/// Points the consumer at each tail's commit log and changelog, where it
/// has read up to.
fn assign(
    consumer: &BaseConsumer<crate::kafka::Watermarks>,
    log: &crate::kafka::StageTopics,
    tails: &BTreeMap<i32, Tail>,
) -> Result<(), DataflowError> {
    let mut tpl = TopicPartitionList::new();
    for (p, t) in tails {
        tpl.add_partition_offset(&log.commits, *p, Offset::Offset(t.replay.commit_read()))?;
        tpl.add_partition_offset(
            &log.changelog,
            *p,
            Offset::Offset(t.replay.changelog_read()),
        )?;
    }
    consumer.assign(&tpl)?;
    Ok(())
}
