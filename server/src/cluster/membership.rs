//! Membership: which nodes are alive, where they listen, and which view
//! partitions each serves — learned through the brokers alone.
//!
//! Every node publishes a [`Heartbeat`] to `_eddy_<cluster>_nodes` (one
//! partition) every `heartbeat` interval and follows the topic. A node whose
//! last heartbeat is older than the failure timeout is dead; a node that
//! stops gracefully says so in a last heartbeat and drops out at once.
//!
//! "Older" is measured on the log's clock — the newest heartbeat read from
//! the topic, any node's, this one's included — not on the wall clock: when
//! the broker stalls, no heartbeat gets through, and declaring every other
//! node dead would only move every partition for nothing. A killed node
//! falls behind while the others' heartbeats keep arriving. Heartbeats
//! carry the node's partitions with their changelog positions, so any node
//! can route a read to a partition's owner and fill `eddy_catalog.replicas`.
//!
//! Each heartbeat is signed with the cluster's credentials (a record
//! header, see [`super::credentials`]); a heartbeat whose signature does
//! not verify is ignored, so a process without the cluster's key never
//! becomes a member.

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::credentials::Credentials;

use crate::error::Error;
use dataflow::status::now_ms;
use dataflow::{Holding, KafkaConfig, Member, Role};

/// Heartbeats a new node reads back to learn the current members: far more
/// than a failure timeout's worth for any sane cluster size.
const BACKLOG: i64 = 20_000;

/// Heartbeats are seen at most this much after they reach the broker: far
/// below any failure timeout, and what a remote replica's lag is aged by.
const HEARTBEAT_FETCH_WAIT_MS: u64 = 50;

/// One replica a node holds of a stage partition, as its heartbeat reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaReport {
    pub view: u64,
    /// `view` (what reads see) or `resolve`.
    #[serde(default = "view_stage")]
    pub stage: String,
    pub partition: u32,
    /// `active`, `restoring` or `standby`.
    pub role: String,
    pub applied: i64,
    pub end: i64,
    pub lag_ms: i64,
    /// A restoring replica whose state still answers reads (see
    /// `dataflow::status::PartitionStatus::readable`).
    #[serde(default)]
    pub readable: bool,
}

fn view_stage() -> String {
    "view".into()
}

/// A node's counters of one view: records applied, bad records skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewCounts {
    pub view: u64,
    pub records: u64,
    pub skipped: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub node: String,
    pub pg: String,
    /// Where its internal service listens (`--advertise-internal`).
    #[serde(default)]
    pub internal: String,
    pub started_ms: i64,
    pub sent_ms: i64,
    /// The node is stopping: its partitions are being handed over.
    pub leaving: bool,
    pub replicas: Vec<ReplicaReport>,
    #[serde(default)]
    pub views: Vec<ViewCounts>,
}

pub struct Membership {
    me: String,
    failure_timeout: Duration,
    members: RwLock<BTreeMap<String, Heartbeat>>,
    /// Set once the heartbeats published before this node started are read:
    /// until then it knows too little to claim partitions.
    synced: AtomicBool,
    /// The log's end when this node started.
    start_end: i64,
    /// The newest `sent_ms` read from the topic: the log's clock.
    log_now_ms: std::sync::atomic::AtomicI64,
    topic: String,
    producer: FutureProducer,
    kafka: KafkaConfig,
    /// The cluster's credentials, once this node knows them: they sign this
    /// node's heartbeats and verify the others'.
    pub credentials: OnceLock<Arc<Credentials>>,
    /// Nodes whose heartbeats were ignored (each is warned about once).
    ignored: Mutex<BTreeSet<String>>,
}

/// The record header holding a heartbeat's signature.
const SIGNATURE: &str = "eddy-signature";

