//! Placement: which node is the active of each stage partition, and which
//! nodes keep standbys of it.
//!
//! Every node computes the same answer from the same inputs — the live
//! members and the replicas each reports in its heartbeats (carried by
//! Kafka, see the server's membership) — so no coordinator is asked and a
//! failover waits only for the failure timeout, not for a group rebalance.
//!
//! For each partition, in order:
//! 1. The live nodes are ranked by rendezvous hashing of (view, stage,
//!    partition, node): the ranking moves a partition only when a node
//!    near its top comes or goes. Its *desired* nodes are the best-ranked
//!    node with room for one more active (⌊partitions / nodes⌋ each, one
//!    more for as many nodes as the division leaves over: actives spread
//!    evenly), then the best-ranked `standbys` others with room for one
//!    more standby (counted the same way).
//! 2. The active is the first desired node that is *warm* — it holds
//!    a replica at most [`ACCEPTABLE_LAG`] changelog records behind (as
//!    Kafka Streams' KIP-441 does). Else the node that already is the active
//!    stays (a desired node is still warming up). Else — the active died
//!    and no desired node is warm — the live node with the least lag, so a
//!    standby outside the desired set still beats a cold restore.
//! 3. The standbys are the other desired nodes; while the active is not a
//!    desired node, every desired node keeps one (a warm-up replica), so
//!    that it can take over without a cold restore once it is warm.
//!
//! Two nodes that briefly disagree (one heard a heartbeat the other has
//! not) may both act as the active for a moment; exactly-once does not
//! depend on placement: the commit chain (`storage::changelog`) accepts one
//! writer's batches and the other restores.

use common::ids::fnv1a;
use common::ViewId;
use std::collections::BTreeMap;
use storage::Stage;

use crate::status::Role;

/// A replica at most this many changelog records behind counts as warm: it
/// can become the active after a short catch-up.
pub const ACCEPTABLE_LAG: i64 = 10_000;

/// One replica a node reports holding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holding {
    pub role: Role,
    pub lag_records: i64,
}

/// A live node and the replicas it holds of one view stage, by partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub node: String,
    pub holds: BTreeMap<u32, Holding>,
}

/// Where one partition lives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Placement {
    pub active: Option<String>,
    pub standbys: Vec<String>,
}

/// What the node sees of the cluster.
pub trait Roster: Send + Sync {
    /// Whether the node has caught up with the membership log; before that
    /// it would see itself alone and claim every partition.
    fn ready(&self) -> bool;
    /// The other live nodes, with what each reports holding of `stage` of
    /// view `view`.
    fn others(&self, view: ViewId, stage: Stage) -> Vec<Member>;
}

/// A node with no cluster around it: it holds every active.
pub struct Alone;

impl Roster for Alone {
    fn ready(&self) -> bool {
        true
    }

    fn others(&self, _: ViewId, _: Stage) -> Vec<Member> {
        Vec::new()
    }
}

/// Places every partition of `stage` of view `view` among `members`.
pub fn place_all(
    view: ViewId,
    stage: Stage,
    partitions: u32,
    standbys: u32,
    members: &[Member],
) -> Vec<Placement> {
    let n = members.len();
    if n == 0 {
        return vec![Placement::default(); partitions as usize];
    }
    let k = (standbys as usize).min(n - 1);
    let parts = partitions as usize;
    let mut actives = Room::new(n, parts);
    let mut stands = Room::new(n, parts * k);
    let mut out = Vec::with_capacity(parts);
    for p in 0..partitions {
        let mut ranked: Vec<usize> = (0..n).collect();
        ranked.sort_by_key(|i| std::cmp::Reverse(score(view, stage, p, &members[*i].node)));
        let first = ranked
            .iter()
            .copied()
            .find(|i| actives.has(*i))
            .unwrap_or(ranked[0]);
        actives.take(first);
        let mut desired = vec![first];
        for roomy in [true, false] {
            for &i in &ranked {
                if desired.len() > k {
                    break;
                }
                if !desired.contains(&i) && (!roomy || stands.has(i)) {
                    stands.take(i);
                    desired.push(i);
                }
            }
        }
        out.push(choose(p, &desired, &ranked, members));
    }
    out
}

