//! The view task: source consumer → decode → operators → changelog + commit
//! → RocksDB, one batch at a time, on a thread of its own.
//!
//! Invariant (exactly once): a batch is written to the changelog, then its
//! commit record, then — only after both are acknowledged — to RocksDB with
//! the source offsets it covers. A crash before the commit leaves an
//! uncommitted batch that restore ignores; a crash after it leaves a commit
//! that restore applies from the changelog. Either way the source is re-read
//! from exactly the offsets the state reflects.

use common::{PartitionId, Value, ViewId};
use futures::future::join_all;
use planner::plan::{SourceDef, StartFrom, ViewDef};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::future_producer::Delivery;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use storage::changelog::{changelog_key, BatchId, Commit, BATCH_HEADER};
use storage::{PartitionMeta, SourceErrorRecord, StateBatch, StateStore, ViewMeta};

use crate::decode::{decode_json, decode_key, BadRecord};
use crate::error::DataflowError;
use crate::kafka::{KafkaConfig, ViewTopics};
use crate::operator::{Operators, SourceRecord};
use crate::restore::restore;
use crate::status::{TaskState, ViewStatus};

/// Everything a view task needs to know about its view.
#[derive(Debug, Clone)]
pub struct ViewSpec {
    pub id: ViewId,
    pub def: ViewDef,
    pub source: SourceDef,
}

/// A batch closes at this many records or this long after its first record.
/// Longer batches fold more updates of a hot key into one changelog record;
/// the window bounds how stale a read can be under load.
const MAX_BATCH: usize = 50_000;
const BATCH_WINDOW: Duration = Duration::from_millis(100);
/// Pauses between runs of a failed task: doubling from the first to the last.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

pub struct ViewTask {
    spec: ViewSpec,
    kafka: KafkaConfig,
    store: Arc<StateStore>,
    topics: ViewTopics,
    status: Arc<ViewStatus>,
    cancel: Arc<AtomicBool>,
}

impl ViewTask {
    pub fn new(
        spec: ViewSpec,
        kafka: KafkaConfig,
        store: Arc<StateStore>,
        status: Arc<ViewStatus>,
        cancel: Arc<AtomicBool>,
    ) -> ViewTask {
        let topics = kafka.view_topics(spec.id, &spec.def.name);
        ViewTask {
            spec,
            kafka,
            store,
            topics,
            status,
            cancel,
        }
    }