impl Membership {
    pub async fn open(
        kafka: &KafkaConfig,
        me: &str,
        failure_timeout: Duration,
    ) -> Result<(Membership, StreamConsumer), Error> {
        let (topic, consumer) =
            crate::catalog::open_log(kafka, "nodes", "membership", HEARTBEAT_FETCH_WAIT_MS).await?;
        let (low, high) = consumer
            .fetch_watermarks(&topic, 0, kafka.timeout)
            .map_err(Error::kafka)?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Offset(low.max(high - BACKLOG)))
            .map_err(Error::kafka)?;
        consumer.assign(&tpl).map_err(Error::kafka)?;
        Ok((
            Membership {
                me: me.to_owned(),
                failure_timeout,
                members: RwLock::new(BTreeMap::new()),
                synced: AtomicBool::new(high <= low),
                start_end: high,
                log_now_ms: std::sync::atomic::AtomicI64::new(now_ms()),
                topic,
                producer: kafka.plain_producer(failure_timeout)?,
                kafka: kafka.clone(),
                credentials: OnceLock::new(),
                ignored: Mutex::new(BTreeSet::new()),
            },
            consumer,
        ))
    }

    /// Publishes one heartbeat, signed, and applies it locally at once
    /// (this node knows itself without the round trip). Until the node
    /// knows the cluster's credentials (the first start of a cluster
    /// without a key file, for a moment) it only applies it locally: an
    /// unsigned heartbeat would only be ignored.
    pub async fn publish(&self, beat: Heartbeat) -> Result<(), Error> {
        let payload = serde_json::to_vec(&beat).map_err(Error::internal)?;
        self.observe(beat);
        let Some(credentials) = self.credentials.get() else {
            return Ok(());
        };
        let signature = credentials.sign(&payload);
        let record = FutureRecord::<str, [u8]>::to(&self.topic)
            .partition(0)
            .key(&self.me)
            .payload(&payload)
            .headers(OwnedHeaders::new().insert(Header {
                key: SIGNATURE,
                value: Some(signature.as_str()),
            }));
        self.producer
            .send(record, self.kafka.timeout)
            .await
            .map_err(|(e, _)| Error::kafka(e))?;
        Ok(())
    }

    /// Whether a heartbeat read from the log carries this cluster's
    /// signature. Before this node knows the credentials (the first start
    /// of a cluster without a key file, for a moment) it cannot tell.
    fn verified(&self, payload: &[u8], signature: Option<&str>) -> bool {
        match self.credentials.get() {
            None => true,
            Some(c) => signature.is_some_and(|s| c.verify(payload, s)),
        }
    }

    fn ignore(&self, node: String) {
        if self
            .ignored
            .lock()
            .expect("ignored lock")
            .insert(node.clone())
        {
            tracing::warn!(
                %node,
                "ignoring heartbeats not signed with this cluster's key: that process is not \
                 a member (start every node with the same --cluster-key-file)"
            );
        }
    }

    /// A heartbeat read from the topic: it also moves the log's clock.
    fn read_from_log(&self, beat: Heartbeat) {
        self.log_now_ms.fetch_max(beat.sent_ms, Ordering::AcqRel);
        self.observe(beat);
    }

    fn observe(&self, beat: Heartbeat) {
        let mut members = self.members.write().expect("members lock");
        let newer = members
            .get(&beat.node)
            .is_none_or(|old| old.sent_ms <= beat.sent_ms);
        if newer {
            members.insert(beat.node.clone(), beat);
        }
    }

    /// Follows the heartbeats of every node until `stop`.
    pub async fn follow(&self, consumer: StreamConsumer, stop: CancellationToken) {
        loop {
            let msg = tokio::select! {
                _ = stop.cancelled() => return,
                msg = consumer.recv() => msg,
            };
            match msg {
                Ok(msg) => {
                    let payload = msg.payload().unwrap_or_default();
                    let signature = msg.headers().and_then(|h| {
                        h.iter()
                            .find(|h| h.key == SIGNATURE)
                            .and_then(|h| h.value)
                            .map(|v| String::from_utf8_lossy(v).into_owned())
                    });
                    match serde_json::from_slice::<Heartbeat>(payload) {
                        Ok(beat) if self.verified(payload, signature.as_deref()) => {
                            self.read_from_log(beat)
                        }
                        // Old beats (written before the cluster signed them)
                        // are dropped without a word.
                        Ok(beat) if self.alive(&beat.node, &beat) => self.ignore(beat.node),
                        Ok(_) => {}
                        Err(_) => tracing::warn!(offset = msg.offset(), "unreadable heartbeat"),
                    }
                    if msg.offset() + 1 >= self.start_end {
                        self.synced.store(true, Ordering::Release);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "membership consumer error");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
            }
        }
    }

    /// Whether `beat` (of node `id`) counts as alive: it is this node, or it
    /// is not leaving and is within the failure timeout of the log's clock.
    fn alive(&self, id: &str, beat: &Heartbeat) -> bool {
        let log_now = self.log_now_ms.load(Ordering::Acquire);
        id == self.me
            || (!beat.leaving && log_now - beat.sent_ms <= self.failure_timeout.as_millis() as i64)
    }

    /// Whether the heartbeats published before this node started are read.
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Every node heard from within the failure timeout that is not leaving,
    /// by id. This node is always in it.
    pub fn live(&self) -> BTreeMap<String, Heartbeat> {
        self.members
            .read()
            .expect("members lock")
            .iter()
            .filter(|(id, b)| self.alive(id, b))
            .map(|(id, b)| (id.clone(), b.clone()))
            .collect()
    }

    /// The replicas of partition `partition` of view `view`'s `view` stage
    /// (what reads see) that the other live nodes report, as of their last
    /// heartbeat. On the read path: looks at the heartbeats in place rather
    /// than copying them.
    pub fn replicas_of(&self, view: u64, partition: u32) -> Vec<RemoteReplica> {
        let now = now_ms();
        let members = self.members.read().expect("members lock");
        let mut out = Vec::new();
        for (id, b) in members.iter() {
            if id == &self.me || !self.alive(id, b) {
                continue;
            }
            for r in &b.replicas {
                if r.view == view && r.partition == partition && r.stage == "view" {
                    let role = Role::from_name(&r.role).unwrap_or(Role::Restoring);
                    out.push(RemoteReplica {
                        node: b.node.clone(),
                        internal: b.internal.clone(),
                        role,
                        readable: r.readable || role != Role::Restoring,
                        lag_records: (r.end - r.applied).max(0),
                        lag_ms: r.lag_ms,
                        age_ms: (now - b.sent_ms).max(0),
                    });
                }
            }
        }
        out
    }

    /// The other live nodes with the replicas each holds of `stage` of view
    /// `view`: placement's view of the cluster.
    pub fn others(&self, view: u64, stage: &str) -> Vec<Member> {
        let members = self.members.read().expect("members lock");
        members
            .iter()
            .filter(|(id, b)| *id != &self.me && self.alive(id, b))
            .map(|(id, b)| Member {
                node: id.clone(),
                holds: b
                    .replicas
                    .iter()
                    .filter(|r| r.view == view && r.stage == stage)
                    .filter_map(|r| {
                        let role = Role::from_name(&r.role)?;
                        let lag_records = (r.end - r.applied).max(0);
                        Some((r.partition, Holding { role, lag_records }))
                    })
                    .collect(),
            })
            .collect()
    }
}