/// Shares `total` places evenly among `n` nodes: ⌊total / n⌋ each, and one
/// more for the first `total mod n` nodes that ask.
struct Room {
    used: Vec<usize>,
    base: usize,
    extra_left: usize,
}

impl Room {
    fn new(n: usize, total: usize) -> Room {
        Room {
            used: vec![0; n],
            base: total / n,
            extra_left: total % n,
        }
    }

    fn has(&self, i: usize) -> bool {
        self.used[i] < self.base || (self.used[i] == self.base && self.extra_left > 0)
    }

    fn take(&mut self, i: usize) {
        if self.used[i] == self.base && self.extra_left > 0 {
            self.extra_left -= 1;
        }
        self.used[i] += 1;
    }
}

/// Picks partition `p`'s active among its desired nodes, its current active
/// or the least-behind replica (see the module doc), given nodes as indexes
/// into `members`.
fn choose(p: u32, desired: &[usize], ranked: &[usize], members: &[Member]) -> Placement {
    let holding = |i: &usize| members[*i].holds.get(&p).copied();
    let warm = |i: &&usize| holding(i).is_some_and(|h| h.lag_records <= ACCEPTABLE_LAG);
    let current =
        |i: &&usize| holding(i).is_some_and(|h| matches!(h.role, Role::Active | Role::Restoring));
    let active = desired
        .iter()
        .find(warm)
        .or_else(|| ranked.iter().find(current))
        .or_else(|| {
            ranked
                .iter()
                .filter(|i| holding(i).is_some())
                .min_by_key(|i| holding(i).map(|h| h.lag_records))
        })
        .or(desired.first())
        .copied();
    let standbys = desired
        .iter()
        .filter(|i| Some(**i) != active)
        .map(|i| members[*i].node.clone())
        .collect();
    Placement {
        active: active.map(|i| members[i].node.clone()),
        standbys,
    }
}

/// The rendezvous score of `node` for one partition: higher ranks first.
fn score(view: ViewId, stage: Stage, partition: u32, node: &str) -> u64 {
    let mut bytes = Vec::with_capacity(node.len() + 13);
    bytes.extend_from_slice(&view.0.to_be_bytes());
    bytes.push(stage as u8);
    bytes.extend_from_slice(&partition.to_be_bytes());
    bytes.extend_from_slice(node.as_bytes());
    mix(fnv1a(&bytes))
}