    /// Runs the task until cancelled. A run that fails (the brokers gone
    /// longer than a request may wait, say) is started again after a capped,
    /// growing pause: each run restores from the last commit, so a restart
    /// neither loses nor repeats a record.
    pub fn run(self) {
        let mut pause = RETRY_FIRST;
        loop {
            let started = Instant::now();
            match self.run_once() {
                Ok(()) => {
                    self.status.set_state(TaskState::Stopped);
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, retry_in_ms = pause.as_millis() as u64, "view task failed");
                    self.status.set_state(TaskState::Failed(e.to_string()));
                }
            }
            // A run that lasted a while was healthy: start the backoff over.
            if started.elapsed() > RETRY_MAX {
                pause = RETRY_FIRST;
            }
            if self.cancelled_within(pause) {
                self.status.set_state(TaskState::Stopped);
                return;
            }
            pause = (pause * 2).min(RETRY_MAX);
            self.status.set_state(TaskState::Restoring);
        }
    }

    /// Waits up to `pause`, returning early (true) when the task is cancelled.
    fn cancelled_within(&self, pause: Duration) -> bool {
        let deadline = Instant::now() + pause;
        while Instant::now() < deadline {
            if self.cancel.load(Ordering::Relaxed) {
                return true;
            }
            std::thread::park_timeout(Duration::from_millis(50).min(deadline - Instant::now()));
        }
        self.cancel.load(Ordering::Relaxed)
    }

    fn run_once(&self) -> Result<(), DataflowError> {
        let def = &self.spec.def;
        self.kafka.create_topics(&[
            (&self.topics.changelog, def.partitions, true),
            (&self.topics.commits, 1, false),
        ])?;
        let started = Instant::now();
        let restored = restore(
            &self.kafka,
            &self.store,
            self.spec.id,
            def.partitions,
            &self.topics,
        )?;
        tracing::info!(
            replayed = restored.replayed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "restored from changelog"
        );
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        // Unique per run, and newer than every epoch that ever committed.
        let epoch = restored
            .max_epoch
            .max(restored.meta.epoch)
            .saturating_add(1)
            .max(now_ms);
        let source_partitions = self
            .kafka
            .partition_count(&self.spec.source.topic)?
            .ok_or_else(|| DataflowError::MissingTopic(self.spec.source.topic.clone()))?;
        let consumer = self.kafka.consumer(&format!("view_{}", self.spec.id))?;
        let producer = self.kafka.producer()?;
        let mut writer = Writer {
            spec: &self.spec,
            kafka: &self.kafka,
            topics: &self.topics,
            store: &self.store,
            producer: &producer,
            status: &self.status,
            epoch,
            seq: 0,
            meta: restored.meta,
        };
        if !restored.has_commit {
            let offsets = writer.start_offsets(&consumer, source_partitions)?;
            writer.meta.source_offsets = offsets;
            writer.commit(Vec::new())?;
        }
        let mut tpl = TopicPartitionList::new();
        for p in 0..source_partitions as i32 {
            let from = writer
                .meta
                .source_offsets
                .get(&p)
                .copied()
                .map_or(Offset::Beginning, Offset::Offset);
            tpl.add_partition_offset(&self.spec.source.topic, p, from)?;
        }
        consumer.assign(&tpl)?;
        self.status.update(|p| {
            p.applied = restored.changelog_next.clone();
            p.source_offsets = writer.meta.source_offsets.clone();
            p.restored_records = restored.replayed;
        });
        self.status.set_state(TaskState::Running);
        tracing::info!(epoch, "view running");

        let mut ops = Operators::new(self.spec.id, def, &self.spec.source);
        while !self.cancel.load(Ordering::Relaxed) {
            let advanced = self.poll_batch(&consumer, &mut ops, &mut writer)?;
            if advanced {
                writer.commit(ops.drain())?;
            }
        }
        Ok(())
    }

    /// Polls and applies up to one batch of records; true when any arrived.
    fn poll_batch(
        &self,
        consumer: &BaseConsumer,
        ops: &mut Operators,
        w: &mut Writer<'_>,
    ) -> Result<bool, DataflowError> {
        let mut first: Option<Instant> = None;
        let mut n = 0usize;
        let mut counts = Counts::default();
        while n < MAX_BATCH {
            let timeout = match first {
                None => Duration::from_millis(100),
                Some(t) => BATCH_WINDOW.saturating_sub(t.elapsed()),
            };
            let msg = match consumer.poll(timeout) {
                None => break,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "source consumer error");
                    break;
                }
                Some(Ok(msg)) => msg,
            };
            first.get_or_insert_with(Instant::now);
            n += 1;
            self.apply_message(&msg, ops, w, &mut counts)?;
            if self.cancel.load(Ordering::Relaxed) {
                break;
            }
        }
        self.status.update(|p| {
            p.records += counts.applied;
            p.skipped += counts.skipped;
        });
        Ok(n > 0)
    }

    fn apply_message(
        &self,
        msg: &BorrowedMessage<'_>,
        ops: &mut Operators,
        w: &mut Writer<'_>,
        counts: &mut Counts,
    ) -> Result<(), DataflowError> {
        let (partition, offset) = (msg.partition(), msg.offset());
        let next = w.meta.source_offsets.entry(partition).or_insert(0);
        if offset < *next {
            return Ok(()); // already in the state
        }
        *next = offset + 1;
        let outcome = match self.decode(msg) {
            Err(bad) => Err(bad.to_string()),
            Ok(rec) => ops
                .apply(&self.store, rec)?
                .map_err(|e| format!("view {}: {e}", self.spec.def.name)),
        };
        match outcome {
            Ok(()) => counts.applied += 1,
            Err(reason) => {
                tracing::debug!(partition, offset, %reason, "skipping bad record");
                self.store.record_source_error(&SourceErrorRecord {
                    source: self.spec.source.name.clone(),
                    partition,
                    offset,
                    reason,
                    seen_at_ms: msg.timestamp().to_millis().unwrap_or(0),
                })?;
                counts.skipped += 1;
            }
        }
        Ok(())
    }

    fn decode(&self, msg: &BorrowedMessage<'_>) -> Result<SourceRecord, BadRecord> {
        let source = &self.spec.source;
        let mut row = msg
            .payload()
            .map(|bytes| decode_json(source, bytes))
            .transpose()?;
        let key = match source.primary_key {
            None => None,
            Some(pk) => {
                let from_value = row.as_ref().map(|r| r[pk].clone()).filter(|v| !v.is_null());
                let key = match (msg.key(), from_value) {
                    (Some(k), _) => decode_key(source, Some(k))?,
                    (None, Some(v)) => v,
                    (None, None) => {
                        return Err(BadRecord::MissingKey(source.columns[pk].name.clone()))
                    }
                };
                if let Some(r) = row.as_mut() {
                    r[pk] = key.clone();
                }
                Some(key)
            }
        };
        if key.is_none() && row.is_none() {
            return Err(BadRecord::NotAnObject("null"));
        }
        Ok(SourceRecord {
            partition: msg.partition(),
            offset: msg.offset(),
            key,
            row,
        })
    }
}

/// Records applied and skipped in the current batch.
#[derive(Default)]
struct Counts {
    applied: u64,
    skipped: u64,
}

