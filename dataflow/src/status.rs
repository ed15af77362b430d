//! What a view's tasks report, for system tables, routing and readiness.
//!
//! A view runs as steps (`shuffle`, `resolve`, `view`), each a supervised
//! thread. The view's state is the worst of its steps'. The stage partitions
//! this node holds a replica of (active, restoring or standby), and how far
//! each has applied its changelog, are what placement and reads go by.

use common::PartitionId;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use storage::Stage;
use tokio::sync::watch;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    /// Joining its groups and restoring the partitions it was given.
    Restoring,
    /// Serving the partitions it owns (possibly none) and ingesting.
    Running,
    /// Stopped by an error it cannot get past; the reason is for the user.
    Failed(String),
    Stopped,
}

impl TaskState {
    fn rank(&self) -> u8 {
        match self {
            TaskState::Running => 0,
            TaskState::Restoring => 1,
            TaskState::Stopped => 2,
            TaskState::Failed(_) => 3,
        }
    }
}

/// What a node does for one partition of a view's stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Becoming the active: catching up with the log before it ingests;
    /// not answering reads.
    Restoring,
    /// The one replica that ingests (writes the changelog) and answers reads.
    Active,
    /// Replays the changelog the active writes; answers reads within
    /// `max_staleness`; takes over when the active goes.
    Standby,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Restoring => "restoring",
            Role::Active => "active",
            Role::Standby => "standby",
        }
    }

    pub fn from_name(name: &str) -> Option<Role> {
        match name {
            "restoring" => Some(Role::Restoring),
            "active" => Some(Role::Active),
            "standby" => Some(Role::Standby),
            _ => None,
        }
    }
}

/// The lag of a replica that is behind since a time nobody knows: it is
/// over every bound, and shown as unknown rather than as a number.
pub const UNKNOWN_LAG_MS: i64 = i64::MAX;

/// A lag for people: `1234 ms`, or `unknown` (see [`UNKNOWN_LAG_MS`]).
pub fn lag_text(lag_ms: i64) -> String {
    if lag_ms == UNKNOWN_LAG_MS {
        "unknown".to_owned()
    } else {
        format!("{lag_ms} ms")
    }
}

/// A standby whose follower thread has not reported for this long may be
/// stopped (a paused process, a stalled disk): its lag counts the silence.
const FOLLOWER_SILENCE_MS: i64 = 1_000;

/// One replica this node holds of a stage partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionStatus {
    pub role: Role,
    /// Next changelog offset to apply.
    pub applied: i64,
    /// Changelog end offset as last known.
    pub end: i64,
    /// Wall-clock ms when `applied` last reached `end`; `None` for a replica
    /// that has been behind since it started (how far back is unknown).
    pub caught_up_at_ms: Option<i64>,
    /// Timestamp of the oldest changelog record not applied yet, when it has
    /// been read (a standby reads ahead of what it applies).
    pub oldest_unapplied_ms: Option<i64>,
    /// Wall-clock ms of this report.
    pub updated_ms: i64,
    /// Whether its state answers reads: always for the active and standbys
    /// (each stays at an accepted commit), and for a restoring replica whose
    /// catch-up lands as one write (its state moves from one accepted commit
    /// to the last; a longer restore writes in chunks, between commits).
    pub readable: bool,
}

impl PartitionStatus {
    pub fn lag_records(&self) -> i64 {
        (self.end - self.applied).max(0)
    }

    /// DESIGN.md §3: 0 when caught up, else the age of the oldest changelog
    /// record not applied — exact when that record has been read, else the
    /// time since the replica last was caught up (an upper bound: every
    /// record it lacks was written after that). A standby whose follower has
    /// gone silent also counts the silence: it cannot vouch for the time since.
    /// [`UNKNOWN_LAG_MS`] when the replica is behind and nothing bounds
    /// since when — never a lag computed from a missing timestamp.
    pub fn lag_ms(&self, now_ms: i64) -> i64 {
        let lag = if self.lag_records() == 0 {
            0
        } else {
            match self.oldest_unapplied_ms.or(self.caught_up_at_ms) {
                Some(since) => now_ms - since,
                None => return UNKNOWN_LAG_MS,
            }
        };
        let silence = now_ms - self.updated_ms;
        if self.role == Role::Standby && silence > FOLLOWER_SILENCE_MS {
            lag.max(silence)
        } else {
            lag.max(0)
        }
    }
}

/// Counters of one view on this node.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Records applied to partitions owned here.
    pub records: u64,
    /// Bad records skipped (by the shuffle or a stage here).
    pub skipped: u64,
    pub batches: u64,
    /// Changelog records replayed by takeovers.
    pub restored_records: u64,
}

pub struct ViewStatus {
    state: watch::Sender<TaskState>,
    steps: Mutex<BTreeMap<&'static str, TaskState>>,
    progress: Mutex<Progress>,
    partitions: Mutex<BTreeMap<(Stage, PartitionId), PartitionStatus>>,
    started: Instant,
}

