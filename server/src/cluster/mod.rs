//! The cluster as one node sees it: who is alive and what replicas each
//! holds ([`membership`]), how to reach them ([`peers`]) what they may ask of
//! each other ([`internal`]) and where they ask it ([`service`]). The dataflow places partitions from
//! this view ([`Cluster`] is its `Roster`), and the router sends each read
//! to a replica within the session's `max_staleness`.

pub mod credentials;
pub mod internal;
pub mod membership;
pub mod peers;
pub mod service;

use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::handler::Database;
use common::ViewId;
use dataflow::status::now_ms;
use dataflow::{Member, Role, Roster};
use membership::{Heartbeat, Membership, ReplicaReport, ViewCounts};
use peers::Peers;
use storage::Stage;

pub struct Cluster {
    pub membership: Membership,
    pub peers: Peers,
    /// How often this node publishes its heartbeat.
    pub heartbeat: Duration,
    /// How long a silent node counts as alive.
    pub failure_timeout: Duration,
    pub started_ms: i64,
}

impl Roster for Cluster {
    fn ready(&self) -> bool {
        self.membership.synced()
    }

    fn others(&self, view: ViewId, stage: Stage) -> Vec<Member> {
        self.membership.others(view.0, dataflow::stage::step(stage))
    }
}

impl Cluster {
    /// The cluster's credentials, once this node knows them.
    pub fn credentials(&self) -> Option<Arc<credentials::Credentials>> {
        self.membership.credentials.get().cloned()
    }

    /// A replica's lag as this node can vouch for it, from a report
    /// `age_ms` old. The active writes the changelog, so it is never behind
    /// it. A standby behind at the report may have fallen further behind
    /// since, and so may one that missed heartbeats (a paused process): its
    /// lag grows by the report's age. (Heartbeats arrive late when the
    /// broker is slow, so missing means half the failure timeout.)
    pub fn seen_lag_ms(&self, role: Role, lag_ms: i64, lag_records: i64, age_ms: i64) -> i64 {
        let missed = age_ms > self.failure_timeout.as_millis() as i64 / 2;
        if role != Role::Active && (lag_records > 0 || missed) {
            lag_ms.saturating_add(age_ms)
        } else {
            lag_ms
        }
    }

    /// This node's heartbeat: its address and every view partition it serves.
    pub fn heartbeat_of(db: &Database, leaving: bool) -> Heartbeat {
        let now = now_ms();
        let views: Vec<_> = db.catalog.read().views.values().cloned().collect();
        let mut replicas = Vec::new();
        let mut counts = Vec::new();
        for view in views {
            let Some(status) = db.dataflow.status(view.id) else {
                continue;
            };
            let progress = status.progress();
            counts.push(ViewCounts {
                view: view.id.0,
                records: progress.records,
                skipped: progress.skipped,
            });
            for ((stage, p), s) in status.replicas() {
                replicas.push(ReplicaReport {
                    view: view.id.0,
                    stage: dataflow::stage::step(stage).into(),
                    partition: p.0,
                    role: s.role.name().into(),
                    applied: s.applied,
                    end: s.end,
                    lag_ms: s.lag_ms(now),
                    readable: s.readable,
                });
            }
        }
        Heartbeat {
            node: db.config.node_id.clone(),
            pg: db.config.advertise_pg.clone(),
            internal: db.config.advertise_internal.clone(),
            started_ms: db.cluster.started_ms,
            sent_ms: now,
            leaving,
            replicas,
            views: counts,
        }
    }

    /// Publishes this node's heartbeat every interval until `stop`.
    pub async fn run_heartbeats(db: Arc<Database>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(db.cluster.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let beat = Cluster::heartbeat_of(&db, false);
            if let Err(e) = db.cluster.membership.publish(beat).await {
                tracing::warn!(error = %e, "could not publish heartbeat");
            }
        }
    }

    /// The live nodes' heartbeats, this node's as of now.
    pub fn members_now(db: &Database) -> std::collections::BTreeMap<String, Heartbeat> {
        let mut members = db.cluster.membership.live();
        members.insert(db.config.node_id.clone(), Cluster::heartbeat_of(db, false));
        members
    }

    /// Records applied and skipped for each view, summed over the live nodes
    /// (this one as of now), by view id.
    pub fn view_counts(db: &Database) -> std::collections::HashMap<u64, (u64, u64)> {
        let members = Cluster::members_now(db);
        let mut sums = std::collections::HashMap::new();
        for c in members.values().flat_map(|b| &b.views) {
            let e = sums.entry(c.view).or_insert((0, 0));
            e.0 += c.records;
            e.1 += c.skipped;
        }
        sums
    }

    /// Tells the others this node is leaving, so they stop routing to it
    /// without waiting for the failure timeout.
    pub async fn say_goodbye(db: &Database) {
        let beat = Cluster::heartbeat_of(db, true);
        if let Err(e) = db.cluster.membership.publish(beat).await {
            tracing::warn!(error = %e, "could not publish the leaving heartbeat");
        }
    }
}
