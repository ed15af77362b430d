//! A stage: one partitioned, stateful step of a view. Input partition p →
//! operators → state partition p + changelog partition p + commit log
//! partition p, on whichever node placement makes p's active.
//!
//! Every node computes the same placement from the membership it hears
//! ([`crate::placement`]): for each partition, one active and the standbys.
//! The stage thread is the active of its partitions: it reads exactly those
//! input partitions at the positions local state gives; the stage's follower
//! thread ([`crate::follow`]) replays the others it keeps standbys of.
//! Becoming the active restores the partition from where local state stands
//! (a standby is at most a few records behind; see [`crate::restore`]);
//! letting go happens between batches, so no record of it is written after.
//!
//! Exactly once, per partition:
//! - an input record below the partition's `input_next` was applied already;
//! - an input record whose upstream position is below the partition's mark
//!   for that upstream partition is a duplicate (a sender that died
//!   mid-batch wrote it again) and is dropped;
//! - a batch writes its changelog records, then one commit per partition it
//!   touched, each naming the commit it builds on; it applies to RocksDB only
//!   where its commit landed right after that one. Where it did not, another
//!   writer (a node that took the partition over, or one that still thinks it
//!   owns it) wrote in between: the partition is restored again from the log,
//!   whose commit chain says which of the two writers won.

use common::codec::decode_row;
use common::PartitionId;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use storage::changelog::{changelog_key, ranges, BatchId, Commit};
use storage::{PartitionMeta, Stage, StateBatch};

use crate::envelope::{Envelope, Kind, Position};
use crate::error::DataflowError;
use crate::follow::Wanted;
use crate::operator::resolve::Resolve;
use crate::operator::{Operators, RecordError, SourceRecord};
use crate::placement::{place_all, Holding, Member};
use crate::restore::{restore, Target};
use crate::state::RowChange;
use crate::status::{Role, TaskState};
use crate::task::{poll_batch, send_routed, AssignPacer, BatchSize, Counts, Outbox, StepEnv};

/// How often a stage recomputes placement from what membership says.
const REPLAN_EVERY: Duration = Duration::from_millis(100);

pub struct StageTask {
    pub env: StepEnv,
    pub stage: Stage,
    /// The partitions this node keeps standbys of, shared with the follower.
    pub(crate) wanted: Arc<Wanted>,
}

/// The step name of a stage, in logs, group names and statuses.
pub fn step(stage: Stage) -> &'static str {
    match stage {
        Stage::View => "view",
        Stage::Resolve => "resolve",
    }
}

enum Ops {
    View { ops: Operators, resolves: bool },
    Resolve(Resolve),
}

impl StageTask {
    fn input_topic(&self) -> &str {
        match self.stage {
            Stage::View if self.env.spec.resolves() => &self.env.topics.regroup,
            _ => &self.env.topics.repartition,
        }
    }

    pub fn run_once(&self) -> Result<(), DataflowError> {
        let def = &self.env.spec.def;
        let parts = def.partitions;
        let log = self.env.topics.stage(self.stage);
        let input = self.input_topic();
        let mut topics = vec![
            (input, parts, false),
            (log.changelog.as_str(), parts, true),
            (log.commits.as_str(), parts, false),
        ];
        if self.stage == Stage::Resolve {
            topics.push((&self.env.topics.regroup, parts, false));
        }
        self.env.kafka.create_topics(&topics)?;
        let group_name = self
            .env
            .kafka
            .view_group(self.env.spec.id, &def.name, step(self.stage));
        let ops = match (self.stage, &def.plan) {
            (Stage::Resolve, planner::plan::ViewPlan::Aggregate(plan)) => {
                Ops::Resolve(Resolve::new(self.env.spec.id, parts, plan.clone()))
            }
            _ => Ops::View {
                ops: Operators::new(self.env.spec.id, def, &self.env.spec.source),
                resolves: self.env.spec.resolves(),
            },
        };
        let mut run = Run {
            task: self,
            input,
            data: self.env.kafka.consumer(&format!("{group_name}_data"))?,
            restorer: self.env.kafka.consumer(&format!("{group_name}_restore"))?,
            producer: self.env.kafka.producer()?,
            epoch: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .unwrap_or(0),
            seq: 0,
            owned: BTreeMap::new(),
            ops,
            pacer: AssignPacer::default(),
            size: BatchSize::default(),
            unsynced: BTreeSet::new(),
        };
        let result = run.run();
        // Drop every status of this stage but the follower's own: the owned
        // partitions', a take-over's cut short by an error, and a standby's
        // carried over into a take-over.
        for ((stage, p), s) in self.env.status.replicas() {
            if stage == self.stage && (s.role != Role::Standby || !self.wanted.follows(p.0 as i32))
            {
                self.env.status.remove_partition(stage, p);
            }
        }
        result
    }

