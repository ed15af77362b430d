//! What a running view task reports, for system tables and for readiness.

use common::PartitionId;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    /// Replaying the changelog into local state; not answering reads.
    Restoring,
    /// Caught up with its changelog and ingesting.
    Running,
    /// Stopped by an error it cannot get past; the reason is for the user.
    Failed(String),
    Stopped,
}

/// Counters and positions of one view.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub records: u64,
    pub skipped: u64,
    pub batches: u64,
    pub source_offsets: BTreeMap<i32, i64>,
    /// Changelog offset applied, per view partition.
    pub applied: BTreeMap<PartitionId, i64>,
    /// Changelog records replayed by the last restore.
    pub restored_records: u64,
}

pub struct ViewStatus {
    state: watch::Sender<TaskState>,
    progress: Mutex<Progress>,
    started: Instant,
    last_applied: Mutex<Instant>,
}

impl Default for ViewStatus {
    fn default() -> Self {
        ViewStatus {
            state: watch::channel(TaskState::Restoring).0,
            progress: Mutex::new(Progress::default()),
            started: Instant::now(),
            last_applied: Mutex::new(Instant::now()),
        }
    }
}

impl ViewStatus {
    pub fn state(&self) -> TaskState {
        self.state.borrow().clone()
    }

    pub(crate) fn set_state(&self, s: TaskState) {
        self.state.send_replace(s);
    }

    pub fn progress(&self) -> Progress {
        self.progress.lock().expect("status lock").clone()
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut Progress)) {
        f(&mut self.progress.lock().expect("status lock"));
    }

    /// Marks that the replica has applied everything it was given.
    pub(crate) fn mark_applied(&self) {
        *self.last_applied.lock().expect("status lock") = Instant::now();
    }

    /// How long since the replica last caught up.
    pub fn since_applied(&self) -> Duration {
        self.last_applied.lock().expect("status lock").elapsed()
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits until the task leaves `Restoring`, up to `deadline`.
    pub async fn wait_restored(&self, deadline: Duration) -> TaskState {
        let mut rx = self.state.subscribe();
        let _ = tokio::time::timeout(deadline, rx.wait_for(|s| *s != TaskState::Restoring)).await;
        self.state()
    }
}