/// A replica on another node, as its last heartbeat reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteReplica {
    pub node: String,
    /// Where its internal service listens.
    pub internal: String,
    pub role: Role,
    /// Whether it answers reads (every active and standby; a restoring
    /// replica only while its state stands at a commit).
    pub readable: bool,
    pub lag_records: i64,
    pub lag_ms: i64,
    /// How old the heartbeat is.
    pub age_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(node: &str, sent_ms: i64, leaving: bool) -> Heartbeat {
        Heartbeat {
            node: node.into(),
            pg: format!("{node}:5432"),
            internal: format!("{node}:6000"),
            started_ms: 0,
            sent_ms,
            leaving,
            replicas: vec![ReplicaReport {
                view: 1,
                stage: "view".into(),
                partition: 2,
                role: "active".into(),
                applied: 5,
                end: 5,
                lag_ms: 0,
                readable: true,
            }],
            views: Vec::new(),
        }
    }

    fn membership(me: &str) -> Membership {
        Membership {
            me: me.into(),
            failure_timeout: Duration::from_secs(3),
            members: RwLock::new(BTreeMap::new()),
            synced: AtomicBool::new(true),
            start_end: 0,
            log_now_ms: std::sync::atomic::AtomicI64::new(0),
            topic: "t".into(),
            producer: rdkafka::ClientConfig::new()
                .set("bootstrap.servers", "127.0.0.1:1")
                .create()
                .unwrap(),
            kafka: KafkaConfig {
                brokers: "127.0.0.1:1".into(),
                cluster: "c".into(),
                timeout: Duration::from_secs(1),
                delete_internal_topics: false,
                group: Default::default(),
            },
            credentials: OnceLock::new(),
            ignored: Mutex::new(BTreeSet::new()),
        }
    }

    #[test]
    fn heartbeats_count_only_with_the_cluster_signature() {
        let m = membership("a");
        let payload = serde_json::to_vec(&beat("b", 1, false)).unwrap();
        assert!(
            m.verified(&payload, None),
            "no credentials yet: cannot tell"
        );
        let ours = Credentials::from_key(&[7u8; 32]).unwrap();
        let theirs = Credentials::from_key(&[8u8; 32]).unwrap();
        let _ = m.credentials.set(Arc::new(ours));
        let signed = m.credentials.get().unwrap().sign(&payload);
        assert!(m.verified(&payload, Some(&signed)));
        assert!(!m.verified(&payload, None), "unsigned");
        assert!(
            !m.verified(&payload, Some(&theirs.sign(&payload))),
            "another key"
        );
        let mut tampered = payload.clone();
        tampered[3] ^= 1;
        assert!(
            !m.verified(&tampered, Some(&signed)),
            "changed after signing"
        );
    }

    #[test]
    fn a_stalled_log_declares_nobody_dead() {
        let m = membership("a");
        // The broker stalled a minute ago: the last beats read are that old.
        let then = now_ms() - 60_000;
        m.read_from_log(beat("b", then, false));
        m.read_from_log(beat("c", then - 1_000, false));
        let live: Vec<_> = m.live().into_keys().collect();
        assert_eq!(live, ["b", "c"], "nobody is dead on a stalled log");
        // b's beats get through again, c's do not: c is dead.
        m.read_from_log(beat("b", then + 5_000, false));
        let live: Vec<_> = m.live().into_keys().collect();
        assert_eq!(live, ["b"]);
    }

    #[test]
    fn dead_and_leaving_nodes_drop_out_and_old_beats_do_not_win() {
        let m = membership("a");
        let now = now_ms();
        m.read_from_log(beat("a", now, false));
        m.read_from_log(beat("b", now, false));
        m.read_from_log(beat("c", now - 10_000, false));
        m.read_from_log(beat("d", now, true));
        let live: Vec<_> = m.live().into_keys().collect();
        assert_eq!(live, ["a", "b"]);
        m.read_from_log(beat("b", now - 5_000, false));
        assert!(
            m.live().contains_key("b"),
            "an older beat read late is ignored"
        );
        let replicas = m.replicas_of(1, 2);
        assert_eq!(replicas.len(), 1, "{replicas:?}");
        assert_eq!(
            (replicas[0].node.as_str(), replicas[0].role),
            ("b", Role::Active)
        );
        assert!(m.replicas_of(1, 3).is_empty());
        let others = m.others(1, "view");
        assert_eq!(others.len(), 1, "only b: a is this node");
        assert_eq!(others[0].holds[&2].role, Role::Active);
    }
}
