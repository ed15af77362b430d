//! What every step of a view shares: its spec, the supervisor that restarts
//! a failed step, and the outbox that waits for produced records.
//!
//! A view runs as steps, each on a thread of its own: `shuffle` (source →
//! repartition topic, see [`crate::shuffle`]), then one or two stages
//! (repartition topic → state + changelog, see [`crate::stage`]).

use common::Value;
use futures::future::join_all;
use planner::plan::{SourceDef, ViewDef};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::future_producer::Delivery;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::DataflowError;
use crate::status::{TaskState, ViewStatus};

/// Everything a view's steps need to know about it.
#[derive(Debug, Clone)]
pub struct ViewSpec {
    pub id: common::ViewId,
    pub def: ViewDef,
    pub source: SourceDef,
}

impl ViewSpec {
    /// Whether the view needs the `resolve` stage: a GROUP BY over an upsert
    /// source, whose rows move between groups as they are updated.
    pub fn resolves(&self) -> bool {
        self.source.primary_key.is_some()
            && matches!(self.def.plan, planner::plan::ViewPlan::Aggregate(_))
    }
}

/// What every step of one view shares: the view, the node's clients and
/// store, the view's topics and status, and the flag that stops its steps.
#[derive(Clone)]
pub struct StepEnv {
    /// This node's id, as placement and membership know it.
    pub node: String,
    pub roster: std::sync::Arc<dyn crate::placement::Roster>,
    pub spec: ViewSpec,
    pub kafka: crate::kafka::KafkaConfig,
    pub store: std::sync::Arc<storage::StateStore>,
    pub topics: crate::kafka::ViewTopics,
    pub status: std::sync::Arc<ViewStatus>,
    pub cancel: std::sync::Arc<AtomicBool>,
}

impl StepEnv {
    pub(crate) fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Records a bad source record (at its source position) on this node.
    pub(crate) fn record_bad(
        &self,
        at: crate::envelope::Position,
        reason: String,
        seen_at_ms: i64,
    ) -> Result<(), DataflowError> {
        tracing::debug!(partition = at.partition, offset = at.offset, %reason, "skipping bad record");
        self.store
            .record_source_error(&storage::SourceErrorRecord {
                source: self.spec.source.name.clone(),
                partition: at.partition,
                offset: at.offset,
                reason,
                seen_at_ms,
            })?;
        Ok(())
    }
}

/// A batch closes at [`BatchSize::cap`] records (at most this many) or this
/// long after its first record. Longer batches fold more updates of a hot
/// key into one changelog record; the window bounds how stale a read can be
/// under load.
const MAX_BATCH: usize = 50_000;
const BATCH_WINDOW: Duration = Duration::from_millis(100);
/// The fewest records a batch may be capped at, and the cap a step starts with.
const MIN_BATCH: usize = 500;
const FIRST_BATCH: usize = 4_000;
/// How long a batch should take from its poll to its last acknowledgement.
const BATCH_TARGET: Duration = Duration::from_millis(300);

/// How many records the next batch may take: about as many as the broker
/// acknowledges within [`BATCH_TARGET`]. A batch that took longer halves the
/// cap; a full one that took under half the target doubles it, up to
/// [`MAX_BATCH`]. On a slow broker this bounds how long a batch's records sit
/// in the log before its commit — which a standby counts as lag, and which
/// must stay under a group member's poll interval — without shrinking
/// batches on a fast one.
pub(crate) struct BatchSize {
    cap: usize,
}

impl Default for BatchSize {
    fn default() -> BatchSize {
        BatchSize { cap: FIRST_BATCH }
    }
}

impl BatchSize {
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// Learns from a batch of `records` that took `took`, poll to last ack.
    pub(crate) fn took(&mut self, records: usize, took: Duration) {
        if took > BATCH_TARGET {
            self.cap = (records / 2).max(MIN_BATCH);
        } else if records >= self.cap && took < BATCH_TARGET / 2 {
            self.cap = (self.cap * 2).min(MAX_BATCH);
        }
    }
}
/// Pauses between runs of a failed step: doubling from the first to the last.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Runs a step until cancelled. A run that fails (the brokers gone longer
/// than a request may wait, say) is started again after a capped, growing
/// pause: each run starts from what was committed, so a restart neither
/// loses nor repeats a record.
pub(crate) fn supervise(
    step: &'static str,
    env: &StepEnv,
    mut run_once: impl FnMut() -> Result<(), DataflowError>,
) {
    let (status, cancel) = (&*env.status, &*env.cancel);
    let mut pause = RETRY_FIRST;
    loop {
        let started = Instant::now();
        match run_once() {
            Ok(()) => {
                status.set_step(step, TaskState::Stopped);
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, retry_in_ms = pause.as_millis() as u64, "{step} failed");
                status.set_step(step, TaskState::Failed(e.to_string()));
            }
        }
        // A run that lasted a while was healthy: start the backoff over.
        if started.elapsed() > RETRY_MAX {
            pause = RETRY_FIRST;
        }
        if cancelled_within(cancel, pause) {
            status.set_step(step, TaskState::Stopped);
            return;
        }
        pause = (pause * 2).min(RETRY_MAX);
        status.set_step(step, TaskState::Restoring);
    }
}

/// Waits up to `pause`, returning early (true) when cancelled.
fn cancelled_within(cancel: &AtomicBool, pause: Duration) -> bool {
    let deadline = Instant::now() + pause;
    while Instant::now() < deadline {
        if cancel.load(Ordering::Relaxed) {
            return true;
        }
        std::thread::park_timeout(Duration::from_millis(50).min(deadline - Instant::now()));
    }
    cancel.load(Ordering::Relaxed)
}