    fn release(&self, p: i32) {
        self.env
            .status
            .remove_partition(self.stage, PartitionId(p as u32));
    }

    fn report(&self, p: i32, role: Role, applied: i64, end: i64, oldest_unapplied_ms: Option<i64>) {
        self.env.status.set_partition(
            self.stage,
            PartitionId(p as u32),
            role,
            applied,
            end,
            oldest_unapplied_ms,
        );
    }

    /// Where each partition of this stage goes, as this node sees the
    /// cluster now: (the partitions to be the active of, those to keep
    /// standbys of).
    fn placement(&self) -> (BTreeSet<i32>, BTreeSet<i32>) {
        let env = &self.env;
        let mut members = env.roster.others(env.spec.id, self.stage);
        let holds = env
            .status
            .replicas()
            .into_iter()
            .filter(|((stage, _), _)| *stage == self.stage)
            .map(|((_, p), s)| {
                (
                    p.0,
                    Holding {
                        role: s.role,
                        lag_records: s.lag_records(),
                    },
                )
            })
            .collect();
        members.push(Member {
            node: env.node.clone(),
            holds,
        });
        let (mut active, mut standby) = (BTreeSet::new(), BTreeSet::new());
        let def = &env.spec.def;
        let placed = place_all(
            env.spec.id,
            self.stage,
            def.partitions,
            def.standbys,
            &members,
        );
        for (p, placed) in placed.into_iter().enumerate() {
            if placed.active.as_ref() == Some(&env.node) {
                active.insert(p as i32);
            } else if placed.standbys.contains(&env.node) {
                standby.insert(p as i32);
            }
        }
        (active, standby)
    }
}

/// One run of a stage: its clients and the partitions it owns.
struct Run<'a> {
    task: &'a StageTask,
    input: &'a str,
    data: BaseConsumer,
    restorer: BaseConsumer,
    producer: FutureProducer,
    /// Unique to this run: with `seq`, names each batch.
    epoch: u64,
    seq: u64,
    owned: BTreeMap<i32, PartitionMeta>,
    ops: Ops,
    pacer: AssignPacer,
    size: BatchSize,
    /// Owned partitions whose position in the data consumer is not the one
    /// their state gives yet (taken over, or restored after a fence, since
    /// the last assignment): their records are ignored until it is.
    unsynced: BTreeSet<i32>,
}

