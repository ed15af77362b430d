//! The catalog: sources and views, kept as a log of commands on a Kafka topic
//! (`_eddy_<cluster>_commands`, one partition), as ksqlDB keeps its command
//! topic. Every node replays the log in order, so every node holds the same
//! catalog; a DDL statement is a command produced to the log, and it takes
//! effect when the node applies it.
//!
//! Invariant: the in-memory catalog changes only by applying the log in
//! offset order — never directly from a statement — so two nodes racing on one
//! name both see the same first command win.

pub mod command;
pub mod state;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use command::Command;
use dataflow::KafkaConfig;
pub use state::{CatalogState, CatalogView, Effect};

/// Creates the one-partition internal log `_eddy_<cluster>_<what>` if needed,
/// and a consumer (not yet assigned) to follow it. The catalog and membership
/// are both such logs. `fetch_wait_ms` bounds how long the broker holds a
/// fetch that finds nothing: the longer, the fewer fetches an idle node
/// sends (a broker serving 100 fetches/s spends a tenth of a core or more
/// on them, beside the point reads), the later a record may be seen.
pub(crate) async fn open_log(
    kafka: &KafkaConfig,
    what: &str,
    purpose: &str,
    fetch_wait_ms: u64,
) -> Result<(String, StreamConsumer), Error> {
    let topic = kafka.name(what);
    let (k, t) = (kafka.clone(), topic.clone());
    tokio::task::spawn_blocking(move || k.create_topics(&[(&t, 1, false)]))
        .await
        .map_err(Error::internal)??;
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set("broker.address.family", "v4")
        .set("group.id", kafka.name(purpose))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
        .create()
        .map_err(Error::kafka)?;
    Ok((topic, consumer))
}

/// A DDL statement waits for its command to come back through the log: up
/// to this much longer than the broker's round trip.
const CATALOG_FETCH_WAIT_MS: u64 = 100;

/// Receives what applying the log does, to start and stop view tasks.
pub trait EffectSink: Send + Sync + 'static {
    fn on_effect(&self, effect: Effect);
}

/// How many recent outcomes are kept for submitters to collect.
const OUTCOMES_KEPT: i64 = 1024;

pub struct Catalog {
    state: RwLock<CatalogState>,
    /// Offset of the last command applied.
    applied: watch::Sender<i64>,
    /// Outcome of commands this node submitted, by offset, until collected.
    outcomes: Mutex<BTreeMap<i64, Result<Effect, Error>>>,
    producer: FutureProducer,
    topic: String,
    kafka: KafkaConfig,
}