/// SplitMix64's finalizer: FNV alone spreads short, similar inputs poorly.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(node: &str, holds: &[(u32, Role, i64)]) -> Member {
        Member {
            node: node.into(),
            holds: holds
                .iter()
                .map(|(p, role, lag)| {
                    (
                        *p,
                        Holding {
                            role: *role,
                            lag_records: *lag,
                        },
                    )
                })
                .collect(),
        }
    }

    fn place0(standbys: u32, members: &[Member]) -> Placement {
        place_all(ViewId(7), Stage::View, 1, standbys, members).remove(0)
    }

    /// The nodes in rank order for partition 0 of the test view.
    fn ranking(nodes: &[&str]) -> Vec<String> {
        let members: Vec<Member> = nodes.iter().map(|n| member(n, &[])).collect();
        let mut ranked: Vec<&Member> = members.iter().collect();
        ranked.sort_by_key(|m| std::cmp::Reverse(score(ViewId(7), Stage::View, 0, &m.node)));
        ranked.iter().map(|m| m.node.clone()).collect()
    }

    #[test]
    fn a_fresh_cluster_puts_the_active_and_standbys_on_distinct_ranked_nodes() {
        let nodes = ["n1", "n2", "n3"];
        let r = ranking(&nodes);
        let members: Vec<Member> = nodes.iter().map(|n| member(n, &[])).collect();
        let p = place0(1, &members);
        assert_eq!(p.active.as_ref(), Some(&r[0]));
        assert_eq!(p.standbys, vec![r[1].clone()]);
        let p = place0(5, &members);
        assert_eq!(p.standbys.len(), 2, "fewer standbys when fewer nodes live");
        assert!(!p.standbys.contains(p.active.as_ref().unwrap()));
    }

    #[test]
    fn a_warm_standby_takes_over_when_the_active_dies() {
        let r = ranking(&["n1", "n2", "n3"]);
        // The top-ranked node, the active, died. Of the two left (both
        // desired with one standby), the warm standby wins over the cold
        // second-ranked one; the cold one becomes its standby.
        let members = vec![
            member(&r[1], &[(0, Role::Standby, 50_000)]),
            member(&r[2], &[(0, Role::Standby, 3)]),
        ];
        let p = place0(1, &members);
        assert_eq!(p.active.as_ref(), Some(&r[2]));
        assert_eq!(p.standbys, vec![r[1].clone()]);
    }

    #[test]
    fn the_warm_desired_node_wins_and_a_cold_one_warms_up_first() {
        let r = ranking(&["n1", "n2", "n3"]);
        // r[2] is the active (it took over while r[0] was away); r[0] is
        // back but cold: r[2] stays active, r[0] warms up as a standby.
        let members = vec![
            member(&r[0], &[]),
            member(&r[1], &[]),
            member(&r[2], &[(0, Role::Active, 0)]),
        ];
        let p = place0(0, &members);
        assert_eq!(p.active.as_ref(), Some(&r[2]));
        assert_eq!(p.standbys, vec![r[0].clone()], "a warm-up replica");
        // Once r[0] is warm it becomes the active; r[2] lets go.
        let members = vec![
            member(&r[0], &[(0, Role::Standby, 12)]),
            member(&r[1], &[]),
            member(&r[2], &[(0, Role::Active, 0)]),
        ];
        let p = place0(0, &members);
        assert_eq!(p.active.as_ref(), Some(&r[0]));
        assert!(p.standbys.is_empty());
    }

    #[test]
    fn with_no_warm_replica_the_least_behind_wins_over_a_cold_start() {
        let r = ranking(&["n1", "n2", "n3"]);
        let members = vec![
            member(&r[0], &[]),
            member(&r[1], &[]),
            member(&r[2], &[(0, Role::Standby, 80_000)]),
        ];
        assert_eq!(place0(0, &members).active.as_ref(), Some(&r[2]));
    }

    #[test]
    fn every_node_computes_the_same_placement_whatever_the_order() {
        let a = vec![
            member("n1", &[(0, Role::Active, 0)]),
            member("n2", &[(0, Role::Standby, 0)]),
            member("n3", &[]),
        ];
        let mut b = a.clone();
        b.reverse();
        assert_eq!(
            place_all(ViewId(1), Stage::View, 16, 1, &a),
            place_all(ViewId(1), Stage::View, 16, 1, &b)
        );
    }

    #[test]
    fn actives_and_standbys_spread_evenly() {
        for (nodes, parts, k) in [(3, 6, 0), (3, 6, 1), (3, 4, 2), (2, 5, 1), (4, 300, 1)] {
            let members: Vec<Member> = (0..nodes).map(|i| member(&format!("n{i}"), &[])).collect();
            let placed = place_all(ViewId(3), Stage::View, parts, k, &members);
            let mut actives: BTreeMap<String, usize> = BTreeMap::new();
            let mut standbys: BTreeMap<String, usize> = BTreeMap::new();
            for pl in &placed {
                *actives.entry(pl.active.clone().unwrap()).or_default() += 1;
                assert_eq!(pl.standbys.len(), k as usize);
                assert!(!pl.standbys.contains(pl.active.as_ref().unwrap()));
                for s in &pl.standbys {
                    *standbys.entry(s.clone()).or_default() += 1;
                }
            }
            let most = (parts as usize).div_ceil(nodes);
            assert!(actives.values().all(|n| *n <= most), "{actives:?}");
            assert_eq!(actives.len(), nodes.min(parts as usize), "{actives:?}");
            // The last partitions may find room for a standby only on a
            // node that is full: close to even, not exactly.
            let most = (parts as usize * k as usize).div_ceil(nodes) + parts as usize / 20;
            assert!(standbys.values().all(|n| *n <= most), "{standbys:?}");
        }
    }
}