/// Writes batches: changelog, then commit, then RocksDB.
struct Writer<'a> {
    spec: &'a ViewSpec,
    kafka: &'a KafkaConfig,
    topics: &'a ViewTopics,
    store: &'a StateStore,
    producer: &'a FutureProducer,
    status: &'a ViewStatus,
    epoch: u64,
    seq: u64,
    meta: ViewMeta,
}

impl Writer<'_> {
    /// The offsets a new view starts from, per its source's `start` option.
    fn start_offsets(
        &self,
        consumer: &BaseConsumer,
        partitions: u32,
    ) -> Result<BTreeMap<i32, i64>, DataflowError> {
        (0..partitions as i32)
            .map(|p| {
                let (low, high) =
                    consumer.fetch_watermarks(&self.spec.source.topic, p, self.kafka.timeout)?;
                Ok((
                    p,
                    if self.spec.source.start == StartFrom::Latest {
                        high
                    } else {
                        low
                    },
                ))
            })
            .collect()
    }

    fn commit(&mut self, changes: Vec<crate::state::RowChange>) -> Result<(), DataflowError> {
        self.seq += 1;
        let batch = BatchId {
            epoch: self.epoch,
            seq: self.seq,
        };
        let header = batch.to_bytes();
        let mut out = Outbox::default();
        for c in &changes {
            let key = changelog_key(c.table, &c.key);
            let mut record = FutureRecord::<[u8], [u8]>::to(&self.topics.changelog)
                .partition(c.partition.0 as i32)
                .key(key.as_slice())
                .headers(OwnedHeaders::new().insert(Header {
                    key: BATCH_HEADER,
                    value: Some(&header[..]),
                }));
            if let Some(v) = &c.value {
                record = record.payload(v.as_slice());
            }
            out.send(self.producer, record)?;
        }
        let mut ends: BTreeMap<u32, i64> = BTreeMap::new();
        for d in out.finish()? {
            let end = ends.entry(d.partition as u32).or_insert(0);
            *end = (*end).max(d.offset + 1);
        }
        let commit = Commit {
            batch,
            source_offsets: self.meta.source_offsets.clone(),
            changelog_ends: ends.clone(),
        };
        let payload = commit.encode();
        let record = FutureRecord::<[u8], [u8]>::to(&self.topics.commits)
            .partition(0)
            .payload(&payload);
        let mut out = Outbox::default();
        out.send(self.producer, record)?;
        let delivered = out.finish()?.remove(0);

        let mut state = StateBatch::new();
        for c in &changes {
            match &c.value {
                Some(v) => state.put(self.spec.id, c.partition, c.table, &c.key, v),
                None => state.delete(self.spec.id, c.partition, c.table, &c.key),
            }
        }
        for (p, end) in &ends {
            state.set_partition_meta(
                self.spec.id,
                PartitionId(*p),
                PartitionMeta {
                    changelog_next: *end,
                },
            );
        }
        self.meta.epoch = self.epoch;
        self.meta.batch = self.seq;
        self.meta.commit_next = delivered.offset + 1;
        state.set_view_meta(self.spec.id, &self.meta);
        self.store.write(state)?;
        self.status.mark_applied();
        self.status.update(|p| {
            p.batches += 1;
            p.source_offsets = self.meta.source_offsets.clone();
            for (part, end) in ends {
                p.applied.insert(PartitionId(part), end);
            }
        });
        Ok(())
    }
}

/// Records sent and not yet known to be delivered.
#[derive(Default)]
struct Outbox {
    in_flight: Vec<DeliveryFuture>,
    delivered: Vec<Delivery>,
}

impl Outbox {
    /// Enqueues a record. When the producer's queue is full, waits for what is
    /// in flight to be delivered, then tries again: back-pressure, not a sleep.
    fn send(
        &mut self,
        producer: &FutureProducer,
        mut record: FutureRecord<'_, [u8], [u8]>,
    ) -> Result<(), DataflowError> {
        loop {
            match producer.send_result(record) {
                Ok(fut) => {
                    self.in_flight.push(fut);
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    if self.in_flight.is_empty() {
                        producer.poll(Duration::from_millis(50));
                    } else {
                        self.drain()?;
                    }
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }

    fn drain(&mut self) -> Result<(), DataflowError> {
        for r in futures::executor::block_on(join_all(std::mem::take(&mut self.in_flight))) {
            match r {
                Ok(Ok(d)) => self.delivered.push(d),
                Ok(Err((e, _))) => return Err(e.into()),
                Err(_canceled) => return Err(DataflowError::Kafka(KafkaError::Canceled)),
            }
        }
        Ok(())
    }

    /// Waits for every delivery, in send order; the first failure fails the batch.
    fn finish(mut self) -> Result<Vec<Delivery>, DataflowError> {
        self.drain()?;
        Ok(self.delivered)
    }
}

/// Used by reads to turn lookup values into the same bytes the operators key by.
pub fn key_bytes(values: &[Value]) -> Vec<u8> {
    common::codec::encode_row(values)
}
