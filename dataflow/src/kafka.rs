//! Kafka plumbing shared by every task: client configuration, internal topic
//! names and admin calls. Every internal name lives under the cluster, so two
//! clusters can share a broker.

use common::ViewId;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureProducer;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use storage::Stage;

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
    /// How the internal consumer groups detect a dead member.
    pub group: GroupSettings,
}

/// Failure detection of the internal consumer groups. Kafka's 45 s default
/// session would leave a dead node's partitions unserved for that long.
#[derive(Debug, Clone, Copy)]
pub struct GroupSettings {
    /// A member not heard from for this long is removed and its partitions
    /// are reassigned.
    pub session_timeout: Duration,
    /// How often members tell the coordinator they are alive.
    pub heartbeat_interval: Duration,
}

impl Default for GroupSettings {
    fn default() -> Self {
        GroupSettings {
            session_timeout: Duration::from_secs(3),
            heartbeat_interval: Duration::from_millis(500),
        }
    }
}

/// Collects the partitions a rebalance took from the member, for the
/// member's thread (the shuffle forgets their pending positions).
#[derive(Default)]
pub struct GroupContext {
    revoked: Mutex<Vec<i32>>,
}

impl GroupContext {
    pub fn take_revoked(&self) -> Vec<i32> {
        std::mem::take(&mut *self.revoked.lock().expect("group events lock"))
    }
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let partitions = |tpl: &rdkafka::TopicPartitionList| -> Vec<i32> {
            tpl.elements().iter().map(|e| e.partition()).collect()
        };
        match rebalance {
            Rebalance::Assign(tpl) => {
                tracing::debug!(partitions = ?partitions(tpl), "rebalance: assigned");
            }
            Rebalance::Revoke(tpl) => {
                let revoked = partitions(tpl);
                // `lost`: the member was expelled (its session expired)
                // rather than asked to hand the partitions over.
                let lost = consumer.assignment_lost();
                tracing::debug!(partitions = ?revoked, lost, "rebalance: revoked");
                self.revoked
                    .lock()
                    .expect("group events lock")
                    .extend(revoked);
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}

/// The high watermark of each partition a consumer fetches, as librdkafka's
/// statistics report it (updated by every fetch response; emitted every
/// [`WATERMARK_EVERY_MS`] and handed over by `poll`).
#[derive(Default)]
pub struct Watermarks {
    high: Mutex<HashMap<(String, i32), i64>>,
}

pub const WATERMARK_EVERY_MS: u64 = 50;

/// How long the broker may hold a fetch that finds nothing new. A short wait
/// means low latency on a trickle but a fetch every few ms from every idle
/// reader: Tansu's sqlite engine spends a core on 150 fetches/s, and it
/// holds a fetch its full wait even when records arrive meanwhile. 100 ms
/// keeps a standby's lag on a trickle under ~100 ms; under load a fetch
/// finds records at once.
const FETCH_WAIT_MS: &str = "100";

impl Watermarks {
    /// The last known high watermark of `topic` partition `partition`.
    pub fn high(&self, topic: &str, partition: i32) -> Option<i64> {
        self.high
            .lock()
            .expect("watermarks lock")
            .get(&(topic.to_owned(), partition))
            .copied()
    }
}

impl ClientContext for Watermarks {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let mut high = self.high.lock().expect("watermarks lock");
        for (name, topic) in statistics.topics {
            for (p, part) in topic.partitions {
                if p >= 0 && part.hi_offset >= 0 {
                    high.insert((name.clone(), p), part.hi_offset);
                }
            }
        }
    }
}

impl ConsumerContext for Watermarks {}

impl KafkaConfig {
    /// A consumer like [`KafkaConfig::consumer`] that also knows the high
    /// watermarks of what it reads.
    pub fn watermarked_consumer(
        &self,
        purpose: &str,
    ) -> Result<BaseConsumer<Watermarks>, DataflowError> {
        let mut c = self.assigned(purpose);
        c.set("statistics.interval.ms", WATERMARK_EVERY_MS.to_string());
        Ok(c.create_with_context(Watermarks::default())?)
    }

