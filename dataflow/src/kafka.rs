//! Kafka plumbing shared by every task: client configuration, internal topic
//! names and admin calls. Every internal name lives under the cluster, so two
//! clusters can share a broker.

use common::ViewId;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureProducer;
use std::time::Duration;

use crate::error::DataflowError;

/// Where a node's Kafka clients connect and how its names are scoped.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    pub brokers: String,
    pub cluster: String,
    /// Bound on every blocking Kafka call.
    pub timeout: Duration,
    /// Whether dropping a view deletes its internal topics. Off by default:
    /// Tansu 0.6.0 deletes every topic of the cluster when asked to delete
    /// one, and librdkafka 2.12 can crash when topics vanish under it.
    pub delete_internal_topics: bool,
}

impl KafkaConfig {
    fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("broker.address.family", "v4")
            .set("topic.metadata.refresh.interval.ms", "10000")
            .set("log_level", "4");
        c
    }

    /// A consumer for explicitly assigned partitions. Offsets are never
    /// committed to Kafka: the state store is the truth about what was applied.
    pub fn consumer(&self, purpose: &str) -> Result<BaseConsumer, DataflowError> {
        let mut c = self.base();
        c.set("group.id", self.name(purpose))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "20")
            .set("queued.min.messages", "200000");
        Ok(c.create()?)
    }

    /// An idempotent producer: retries never duplicate or reorder records
    /// within a partition.
    pub fn producer(&self) -> Result<FutureProducer, DataflowError> {
        let mut c = self.base();
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set("queue.buffering.max.messages", "1000000")
            .set("message.timeout.ms", self.timeout.as_millis().to_string())
            .set("compression.type", "none");
        Ok(c.create()?)
    }

    pub fn admin(&self) -> Result<AdminClient<DefaultClientContext>, DataflowError> {
        Ok(self.base().create()?)
    }

    /// `_eddy_<cluster>_<what>`.
    pub fn name(&self, what: &str) -> String {
        format!("_eddy_{}_{}", self.cluster, what)
    }

    pub fn view_topics(&self, view: ViewId, name: &str) -> ViewTopics {
        ViewTopics {
            changelog: self.name(&format!("{name}_{view}_changelog")),
            commits: self.name(&format!("{name}_{view}_commits")),
        }
    }

    /// Creates topics that do not exist yet; existing ones are left alone.
    pub fn create_topics(&self, topics: &[(&str, u32, bool)]) -> Result<(), DataflowError> {
        let admin = self.admin()?;
        let new: Vec<NewTopic> = topics
            .iter()
            .map(|(name, partitions, compact)| {
                let t = NewTopic::new(name, *partitions as i32, TopicReplication::Fixed(1));
                if *compact {
                    t.set("cleanup.policy", "compact")
                } else {
                    t.set("retention.ms", "-1")
                }
            })
            .collect();
        let opts = AdminOptions::new().operation_timeout(Some(self.timeout));
        let results = futures::executor::block_on(admin.create_topics(&new, &opts))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(DataflowError::TopicCreate { topic, code }),
            }
        }
        Ok(())
    }

    pub fn delete_topics(&self, topics: &[&str]) -> Result<(), DataflowError> {
        let admin = self.admin()?;
        let opts = AdminOptions::new().operation_timeout(Some(self.timeout));
        let results = futures::executor::block_on(admin.delete_topics(topics, &opts))?;
        for r in results {
            if let Err((topic, code)) = r {
                if code != RDKafkaErrorCode::UnknownTopicOrPartition {
                    tracing::warn!(%topic, ?code, "could not delete internal topic");
                }
            }
        }
        Ok(())
    }

    /// The number of partitions of `topic`, or `None` when it does not exist.
    pub fn partition_count(&self, topic: &str) -> Result<Option<u32>, DataflowError> {
        let consumer = self.consumer("metadata")?;
        let md = consumer.fetch_metadata(Some(topic), self.timeout)?;
        Ok(md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .map(|t| t.partitions().len() as u32))
    }
}

/// The internal topics of one view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewTopics {
    /// One partition per view partition; every state change.
    pub changelog: String,
    /// One partition; one record per committed batch.
    pub commits: String,
}
