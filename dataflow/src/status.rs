//! What a view's tasks report, for system tables, routing and readiness.
//!
//! A view runs as steps (`shuffle`, `resolve`, `view`), each a supervised
//! thread. The view's state is the worst of its steps'. The partitions of the
//! `view` stage this node owns, and how far each has applied its changelog,
//! are what reads are routed by.

use common::PartitionId;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
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

/// What a node does for one partition of a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Taking over: replaying the changelog; not answering reads.
    Restoring,
    /// Owner: ingesting and answering reads.
    Active,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Restoring => "restoring",
            Role::Active => "active",
        }
    }
}

/// One owned partition of the `view` stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionStatus {
    pub role: Role,
    /// Next changelog offset to apply.
    pub applied: i64,
    /// Changelog end offset as last known.
    pub end: i64,
    /// Wall-clock ms when `applied` last reached `end` (for `lag_ms`).
    pub caught_up_at_ms: i64,
}

impl PartitionStatus {
    pub fn lag_records(&self) -> i64 {
        (self.end - self.applied).max(0)
    }

    /// How stale the partition may be: 0 when caught up, else the time since
    /// it last was (an upper bound on the age of the oldest unapplied change).
    pub fn lag_ms(&self, now_ms: i64) -> i64 {
        if self.lag_records() == 0 {
            0
        } else {
            (now_ms - self.caught_up_at_ms).max(0)
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
    partitions: Mutex<BTreeMap<PartitionId, PartitionStatus>>,
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

    /// The `view`-stage partitions this node owns.
    pub fn partitions(&self) -> BTreeMap<PartitionId, PartitionStatus> {
        self.partitions.lock().expect("status lock").clone()
    }

    pub fn partition(&self, p: PartitionId) -> Option<PartitionStatus> {
        self.partitions
            .lock()
            .expect("status lock")
            .get(&p)
            .copied()
    }

    pub(crate) fn set_partition(&self, p: PartitionId, role: Role, applied: i64, end: i64) {
        let mut parts = self.partitions.lock().expect("status lock");
        let caught_up_at_ms = match parts.get(&p) {
            Some(old) if applied < end => old.caught_up_at_ms,
            _ => now_ms(),
        };
        parts.insert(
            p,
            PartitionStatus {
                role,
                applied,
                end,
                caught_up_at_ms,
            },
        );
    }

    pub(crate) fn remove_partition(&self, p: PartitionId) {
        self.partitions.lock().expect("status lock").remove(&p);
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