    /// The settings of a reader of explicitly assigned partitions.
    fn assigned(&self, purpose: &str) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", self.name(purpose))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", FETCH_WAIT_MS);
        c
    }

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
        let mut c = self.assigned(purpose);
        c.set("queued.min.messages", "200000");
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
            .set("compression.type", "none")
            .set("message.max.bytes", MESSAGE_MAX_BYTES.to_string());
        Ok(c.create()?)
    }

    /// A member of the internal group `purpose`, sharing partitions with the
    /// other nodes by the cooperative-sticky assignor: a rebalance moves only
    /// the partitions that must move, and the others keep working through it.
    pub fn group_consumer(
        &self,
        purpose: &str,
        start_latest: bool,
    ) -> Result<BaseConsumer<GroupContext>, DataflowError> {
        let mut c = self.base();
        c.set("group.id", self.name(purpose))
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set(
                "session.timeout.ms",
                self.group.session_timeout.as_millis().to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                self.group.heartbeat_interval.as_millis().to_string(),
            )
            // Also the rebalance timeout: how long the coordinator waits for
            // members to rejoin, stale ones included. librdkafka refuses a
            // value below the session timeout, so it grows with it.
            .set(
                "max.poll.interval.ms",
                max_poll_interval(self.group.session_timeout)
                    .as_millis()
                    .to_string(),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set(
                "auto.offset.reset",
                if start_latest { "latest" } else { "earliest" },
            )
            .set("fetch.wait.max.ms", FETCH_WAIT_MS)
            .set("queued.min.messages", "200000");
        Ok(c.create_with_context(GroupContext::default())?)
    }

    /// A producer for records whose loss or repetition does no harm
    /// (heartbeats): not idempotent, and giving up after `timeout`. An
    /// idempotent producer whose record times out bumps its epoch, which
    /// Tansu 0.6.0 cannot handle after a restart (its storage panics).
    pub fn plain_producer(&self, timeout: Duration) -> Result<FutureProducer, DataflowError> {
        let mut c = self.base();
        c.set("enable.idempotence", "false")
            .set("acks", "all")
            .set("linger.ms", "0")
            .set("message.timeout.ms", timeout.as_millis().max(1).to_string());
        Ok(c.create()?)
    }

    pub fn admin(&self) -> Result<AdminClient<DefaultClientContext>, DataflowError> {
        Ok(self.base().create()?)
    }

    /// `_eddy_<cluster>_<what>`.
    pub fn name(&self, what: &str) -> String {
        let prefix = planner::bind::INTERNAL_TOPIC_PREFIX;
        format!("{prefix}{}_{what}", self.cluster)
    }

    pub fn view_topics(&self, view: ViewId, name: &str) -> ViewTopics {
        let topic = |what: &str| self.name(&format!("{name}_{view}_{what}"));
        ViewTopics {
            repartition: topic("repartition"),
            regroup: topic("regroup"),
            view: StageTopics {
                changelog: topic("changelog"),
                commits: topic("commits"),
            },
            resolve: StageTopics {
                changelog: topic("resolve_changelog"),
                commits: topic("resolve_commits"),
            },
        }
    }

    /// The consumer group of one step of a view: `shuffle` (source →
    /// repartition) or a stage.
    pub fn view_group(&self, view: ViewId, name: &str, step: &str) -> String {
        format!("{name}_{view}_{step}")
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

/// The internal topics of one view; each has the view's partition count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewTopics {
    /// Source records re-keyed by the view's key (GROUP BY or primary key).
    pub repartition: String,
    /// Retractions and insertions from `Resolve`, keyed by the group key
    /// (GROUP BY over an upsert source only).
    pub regroup: String,
    pub view: StageTopics,
    pub resolve: StageTopics,
}

impl ViewTopics {
    pub fn stage(&self, stage: Stage) -> &StageTopics {
        match stage {
            Stage::View => &self.view,
            Stage::Resolve => &self.resolve,
        }
    }

    pub fn all(&self) -> [&str; 6] {
        [
            &self.repartition,
            &self.regroup,
            &self.view.changelog,
            &self.view.commits,
            &self.resolve.changelog,
            &self.resolve.commits,
        ]
    }
}

/// The durable record of one stage: partition p of each belongs to stage
/// partition p.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageTopics {
    /// Every state change (compacted).
    pub changelog: String,
    /// One record per committed batch (see `storage::changelog`).
    pub commits: String,
}

/// The group consumers' `max.poll.interval.ms`: 15 s, or the session timeout
/// when that is longer (librdkafka requires it to be at least as long).
pub fn max_poll_interval(session_timeout: Duration) -> Duration {
    session_timeout.max(Duration::from_secs(15))
}

/// librdkafka's and Kafka's default `message.max.bytes`, set explicitly so the
/// check below and the producer agree.
const MESSAGE_MAX_BYTES: usize = 1_000_000;

/// The largest key plus value Eddy writes to its own topics (repartition and
/// changelog records), with room for the record's framing and the changelog's
/// few extra bytes per row. A record past it is a bad record at the shuffle,
/// before it can be retried forever against the broker's limit.
pub const MAX_RECORD_BYTES: usize = MESSAGE_MAX_BYTES - 16_384;