impl Catalog {
    /// Creates the command topic if needed and replays it to its end, calling
    /// nothing on `sink` yet: the caller starts what the final catalog holds.
    pub async fn open(kafka: &KafkaConfig) -> Result<(Arc<Catalog>, StreamConsumer), Error> {
        let (topic, consumer) =
            open_log(kafka, "commands", "catalog", CATALOG_FETCH_WAIT_MS).await?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Beginning)
            .map_err(Error::kafka)?;
        consumer.assign(&tpl).map_err(Error::kafka)?;
        let catalog = Arc::new(Catalog {
            state: RwLock::new(CatalogState::default()),
            applied: watch::channel(-1).0,
            outcomes: Mutex::new(BTreeMap::new()),
            producer: kafka.producer()?,
            topic: topic.clone(),
            kafka: kafka.clone(),
        });
        let (_, high) = consumer
            .fetch_watermarks(&topic, 0, kafka.timeout)
            .map_err(Error::kafka)?;
        while *catalog.applied.borrow() < high - 1 {
            let msg = tokio::time::timeout(kafka.timeout, consumer.recv())
                .await
                .map_err(|_| Error::from(dataflow::DataflowError::Timeout(kafka.timeout)))?
                .map_err(Error::kafka)?;
            catalog.apply_message(msg.offset(), msg.payload(), None);
        }
        tracing::info!(commands = high, "catalog replayed");
        Ok((catalog, consumer))
    }

    /// Follows the log after the initial replay, applying each command.
    pub async fn follow(
        self: Arc<Catalog>,
        consumer: StreamConsumer,
        sink: Arc<dyn EffectSink>,
        stop: CancellationToken,
    ) {
        loop {
            let msg = tokio::select! {
                _ = stop.cancelled() => return,
                msg = consumer.recv() => msg,
            };
            match msg {
                Ok(msg) => self.apply_message(msg.offset(), msg.payload(), Some(&*sink)),
                Err(e) => {
                    tracing::warn!(error = %e, "catalog consumer error");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    fn apply_message(&self, offset: i64, payload: Option<&[u8]>, sink: Option<&dyn EffectSink>) {
        let outcome = match payload.map(Command::decode) {
            Some(Ok(cmd)) => self.state.write().expect("catalog lock").apply(offset, cmd),
            Some(Err(e)) => Err(Error::internal(format!(
                "unreadable command at offset {offset}: {e}"
            ))),
            None => Err(Error::internal(format!("empty command at offset {offset}"))),
        };
        if let (Ok(effect), Some(sink)) = (&outcome, sink) {
            sink.on_effect(effect.clone());
        }
        match &outcome {
            // A command no node can read is lost to every node: say so loudly.
            Err(Error::Internal(e)) => {
                tracing::error!(offset, error = %e, "catalog command cannot be applied")
            }
            Err(e) => tracing::debug!(offset, error = %e, "command not applied"),
            Ok(_) => {}
        }
        let mut outcomes = self.outcomes.lock().expect("outcomes lock");
        outcomes.insert(offset, outcome);
        // Outcomes nobody here waits for (other nodes' commands) must not pile up.
        *outcomes = outcomes.split_off(&(offset - OUTCOMES_KEPT));
        drop(outcomes);
        self.applied.send_replace(offset);
    }

    /// Waits until this node has applied every command in the log as of now:
    /// what another node's DDL did before this call is visible after it.
    pub async fn sync(&self) -> Result<(), Error> {
        let (producer, topic, timeout) = (
            self.producer.clone(),
            self.topic.clone(),
            self.kafka.timeout,
        );
        let (_, high) = tokio::task::spawn_blocking(move || {
            producer.client().fetch_watermarks(&topic, 0, timeout)
        })
        .await
        .map_err(Error::internal)?
        .map_err(Error::kafka)?;
        self.wait_applied(high - 1).await
    }

    async fn wait_applied(&self, offset: i64) -> Result<(), Error> {
        let mut rx = self.applied.subscribe();
        tokio::time::timeout(
            self.kafka.timeout,
            rx.wait_for(|applied| *applied >= offset),
        )
        .await
        .map_err(|_| Error::from(dataflow::DataflowError::Timeout(self.kafka.timeout)))?
        .map_err(Error::internal)?;
        Ok(())
    }

    /// Submits a command and waits until this node has applied it. The
    /// command is checked against the catalog as of the log's end, so it sees
    /// every DDL any node finished before.
    pub async fn submit(&self, cmd: Command) -> Result<Effect, Error> {
        self.sync().await?;
        self.read().check(&cmd)?;
        let payload = cmd.encode_checked().map_err(|e| {
            Error::internal(format!(
                "the command cannot be written to the catalog log: {e}"
            ))
        })?;
        let record = FutureRecord::<[u8], [u8]>::to(&self.topic)
            .partition(0)
            .payload(&payload);
        let delivery = self
            .producer
            .send(record, self.kafka.timeout)
            .await
            .map_err(|(e, _)| Error::kafka(e))?;
        let offset = delivery.offset;
        self.wait_applied(offset).await?;
        self.outcomes
            .lock()
            .expect("outcomes lock")
            .remove(&offset)
            .unwrap_or_else(|| {
                Err(Error::internal(format!(
                    "command at offset {offset} has no outcome"
                )))
            })
    }

    /// The offset of the last command applied: changes whenever the catalog does.
    pub fn version(&self) -> i64 {
        *self.applied.borrow()
    }

    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, CatalogState> {
        self.state.read().expect("catalog lock")
    }
}
