//! [`Dataflow`]: owns the view tasks of this node — starts them, stops them,
//! and answers what they are doing.

use common::ViewId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use storage::StateStore;

use crate::error::DataflowError;
use crate::kafka::KafkaConfig;
use crate::status::ViewStatus;
use crate::task::{ViewSpec, ViewTask};

struct Running {
    name: String,
    cancel: Arc<AtomicBool>,
    thread: JoinHandle<()>,
    status: Arc<ViewStatus>,
}

pub struct Dataflow {
    /// This node's id, carried into every task's tracing span.
    node: String,
    kafka: KafkaConfig,
    store: Arc<StateStore>,
    tasks: Mutex<HashMap<ViewId, Running>>,
}

impl Dataflow {
    pub fn new(node: String, kafka: KafkaConfig, store: Arc<StateStore>) -> Dataflow {
        Dataflow {
            node,
            kafka,
            store,
            tasks: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &Arc<StateStore> {
        &self.store
    }

    pub fn kafka(&self) -> &KafkaConfig {
        &self.kafka
    }

    /// Starts the task of a view (restore, then ingest) on its own thread.
    pub fn start_view(&self, spec: ViewSpec) -> Arc<ViewStatus> {
        let status = Arc::new(ViewStatus::default());
        let cancel = Arc::new(AtomicBool::new(false));
        let id = spec.id;
        let name = spec.def.name.clone();
        let span = tracing::info_span!("view", node = %self.node, view = %name, id = %id);
        let task = ViewTask::new(
            spec,
            self.kafka.clone(),
            self.store.clone(),
            status.clone(),
            cancel.clone(),
        );
        let thread = std::thread::Builder::new()
            .name(format!("view-{name}"))
            .spawn(move || span.in_scope(|| task.run()))
            .expect("spawn view thread");
        let running = Running {
            name,
            cancel,
            thread,
            status: status.clone(),
        };
        if let Some(old) = self.tasks.lock().expect("tasks lock").insert(id, running) {
            stop(old);
        }
        status
    }

    pub fn status(&self, id: ViewId) -> Option<Arc<ViewStatus>> {
        self.tasks
            .lock()
            .expect("tasks lock")
            .get(&id)
            .map(|r| r.status.clone())
    }

    /// Stops a view's task and waits for it: its last batch is either
    /// committed or never was.
    pub fn stop_view(&self, id: ViewId) {
        if let Some(r) = self.tasks.lock().expect("tasks lock").remove(&id) {
            stop(r);
        }
    }

    /// Stops a view and removes its state and internal topics.
    pub fn drop_view(&self, id: ViewId, name: &str) -> Result<(), DataflowError> {
        self.stop_view(id);
        self.store.drop_view(id)?;
        if !self.kafka.delete_internal_topics {
            return Ok(());
        }
        let topics = self.kafka.view_topics(id, name);
        self.kafka
            .delete_topics(&[&topics.changelog, &topics.commits])
    }

    /// Stops every task, in no particular order; each finishes its batch.
    pub fn shutdown(&self) {
        let all: Vec<Running> = self
            .tasks
            .lock()
            .expect("tasks lock")
            .drain()
            .map(|(_, r)| r)
            .collect();
        for r in &all {
            r.cancel.store(true, Ordering::Relaxed);
        }
        for r in all {
            stop(r);
        }
    }
}

fn stop(r: Running) {
    r.cancel.store(true, Ordering::Relaxed);
    if r.thread.join().is_err() {
        tracing::error!(view = %r.name, "view task panicked");
    }
}