impl Run<'_> {
    fn run(&mut self) -> Result<(), DataflowError> {
        let env = &self.task.env;
        while !env.roster.ready() {
            if env.cancelled() {
                return Ok(());
            }
            std::thread::park_timeout(Duration::from_millis(50));
        }
        self.replan()?;
        env.status
            .set_step(step(self.task.stage), TaskState::Running);
        let mut planned = Instant::now();
        while !env.cancelled() {
            if planned.elapsed() >= REPLAN_EVERY {
                self.replan()?;
                planned = Instant::now();
            }
            if self.pacer.due() {
                self.reassign()?;
                self.unsynced.clear();
            }
            if self.owned.is_empty() {
                std::thread::park_timeout(REPLAN_EVERY);
            } else {
                self.batch()?;
            }
        }
        Ok(())
    }

    /// Follows placement: lets go of partitions another node should be the
    /// active of, hands the follower its standbys, takes over the rest.
    fn replan(&mut self) -> Result<(), DataflowError> {
        let (active, standby) = self.task.placement();
        let leaving: Vec<i32> = self
            .owned
            .keys()
            .copied()
            .filter(|p| !active.contains(p))
            .collect();
        for p in &leaving {
            tracing::info!(partition = p, "handing the partition over");
            let meta = self.owned.remove(p);
            match meta.filter(|_| standby.contains(p)) {
                // Staying as a standby: the state stands at this node's last
                // commit, the log's end as of now (it was the writer), and
                // answers reads as a standby caught up now whose end is not
                // known yet: its lag grows from now until the follower reads
                // the new active's records.
                Some(meta) => self.task.env.status.set_handed_over(
                    self.task.stage,
                    PartitionId(*p as u32),
                    meta.changelog_next,
                ),
                None => self.task.release(*p),
            }
        }
        let taking: BTreeSet<i32> = active
            .into_iter()
            .filter(|p| !self.owned.contains_key(p))
            .collect();
        self.task.wanted.set(standby, &taking);
        for p in &taking {
            self.take_over(*p)?;
        }
        if !leaving.is_empty() {
            self.pacer.request();
        }
        Ok(())
    }

    /// Restores partition `p` from where local state stands and starts
    /// owning it; its records are read once the data consumer is assigned
    /// again at the restored position.
    fn take_over(&mut self, p: i32) -> Result<(), DataflowError> {
        let _span = tracing::info_span!("partition", partition = p).entered();
        let task = self.task;
        let started = Instant::now();
        let target = Target {
            view: task.env.spec.id,
            stage: task.stage,
            partition: PartitionId(p as u32),
            topics: task.env.topics.stage(task.stage),
        };
        let restored = restore(
            &task.env.kafka,
            &self.restorer,
            &task.env.store,
            &target,
            |applied, end, oldest, at_commit| {
                let id = PartitionId(p as u32);
                task.env
                    .status
                    .set_restoring(task.stage, id, applied, end, oldest, at_commit)
            },
        )?;
        tracing::info!(
            replayed = restored.replayed,
            commits = restored.commits,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "partition taken over"
        );
        let end = restored.meta.changelog_next;
        task.env
            .status
            .update(|s| s.restored_records += restored.replayed);
        task.report(p, Role::Active, end, end, None);
        self.owned.insert(p, restored.meta);
        self.unsynced.insert(p);
        self.pacer.request();
        self.settle(p)
    }

    /// Settles what a writer that died mid-batch left in the changelog past
    /// the last accepted commit: an empty commit ending at the changelog's end
    /// tells every standby those records never count (else a standby would
    /// count them as lag until the partition's next batch, which on a quiet
    /// partition may never come).
    fn settle(&mut self, p: i32) -> Result<(), DataflowError> {
        let task = self.task;
        let log = task.env.topics.stage(task.stage);
        let (_, end) = self
            .restorer
            .fetch_watermarks(&log.changelog, p, task.env.kafka.timeout)?;
        let meta = self.owned.get_mut(&p).expect("owned partition");
        if end <= meta.changelog_next {
            return Ok(());
        }
        tracing::info!(
            partition = p,
            from = meta.changelog_next,
            to = end,
            "settling changelog records no commit names"
        );
        // A batch with no rows whose commit ends at the log's end: it lands
        // like any other, or finds this node fenced and restores.
        meta.changelog_next = end;
        self.commit(BTreeSet::from([p]), Counts::default())
    }

    /// Points the data consumer at the owned partitions, each where its
    /// state stands.
    fn reassign(&mut self) -> Result<(), DataflowError> {
        let mut tpl = TopicPartitionList::new();
        for (p, meta) in &self.owned {
            tpl.add_partition_offset(self.input, *p, Offset::Offset(meta.input_next))?;
        }
        self.data.assign(&tpl)?;
        Ok(())
    }

    /// Polls and applies up to one batch, then commits it.
    fn batch(&mut self) -> Result<(), DataflowError> {
        let mut out = Outbox::default();
        let mut counts = Counts::default();
        let mut touched = BTreeSet::new();
        let started = Instant::now();
        let (task, owned, ops, producer, unsynced) = (
            self.task,
            &mut self.owned,
            &mut self.ops,
            &self.producer,
            &self.unsynced,
        );
        let n = poll_batch(&self.data, &task.env.cancel, self.size.cap(), |msg| {
            let p = msg.partition();
            if unsynced.contains(&p) {
                return Ok(()); // read from a position of before: wait for the reassignment
            }
            let Some(meta) = owned.get_mut(&p) else {
                return Ok(());
            };
            if msg.offset() < meta.input_next {
                return Ok(());
            }
            meta.input_next = msg.offset() + 1;
            touched.insert(p);
            let envelope = match msg.payload().map(Envelope::decode) {
                Some(Ok(envelope)) => envelope,
                _ => {
                    tracing::warn!(
                        partition = p,
                        offset = msg.offset(),
                        "skipping unreadable envelope"
                    );
                    return Ok(());
                }
            };
            let next = meta
                .upstream
                .entry(envelope.upstream.partition)
                .or_insert(0);
            if envelope.upstream.offset < *next {
                return Ok(()); // a duplicate of a record already applied
            }
            *next = envelope.upstream.offset + 1;
            apply(task, ops, producer, msg, envelope, &mut out, &mut counts)
        })?;
        if touched.is_empty() {
            return Ok(());
        }
        out.finish()?;
        self.commit(touched, counts)?;
        self.size.took(n, started.elapsed());
        Ok(())
    }

    fn commit(&mut self, touched: BTreeSet<i32>, counts: Counts) -> Result<(), DataflowError> {
        let task = self.task;
        let log = task.env.topics.stage(task.stage);
        self.seq += 1;
        let batch = BatchId {
            epoch: self.epoch,
            seq: self.seq,
        };
        let mut changes = Vec::new();
        match &mut self.ops {
            Ops::View { ops, .. } => changes = ops.drain(),
            Ops::Resolve(r) => r.drain_into(&mut changes),
        }
        let mut out = Outbox::default();
        for c in &changes {
            let key = changelog_key(c.table, &c.key);
            let mut record = FutureRecord::<[u8], [u8]>::to(&log.changelog)
                .partition(c.partition.0 as i32)
                .key(key.as_slice());
            if let Some(v) = &c.value {
                record = record.payload(v.as_slice());
            }
            out.send(&self.producer, record)?;
        }
        // Where each partition's records landed: the commit names them.
        let mut landed: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
        for d in out.finish()? {
            landed.entry(d.partition).or_default().push(d.offset);
        }
        let records: BTreeMap<i32, Vec<(i64, i64)>> = landed
            .into_iter()
            .map(|(p, mut offsets)| {
                offsets.sort_unstable();
                (p, ranges(offsets))
            })
            .collect();
        let ends: BTreeMap<i32, i64> = records
            .iter()
            .filter_map(|(p, r)| Some((*p, r.last()?.1)))
            .collect();
        let parts: Vec<i32> = touched
            .into_iter()
            .filter(|p| self.owned.contains_key(p))
            .collect();
        let mut out = Outbox::default();
        let mut payloads = Vec::with_capacity(parts.len());
        for p in &parts {
            let meta = &self.owned[p];
            payloads.push(
                Commit {
                    batch,
                    prev: meta.last_commit,
                    changelog_end: ends.get(p).copied().unwrap_or(meta.changelog_next),
                    records: records.get(p).cloned().unwrap_or_default(),
                    input_next: meta.input_next,
                    upstream: meta.upstream.clone(),
                }
                .encode(),
            );
        }
        for (p, payload) in parts.iter().zip(&payloads) {
            let record = FutureRecord::<[u8], [u8]>::to(&log.commits)
                .partition(*p)
                .payload(payload.as_slice());
            out.send(&self.producer, record)?;
        }
        let delivered = out.finish()?;

        let mut state = StateBatch::new();
        let mut fenced = BTreeSet::new();
        for (p, d) in parts.iter().zip(&delivered) {
            let meta = self.owned.get_mut(p).expect("owned partition");
            if d.offset != meta.commit_next {
                fenced.insert(*p);
                continue;
            }
            meta.last_commit = d.offset;
            meta.commit_next = d.offset + 1;
            meta.changelog_next = ends.get(p).copied().unwrap_or(meta.changelog_next);
            state.set_partition_meta(task.env.spec.id, task.stage, PartitionId(*p as u32), meta);
        }
        for c in changes {
            if fenced.contains(&(c.partition.0 as i32)) {
                continue;
            }
            put_change(&mut state, task, c);
        }
        task.env.store.write(state)?;
        task.env.status.update(|s| {
            s.batches += 1;
            s.records += counts.applied;
            s.skipped += counts.skipped;
        });
        for p in &parts {
            if !fenced.contains(p) {
                let at = self.owned[p].changelog_next;
                task.report(*p, Role::Active, at, at, None);
            }
        }
        if fenced.is_empty() {
            return Ok(());
        }
        for p in fenced {
            tracing::warn!(
                partition = p,
                "another node wrote this partition's commit log; restoring it from the log"
            );
            self.owned.remove(&p);
            self.take_over(p)?;
        }
        Ok(())
    }
}

