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
use std::time::Instant;

use crate::decode::{decode_json, decode_key, BadRecord};
use crate::envelope::Position;
use crate::error::DataflowError;
use crate::kafka::GroupContext;
use crate::operator::route::Route;
use crate::operator::SourceRecord;
use crate::status::TaskState;
use crate::task::{poll_batch, send_routed, BatchSize, Counts, Outbox, StepEnv};

pub const STEP: &str = "shuffle";

pub struct Shuffle {
    pub env: StepEnv,
}

impl Shuffle {
    pub fn run_once(&self) -> Result<(), DataflowError> {
        let def = &self.env.spec.def;
        self.env
            .kafka
            .create_topics(&[(&self.env.topics.repartition, def.partitions, false)])?;
        let topic = &self.env.spec.source.topic;
        if self.env.kafka.partition_count(topic)?.is_none() {
            return Err(DataflowError::MissingTopic(topic.clone()));
        }
        let group = self.env.kafka.view_group(self.env.spec.id, &def.name, STEP);
        let consumer = self
            .env
            .kafka
            .group_consumer(&group, self.env.spec.source.start == StartFrom::Latest)?;
        consumer.subscribe(&[topic])?;
        let producer = self.env.kafka.producer()?;
        let route = Route::new(def, &self.env.spec.source);
        self.env.status.set_step(STEP, TaskState::Running);
        // Next source offset per partition, not yet committed to the group.
        let mut pending: BTreeMap<i32, i64> = BTreeMap::new();
        let mut size = BatchSize::default();
        while !self.env.cancelled() {
            let mut out = Outbox::default();
            let mut counts = Counts::default();
            let started = Instant::now();
            let n = poll_batch(&consumer, &self.env.cancel, size.cap(), |msg| {
                pending.insert(msg.partition(), msg.offset() + 1);
                self.forward(msg, &route, &producer, &mut out, &mut counts)
            })?;
            out.finish()?;
            if n > 0 {
                size.took(n, started.elapsed());
            }
            self.env.status.update(|p| p.skipped += counts.skipped);
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
        for p in consumer.context().take_revoked() {
            pending.remove(&p);
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
                    .map_err(|e| format!("view {}: {e}", self.env.spec.def.name))
            });
        let routed = match routed {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(reason) => {
                self.env
                    .record_bad(at, reason, msg.timestamp().to_millis().unwrap_or(0))?;
                counts.skipped += 1;
                return Ok(());
            }
        };
        match send_routed(
            out,
            producer,
            &self.env.topics.repartition,
            self.env.spec.def.partitions,
            routed,
            at,
            at,
        ) {
            Err(e @ DataflowError::RecordTooLarge { .. }) => {
                let seen = msg.timestamp().to_millis().unwrap_or(0);
                self.env.record_bad(at, e.to_string(), seen)?;
                counts.skipped += 1;
                Ok(())
            }
            other => other,
        }
    }

    fn decode(&self, msg: &BorrowedMessage<'_>) -> Result<SourceRecord, BadRecord> {
        let source = &self.env.spec.source;
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
