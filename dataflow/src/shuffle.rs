//! The shuffle: source partitions → decode → route → repartition topic.
//!
//! Stateless, so it scales by source partition: the nodes share the source's
//! partitions through the consumer group `<view>_shuffle`. Each record is
//! decoded, checked against the view's expressions and sent, in an
//! [`Envelope`] naming its source position, to the repartition partition
//! that owns its key. A bad record is recorded here (system table
//! `eddy_catalog.source_errors` of this node) and goes no further.
//!
//! Exactly once: the source offsets are committed to the group only after
//! every record before them was acknowledged by the broker. A node that dies
//! mid-batch leaves records in the repartition topic past its last commit;
//! whoever takes the source partition over starts from that commit and
//! writes them again, and the receiving partition drops the second copy by
//! its source position (see `stage`).

use planner::plan::StartFrom;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use storage::{SourceErrorRecord, StateStore};

use crate::decode::{decode_json, decode_key, BadRecord};
use crate::envelope::Position;
use crate::error::DataflowError;
use crate::kafka::{GroupContext, GroupEvent, KafkaConfig, ViewTopics};
use crate::operator::route::Route;
use crate::operator::SourceRecord;
use crate::status::{TaskState, ViewStatus};
use crate::task::{poll_batch, send_routed, Counts, Outbox, ViewSpec};

pub const STEP: &str = "shuffle";

pub struct Shuffle {
    pub spec: ViewSpec,
    pub kafka: KafkaConfig,
    pub store: Arc<StateStore>,
    pub topics: ViewTopics,
    pub status: Arc<ViewStatus>,
    pub cancel: Arc<AtomicBool>,
}

impl Shuffle {
    pub fn run_once(&self) -> Result<(), DataflowError> {
        let def = &self.spec.def;
        self.kafka
            .create_topics(&[(&self.topics.repartition, def.partitions, false)])?;
        let topic = &self.spec.source.topic;
        if self.kafka.partition_count(topic)?.is_none() {
            return Err(DataflowError::MissingTopic(topic.clone()));
        }
        let group = self.kafka.view_group(self.spec.id, &def.name, STEP);
        let consumer = self.kafka.group_consumer(
            &group,
            false,
            self.spec.source.start == StartFrom::Latest,
        )?;
        consumer.subscribe(&[topic])?;
        let producer = self.kafka.producer()?;
        let route = Route::new(def, &self.spec.source);
        self.status.set_step(STEP, TaskState::Running);
        // Next source offset per partition, not yet committed to the group.
        let mut pending: BTreeMap<i32, i64> = BTreeMap::new();
        while !self.cancel.load(Ordering::Relaxed) {
            let mut out = Outbox::default();
            let mut counts = Counts::default();
            poll_batch(&consumer, &self.cancel, |msg| {
                pending.insert(msg.partition(), msg.offset() + 1);
                self.forward(msg, &route, &producer, &mut out, &mut counts)
            })?;
            out.finish()?;
            self.status.update(|p| p.skipped += counts.skipped);
            self.forget_revoked(&consumer, &mut pending);
            if !pending.is_empty() {
                let mut tpl = TopicPartitionList::new();
                for (p, next) in &pending {
                    tpl.add_partition_offset(topic, *p, Offset::Offset(*next))?;
                }
                // A commit refused during a rebalance is harmless: the next
                // owner re-sends from the last commit and duplicates are dropped.
                match consumer.commit(&tpl, CommitMode::Sync) {
                    Ok(()) => pending.clear(),
                    Err(e) => tracing::debug!(error = %e, "source offset commit refused"),
                }
            }
        }
        Ok(())
    }

    /// Drops the positions of source partitions this node no longer owns.
    fn forget_revoked(
        &self,
        consumer: &BaseConsumer<GroupContext>,
        pending: &mut BTreeMap<i32, i64>,
    ) {
        for event in consumer.context().take_events() {
            if let GroupEvent::Revoked { partitions, .. } = event {
                for p in partitions {
                    pending.remove(&p);
                }
            }
        }
    }

    fn forward(
        &self,
        msg: &BorrowedMessage<'_>,
        route: &Route,
        producer: &rdkafka::producer::FutureProducer,
        out: &mut Outbox,
        counts: &mut Counts,
    ) -> Result<(), DataflowError> {
        let at = Position {
            partition: msg.partition(),
            offset: msg.offset(),
        };
        let routed = self
            .decode(msg)
            .map_err(|bad| bad.to_string())
            .and_then(|rec| {
                route
                    .route(rec)
                    .map_err(|e| format!("view {}: {e}", self.spec.def.name))
            });
        let routed = match routed {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(reason) => {
                self.record_bad(at, reason, msg.timestamp().to_millis().unwrap_or(0))?;
                counts.skipped += 1;
                return Ok(());
            }
        };
        send_routed(
            out,
            producer,
            &self.topics.repartition,
            self.spec.def.partitions,
            routed,
            at,
            at,
        )
    }

    fn record_bad(
        &self,
        at: Position,
        reason: String,
        seen_at_ms: i64,
    ) -> Result<(), DataflowError> {
        tracing::debug!(partition = at.partition, offset = at.offset, %reason, "skipping bad record");
        self.store.record_source_error(&SourceErrorRecord {
            source: self.spec.source.name.clone(),
            partition: at.partition,
            offset: at.offset,
            reason,
            seen_at_ms,
        })?;
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