fn put_change(state: &mut StateBatch, task: &StageTask, c: RowChange) {
    match &c.value {
        Some(v) => state.put(task.env.spec.id, c.partition, c.table, &c.key, v),
        None => state.delete(task.env.spec.id, c.partition, c.table, &c.key),
    }
}

/// Applies one input record of partition `msg.partition()`.
fn apply(
    task: &StageTask,
    ops: &mut Ops,
    producer: &FutureProducer,
    msg: &BorrowedMessage<'_>,
    envelope: Envelope,
    out: &mut Outbox,
    counts: &mut Counts,
) -> Result<(), DataflowError> {
    let store = &task.env.store;
    let primary_key = || -> Option<common::Value> {
        msg.key()
            .and_then(|k| decode_row(k).ok())
            .and_then(|r| r.into_iter().next())
    };
    match ops {
        Ops::View { ops, resolves } => {
            let result: Result<(), RecordError> = match (envelope.kind, envelope.row) {
                (Kind::Insert, Some(row)) if *resolves => ops.apply_diff(store, &row, 1)?,
                (Kind::Retract, Some(row)) => ops.apply_diff(store, &row, -1)?,
                (kind, row) => ops.apply(
                    store,
                    SourceRecord {
                        partition: envelope.source.partition,
                        offset: envelope.source.offset,
                        key: matches!(kind, Kind::Upsert | Kind::Delete)
                            .then(primary_key)
                            .flatten(),
                        row,
                    },
                )?,
            };
            match result {
                Ok(()) => counts.applied += 1,
                Err(e) => {
                    counts.skipped += 1;
                    task.env.record_bad(
                        envelope.source,
                        format!("view {}: {e}", task.env.spec.def.name),
                        crate::status::now_ms(),
                    )?;
                }
            }
        }
        Ops::Resolve(resolve) => {
            let key = msg.key().unwrap_or_default().to_vec();
            let p = msg.partition();
            let changes = resolve.apply(store, key, envelope.row)?;
            for (i, routed) in changes.into_iter().enumerate() {
                // Two outputs per input at most: both positions stay in order.
                let upstream = Position {
                    partition: p,
                    offset: msg.offset() * 2 + i as i64,
                };
                send_routed(
                    out,
                    producer,
                    &task.env.topics.regroup,
                    task.env.spec.def.partitions,
                    routed,
                    upstream,
                    envelope.source,
                )?;
            }
            counts.applied += 1;
        }
    }
    Ok(())
}