impl ViewStatus {
    /// The status of a view run as `steps`, all restoring at first.
    pub fn new(steps: &[&'static str]) -> ViewStatus {
        ViewStatus {
            state: watch::channel(TaskState::Restoring).0,
            steps: Mutex::new(steps.iter().map(|s| (*s, TaskState::Restoring)).collect()),
            progress: Mutex::new(Progress::default()),
            partitions: Mutex::new(BTreeMap::new()),
            started: Instant::now(),
        }
    }

    pub fn state(&self) -> TaskState {
        self.state.borrow().clone()
    }

    /// Sets one step's state; the view's becomes the worst of its steps'.
    pub(crate) fn set_step(&self, step: &'static str, s: TaskState) {
        let mut steps = self.steps.lock().expect("status lock");
        steps.insert(step, s);
        let worst = steps
            .values()
            .max_by_key(|s| s.rank())
            .cloned()
            .unwrap_or(TaskState::Stopped);
        self.state.send_replace(worst);
    }

    pub fn progress(&self) -> Progress {
        self.progress.lock().expect("status lock").clone()
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut Progress)) {
        f(&mut self.progress.lock().expect("status lock"));
    }

    /// Every stage partition this node holds a replica of.
    pub fn replicas(&self) -> BTreeMap<(Stage, PartitionId), PartitionStatus> {
        self.partitions.lock().expect("status lock").clone()
    }

    /// This node's replica of partition `p` of the `view` stage (what reads see).
    pub fn partition(&self, p: PartitionId) -> Option<PartitionStatus> {
        self.replica(Stage::View, p)
    }

    pub fn replica(&self, stage: Stage, p: PartitionId) -> Option<PartitionStatus> {
        self.partitions
            .lock()
            .expect("status lock")
            .get(&(stage, p))
            .copied()
    }

    pub(crate) fn set_partition(
        &self,
        stage: Stage,
        p: PartitionId,
        role: Role,
        applied: i64,
        end: i64,
        oldest_unapplied_ms: Option<i64>,
    ) {
        let readable = role != Role::Restoring;
        self.set_replica(stage, p, role, applied, end, oldest_unapplied_ms, readable);
    }

    /// An active that hands partition `p` over and keeps a standby of it: its
    /// state, at changelog offset `at`, is the log's end as of now (it was
    /// the writer), and the new active's end is not known yet — caught up
    /// now, behind by an unknown number of records from now on.
    pub(crate) fn set_handed_over(&self, stage: Stage, p: PartitionId, at: i64) {
        let now = now_ms();
        self.partitions.lock().expect("status lock").insert(
            (stage, p),
            PartitionStatus {
                role: Role::Standby,
                applied: at,
                end: at + 1,
                caught_up_at_ms: Some(now),
                oldest_unapplied_ms: None,
                updated_ms: now,
                readable: true,
            },
        );
    }

    /// A restore's progress: restoring, readable only while its state is at
    /// an accepted commit (see [`PartitionStatus::readable`]).
    pub(crate) fn set_restoring(
        &self,
        stage: Stage,
        p: PartitionId,
        applied: i64,
        end: i64,
        oldest_unapplied_ms: Option<i64>,
        at_commit: bool,
    ) {
        let role = Role::Restoring;
        self.set_replica(stage, p, role, applied, end, oldest_unapplied_ms, at_commit);
    }

    #[allow(clippy::too_many_arguments)]
    fn set_replica(
        &self,
        stage: Stage,
        p: PartitionId,
        role: Role,
        applied: i64,
        end: i64,
        oldest_unapplied_ms: Option<i64>,
        readable: bool,
    ) {
        let mut parts = self.partitions.lock().expect("status lock");
        let now = now_ms();
        let caught_up_at_ms = match parts.get(&(stage, p)) {
            _ if applied >= end => Some(now),
            Some(old) => old.caught_up_at_ms,
            // Behind from the start, since a time unknown: unknown until the
            // oldest missing record is read.
            None => None,
        };
        parts.insert(
            (stage, p),
            PartitionStatus {
                role,
                applied,
                end,
                caught_up_at_ms,
                oldest_unapplied_ms,
                updated_ms: now,
                readable,
            },
        );
    }

    pub(crate) fn remove_partition(&self, stage: Stage, p: PartitionId) {
        self.partitions
            .lock()
            .expect("status lock")
            .remove(&(stage, p));
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits until the view leaves `Restoring`, up to `deadline`.
    pub async fn wait_restored(&self, deadline: Duration) -> TaskState {
        let mut rx = self.state.subscribe();
        let _ = tokio::time::timeout(deadline, rx.wait_for(|s| *s != TaskState::Restoring)).await;
        self.state()
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
