//! Topic creation and a pipelined producer that keeps per-partition order.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

pub fn config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("broker.address.family", "v4");
    c
}

/// Creates `name` unless it exists (Tansu's sqlite engine does not auto-create).
pub async fn ensure_topic(brokers: &str, name: &str, partitions: i32) -> Result<bool> {
    let admin: AdminClient<DefaultClientContext> = config(brokers).create()?;
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let mut created = false;
    for result in admin.create_topics([&topic], &options).await? {
        match result {
            Ok(_) => created = true,
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => bail!("creating topic {t}: {code}"),
        }
    }
    Ok(created)
}

/// Partition count of `topic` per the broker's metadata (blocking call).
pub fn partitions(brokers: &str, topic: &str) -> Result<usize> {
    let consumer: BaseConsumer = config(brokers).create()?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    md.topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len())
        .ok_or_else(|| anyhow!("topic {topic} not in metadata"))
}

/// An idempotent producer tuned for throughput.
pub fn producer(brokers: &str) -> Result<FutureProducer> {
    Ok(config(brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "10")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("message.timeout.ms", "120000")
        .create()?)
}

/// Sends records in order with many in flight; [`Pipeline::finish`] awaits the rest.
pub struct Pipeline<'p> {
    producer: &'p FutureProducer,
    pending: VecDeque<DeliveryFuture>,
    max_in_flight: usize,
    pub delivered: u64,
}

impl<'p> Pipeline<'p> {
    pub fn new(producer: &'p FutureProducer, max_in_flight: usize) -> Self {
        Pipeline {
            producer,
            pending: VecDeque::new(),
            max_in_flight,
            delivered: 0,
        }
    }

    pub async fn send(
        &mut self,
        topic: &str,
        key: Option<&str>,
        value: Option<&str>,
    ) -> Result<()> {
        loop {
            if self.pending.len() >= self.max_in_flight {
                self.await_oldest().await?;
            }
            let mut record = FutureRecord::<str, str>::to(topic);
            if let Some(k) = key {
                record = record.key(k);
            }
            if let Some(v) = value {
                record = record.payload(v);
            }
            match self.producer.send_result(record) {
                Ok(future) => {
                    self.pending.push_back(future);
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                    if !self.pending.is_empty() =>
                {
                    self.await_oldest().await?
                }
                Err((err, _)) => return Err(err.into()),
            }
        }
    }

    async fn await_oldest(&mut self) -> Result<()> {
        let Some(future) = self.pending.pop_front() else {
            return Ok(());
        };
        match future.await {
            Ok(Ok(_)) => {
                self.delivered += 1;
                Ok(())
            }
            Ok(Err((err, _))) => Err(anyhow!("delivery failed: {err}")),
            Err(_) => Err(anyhow!("producer dropped before delivery")),
        }
    }

    pub async fn finish(mut self) -> Result<u64> {
        while !self.pending.is_empty() {
            self.await_oldest().await?;
        }
        Ok(self.delivered)
    }
}
