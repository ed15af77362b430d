//! [`Dataflow`]: owns the view tasks of this node — starts them, stops them,
//! and answers what they are doing.

use common::ViewId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use storage::StateStore;

use crate::error::DataflowError;
use crate::follow::{self, Wanted};
use crate::kafka::KafkaConfig;
use crate::placement::{Alone, Roster};
use crate::shuffle::{self, Shuffle};
use crate::stage::{self, StageTask};
use crate::status::ViewStatus;
use crate::task::{supervise, StepEnv, ViewSpec};
use storage::Stage;

struct Running {
    name: String,
    cancel: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    status: Arc<ViewStatus>,
}

pub struct Dataflow {
    /// This node's id, carried into every task's tracing span.
    node: String,
    kafka: KafkaConfig,
    store: Arc<StateStore>,
    /// Who else is in the cluster; [`Alone`] until [`Dataflow::set_roster`].
    roster: RwLock<Arc<dyn Roster>>,
    tasks: Mutex<HashMap<ViewId, Running>>,
}

impl Dataflow {
    pub fn new(node: String, kafka: KafkaConfig, store: Arc<StateStore>) -> Dataflow {
        Dataflow {
            node,
            kafka,
            store,
            roster: RwLock::new(Arc::new(Alone)),
            tasks: Mutex::new(HashMap::new()),
        }
    }

    /// Tells views started from now on who else is in the cluster.
    pub fn set_roster(&self, roster: Arc<dyn Roster>) {
        *self.roster.write().expect("roster lock") = roster;
    }

    pub fn store(&self) -> &Arc<StateStore> {
        &self.store
    }

    pub fn kafka(&self) -> &KafkaConfig {
        &self.kafka
    }

    /// Starts a view's steps, each on its own supervised thread: the
    /// shuffle (which joins the source's consumer group), then each stage
    /// and its follower, which serve the partitions placement gives this
    /// node as the active and as a standby.
    pub fn start_view(&self, spec: ViewSpec) -> Arc<ViewStatus> {
        let stages: &[Stage] = if spec.resolves() {
            &[Stage::Resolve, Stage::View]
        } else {
            &[Stage::View]
        };
        let mut steps = vec![shuffle::STEP];
        steps.extend(stages.iter().map(|s| stage::step(*s)));
        steps.extend(stages.iter().map(|s| follow::step(*s)));
        let status = Arc::new(ViewStatus::new(&steps));
        let cancel = Arc::new(AtomicBool::new(false));
        let id = spec.id;
        let name = spec.def.name.clone();
        let span = tracing::info_span!("view", node = %self.node, view = %name, id = %id);
        let spawn = |step: &'static str, body: Box<dyn FnOnce() + Send>| {
            let span = span.clone();
            std::thread::Builder::new()
                .name(format!("{step}-{name}"))
                // View expressions are evaluated here, as deep as the planner allows.
                .stack_size(planner::NODE_THREAD_STACK)
                .spawn(move || span.in_scope(body))
                .expect("spawn view thread")
        };
        let env = StepEnv {
            node: self.node.clone(),
            roster: self.roster.read().expect("roster lock").clone(),
            spec,
            kafka: self.kafka.clone(),
            store: self.store.clone(),
            topics: self.kafka.view_topics(id, &name),
            status: status.clone(),
            cancel: cancel.clone(),
        };
        let mut threads = Vec::new();
        let shuffle = Shuffle { env: env.clone() };
        threads.push(spawn(
            shuffle::STEP,
            Box::new(move || supervise(shuffle::STEP, &shuffle.env, || shuffle.run_once())),
        ));
        for stage in stages {
            let wanted = Arc::new(Wanted::new(*stage, status.clone()));
            let task = StageTask {
                env: env.clone(),
                stage: *stage,
                wanted: wanted.clone(),
            };
            let step = stage::step(*stage);
            threads.push(spawn(
                step,
                Box::new(move || supervise(step, &task.env, || task.run_once())),
            ));
            let (env, stage) = (env.clone(), *stage);
            let step = follow::step(stage);
            threads.push(spawn(
                step,
                Box::new(move || supervise(step, &env, || follow::run(&env, stage, &wanted))),
            ));
        }
        let running = Running {
            name,
            cancel,
            threads,
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
        self.kafka.delete_topics(&topics.all())
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
    for thread in r.threads {
        if thread.join().is_err() {
            tracing::error!(view = %r.name, "view task panicked");
        }
    }
}
