//! Boots a node and shuts it down, in a stated order.
//!
//! Start: open the state store → replay the catalog log → start every view's
//! task and wait for its restore → follow the catalog log → bind the Postgres
//! listener and say `eddy ready`. A client can connect only once every view
//! can answer.
//!
//! Stop: stop accepting connections → stop following the catalog → stop the
//! view tasks (each finishes or abandons its batch; both are safe) → close
//! the store.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::catalog::{Catalog, Effect, EffectSink};
use crate::config::NodeConfig;
use crate::error::Error;
use crate::handler::Database;
use crate::session::vars::VarDefaults;
use dataflow::{Dataflow, KafkaConfig, TaskState, ViewSpec};
use storage::StateStore;

/// How long startup waits for one view to restore before serving without it.
const RESTORE_DEADLINE: Duration = Duration::from_secs(600);

/// Starts and stops view tasks as the catalog log says.
struct DataflowSink(Arc<Dataflow>);

impl EffectSink for DataflowSink {
    fn on_effect(&self, effect: Effect) {
        match effect {
            Effect::None => {}
            Effect::ViewCreated { view, source } => {
                self.0.start_view(ViewSpec {
                    id: view.id,
                    def: view.def,
                    source,
                });
            }
            Effect::ViewDropped(view) => {
                let df = self.0.clone();
                tokio::task::block_in_place(|| {
                    if let Err(e) = df.drop_view(view.id, &view.def.name) {
                        tracing::warn!(view = %view.def.name, error = %e, "dropping view state");
                    }
                });
            }
            Effect::SourceDropped(name) => {
                if let Err(e) = self.0.store().drop_source_errors(&name) {
                    tracing::warn!(source = %name, error = %e, "dropping source errors");
                }
            }
        }
    }
}

/// Runs a node until `shutdown` resolves. `on_ready` is called with the bound
/// Postgres address once the node answers queries.
pub async fn run(
    config: NodeConfig,
    shutdown: impl Future<Output = ()>,
    on_ready: impl FnOnce(std::net::SocketAddr),
) -> Result<(), Error> {
    let span = tracing::info_span!("node", node = %config.node_id);
    let _enter = span.enter();
    std::fs::create_dir_all(&config.data_dir).map_err(Error::internal)?;
    let store = Arc::new(StateStore::open(&config.data_dir.join("state"))?);
    let kafka = KafkaConfig {
        brokers: config.brokers.clone(),
        cluster: config.cluster.clone(),
        timeout: config.kafka_timeout,
        delete_internal_topics: config.delete_internal_topics,
    };
    let dataflow = Arc::new(Dataflow::new(config.node_id.clone(), kafka.clone(), store));

    let (catalog, consumer) = Catalog::open(&kafka).await?;
    let views: Vec<ViewSpec> = {
        let state = catalog.read();
        state
            .views
            .values()
            .map(|v| ViewSpec {
                id: v.id,
                def: v.def.clone(),
                source: state.sources[&v.def.source].clone(),
            })
            .collect()
    };
    let statuses: Vec<_> = views
        .into_iter()
        .map(|spec| (spec.def.name.clone(), dataflow.start_view(spec)))
        .collect();
    for (name, status) in statuses {
        match status.wait_restored(RESTORE_DEADLINE).await {
            TaskState::Running => {}
            other => {
                tracing::error!(view = %name, state = ?other, "view is not running at startup")
            }
        }
    }
    let stop = CancellationToken::new();
    let follow = tokio::spawn(catalog.clone().follow(
        consumer,
        Arc::new(DataflowSink(dataflow.clone())),
        stop.clone(),
    ));

    let listener = TcpListener::bind(&config.pg_listen)
        .await
        .map_err(Error::internal)?;
    let addr = listener.local_addr().map_err(Error::internal)?;
    let defaults = VarDefaults {
        max_staleness: config.max_staleness,
    };
    let db = Arc::new(Database {
        config,
        catalog,
        dataflow: dataflow.clone(),
        started: Instant::now(),
        plans: Default::default(),
    });
    tracing::info!(%addr, "ready");
    on_ready(addr);
    crate::pgwire::serve(listener, db, defaults, shutdown).await;

    tracing::info!("shutting down");
    stop.cancel();
    let _ = follow.await;
    tokio::task::spawn_blocking(move || dataflow.shutdown())
        .await
        .map_err(Error::internal)?;
    tracing::info!("stopped");
    Ok(())
}