/// Polls up to one batch — `max` records, or [`BATCH_WINDOW`] after the
/// first — calling `f` on each; returns how many arrived.
pub(crate) fn poll_batch<C: rdkafka::consumer::ConsumerContext>(
    consumer: &rdkafka::consumer::BaseConsumer<C>,
    cancel: &AtomicBool,
    max: usize,
    mut f: impl FnMut(&rdkafka::message::BorrowedMessage<'_>) -> Result<(), DataflowError>,
) -> Result<usize, DataflowError> {
    let mut first: Option<Instant> = None;
    let mut n = 0usize;
    while n < max && !cancel.load(Ordering::Relaxed) {
        let timeout = match first {
            None => Duration::from_millis(100),
            Some(t) => BATCH_WINDOW.saturating_sub(t.elapsed()),
        };
        let msg = match consumer.poll(timeout) {
            None => break,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "consumer error");
                break;
            }
            Some(Ok(msg)) => msg,
        };
        first.get_or_insert_with(Instant::now);
        n += 1;
        f(&msg)?;
    }
    Ok(n)
}

/// How long a consumer's assignment stays as it is after a change.
const ASSIGN_SETTLE: Duration = Duration::from_secs(1);

/// Paces the changes of an explicitly assigned consumer. librdkafka 2.12
/// aborts the process when an assignment drops a partition it has not
/// started fetching yet (`rd_kafka_assignment_partition_stopped: Assertion
/// rktp->rktp_started failed`), which a quick take-over-then-hand-over does;
/// so an assignment changes at most once per [`ASSIGN_SETTLE`]. Records of a
/// partition still assigned but no longer wanted are ignored by the reader.
#[derive(Default)]
pub(crate) struct AssignPacer {
    last: Option<Instant>,
    pending: bool,
}

impl AssignPacer {
    /// Asks for the assignment to be made again.
    pub(crate) fn request(&mut self) {
        self.pending = true;
    }

    /// Whether to assign now (a change is pending and the last one settled).
    pub(crate) fn due(&mut self) -> bool {
        if !self.pending || self.last.is_some_and(|t| t.elapsed() < ASSIGN_SETTLE) {
            return false;
        }
        self.pending = false;
        self.last = Some(Instant::now());
        true
    }
}

/// Records applied and skipped in the current batch.
#[derive(Default)]
pub(crate) struct Counts {
    pub applied: u64,
    pub skipped: u64,
}

/// Records sent and not yet known to be delivered.
#[derive(Default)]
pub(crate) struct Outbox {
    in_flight: Vec<DeliveryFuture>,
    delivered: Vec<Delivery>,
}

impl Outbox {
    /// Enqueues a record. When the producer's queue is full, waits for what is
    /// in flight to be delivered, then tries again: back-pressure, not a sleep.
    pub(crate) fn send(
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
                Err((
                    KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
                    back,
                )) => {
                    let bytes =
                        back.payload.map_or(0, <[u8]>::len) + back.key.map_or(0, <[u8]>::len);
                    return Err(DataflowError::RecordTooLarge {
                        bytes,
                        limit: crate::kafka::MAX_RECORD_BYTES,
                    });
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }

    pub(crate) fn drain(&mut self) -> Result<(), DataflowError> {
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
    pub(crate) fn finish(mut self) -> Result<Vec<Delivery>, DataflowError> {
        self.drain()?;
        Ok(self.delivered)
    }
}

/// Sends a routed record, in an envelope naming its upstream and source
/// positions, to the partition of `topic` that owns its key.
pub(crate) fn send_routed(
    out: &mut Outbox,
    producer: &FutureProducer,
    topic: &str,
    partitions: u32,
    routed: crate::operator::route::Routed,
    upstream: crate::envelope::Position,
    source: crate::envelope::Position,
) -> Result<(), DataflowError> {
    let partition = common::PartitionId::for_key(&routed.key, partitions);
    let value = crate::envelope::Envelope {
        kind: routed.kind,
        upstream,
        source,
        row: routed.row,
    }
    .encode();
    let bytes = routed.key.len() + value.len();
    if bytes > crate::kafka::MAX_RECORD_BYTES {
        return Err(DataflowError::RecordTooLarge {
            bytes,
            limit: crate::kafka::MAX_RECORD_BYTES,
        });
    }
    let record = FutureRecord::<[u8], [u8]>::to(topic)
        .partition(partition.0 as i32)
        .key(&routed.key)
        .payload(&value);
    out.send(producer, record)
}

/// Used by reads to turn lookup values into the same bytes the operators key by.
pub fn key_bytes(values: &[Value]) -> Vec<u8> {
    common::codec::encode_key(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_grow_on_a_fast_broker_and_shrink_on_a_slow_one() {
        let mut size = BatchSize::default();
        let fast = BATCH_TARGET / 4;
        size.took(100, fast);
        assert_eq!(
            size.cap(),
            FIRST_BATCH,
            "a batch that was not full says nothing"
        );
        for _ in 0..10 {
            size.took(size.cap(), fast);
        }
        assert_eq!(size.cap(), MAX_BATCH);
        size.took(MAX_BATCH, BATCH_TARGET * 10);
        assert_eq!(size.cap(), MAX_BATCH / 2);
        for _ in 0..20 {
            size.took(size.cap(), BATCH_TARGET * 2);
        }
        assert_eq!(size.cap(), MIN_BATCH);
        size.took(size.cap(), BATCH_TARGET * 3 / 4);
        assert_eq!(size.cap(), MIN_BATCH, "within the target: stays");
    }
}
