//! Boots a node and shuts it down, in a stated order.
//!
//! Start: open the state store → replay the catalog log → join membership
//! (follow and publish heartbeats) → start every view's steps and wait until
//! each has read the membership log and restored the partitions placement
//! gives it →
//! follow the catalog log → make sure the cluster secret exists → bind the
//! Postgres listener and say `eddy ready`. The internal service is bound
//! first thing and serves from when the catalog is replayed: its replicas
//! answer as soon as they are readable.
//!
//! Stop: stop accepting connections → publish a leaving heartbeat (reads stop
//! coming here, and the others place its partitions elsewhere at once) →
//! stop the internal service →
//! stop following the catalog and membership → stop the view steps (each
//! finishes or abandons its batch; both are safe) → close the store.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::access::login::Login;
use crate::access::BOOTSTRAP_ROLE;
use crate::catalog::command::Command;
use crate::catalog::{Catalog, Effect, EffectSink};
use crate::cluster::credentials::Credentials;
use crate::cluster::membership::Membership;
use crate::cluster::Cluster;
use crate::config::{NodeConfig, Security};
use crate::error::Error;
use crate::handler::Database;
use crate::session::vars::VarDefaults;
use dataflow::{Dataflow, GroupSettings, KafkaConfig, TaskState, ViewSpec};
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
    mut config: NodeConfig,
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
        group: GroupSettings {
            session_timeout: config.session_timeout,
            heartbeat_interval: config.heartbeat_interval,
        },
    };
    // Bound before the first heartbeat, which tells the others where it is.
    let internal = TcpListener::bind(&config.internal_listen)
        .await
        .map_err(|e| {
            Error::internal(format!(
                "cannot listen on {} (--internal-listen): {e}",
                config.internal_listen
            ))
        })?;
    if config.advertise_internal.is_empty() {
        let port = internal.local_addr().map_err(Error::internal)?.port();
        let host = config
            .advertise_pg
            .rsplit_once(':')
            .map_or(config.advertise_pg.as_str(), |(host, _)| host);
        config.advertise_internal = format!("{host}:{port}");
    }
    tracing::info!(addr = %config.advertise_internal, "internal service listening");
    let dataflow = Arc::new(Dataflow::new(config.node_id.clone(), kafka.clone(), store));
    let (catalog, catalog_consumer) = Catalog::open(&kafka).await?;
    let (membership, membership_consumer) =
        Membership::open(&kafka, &config.node_id, config.session_timeout).await?;
    // The cluster's credentials: the key file, else the catalog's secret
    // when the cluster has one (on a new cluster, once this node wrote it).
    let key_file = config.security.cluster_key_file.clone();
    let known = match &key_file {
        Some(path) => Some(Credentials::from_file(path)?),
        None => catalog_credentials(&catalog)?,
    };
    if let Some(credentials) = known {
        let _ = membership.credentials.set(Arc::new(credentials));
    }
    let cluster = Arc::new(Cluster {
        membership,
        peers: Default::default(),
        heartbeat: config.heartbeat_interval,
        failure_timeout: config.session_timeout,
        started_ms: dataflow::status::now_ms(),
    });
    dataflow.set_roster(cluster.clone());
    let defaults = VarDefaults {
        max_staleness: config.max_staleness,
    };
    let listen = config.pg_listen.clone();
    let scans = Database::scan_slots(config.worker_threads);
    let engine = crate::query::Engine::new(
        catalog.clone(),
        Database::sql_threads(config.worker_threads),
    )?;
    let db = Arc::new_cyclic(|me| Database {
        config,
        catalog: catalog.clone(),
        dataflow: dataflow.clone(),
        cluster: cluster.clone(),
        started: Instant::now(),
        plans: Default::default(),
        scans,
        engine,
        me: me.clone(),
    });
    let stop = CancellationToken::new();
    let follow_members = {
        let (cluster, stop) = (cluster.clone(), stop.clone());
        tokio::spawn(async move { cluster.membership.follow(membership_consumer, stop).await })
    };
    let heartbeats = tokio::spawn(Cluster::run_heartbeats(db.clone(), stop.clone()));

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
    let follow_catalog = tokio::spawn(catalog.clone().follow(
        catalog_consumer,
        Arc::new(DataflowSink(dataflow.clone())),
        stop.clone(),
    ));
    ensure_secret(&catalog).await?;
    if key_file.is_none() {
        tracing::warn!(
            "no --cluster-key-file: nodes authenticate each other with the secret in the \
             catalog log, which anyone who can read the brokers can read"
        );
    }
    let credentials = match cluster.credentials() {
        Some(c) => c,
        None => {
            let c = catalog_credentials(&catalog)?
                .ok_or_else(|| Error::internal("the cluster secret is not in the catalog"))?;
            let c = Arc::new(c);
            let _ = cluster.membership.credentials.set(c.clone());
            c
        }
    };
    let internal_stop = CancellationToken::new();
    let internal = tokio::spawn(crate::cluster::service::serve(
        internal,
        db.clone(),
        credentials.server_tls(),
        internal_stop.clone().cancelled_owned(),
    ));
    ensure_superuser(&catalog, &db.config.security).await?;
    let tls = db.config.security.tls.acceptor()?;
    let certificate = match (&tls, &db.config.security.tls.cert) {
        (Some(_), Some(path)) => Some(std::fs::read(path).map_err(Error::internal)?),
        _ => None,
    };
    let security = crate::pgwire::Security {
        login: Arc::new(Login::new(
            db.config.security.auth,
            db.config.security.tls.required,
            catalog.clone(),
            certificate.as_deref(),
        )),
        tls,
    };
    tracing::info!(
        auth = db.config.security.auth.name(),
        tls = security.tls.is_some(),
        tls_required = db.config.security.tls.required,
        "client authentication"
    );

    let listener = TcpListener::bind(&listen).await.map_err(Error::internal)?;
    let addr = listener.local_addr().map_err(Error::internal)?;
    tracing::info!(%addr, "ready");
    on_ready(addr);
    let limits = db.config.pg_limits;
    crate::pgwire::serve(listener, db.clone(), defaults, limits, security, shutdown).await;

    tracing::info!("shutting down");
    Cluster::say_goodbye(&db).await;
    internal_stop.cancel();
    let _ = internal.await;
    stop.cancel();
    let _ = follow_catalog.await;
    let _ = heartbeats.await;
    let _ = follow_members.await;
    tokio::task::spawn_blocking(move || dataflow.shutdown())
        .await
        .map_err(Error::internal)?;
    tracing::info!("stopped");
    Ok(())
}

/// Makes sure the bootstrap superuser `eddy` exists, with the password the
/// node was given when it has none yet. A password given when `eddy`
/// already has one is not applied: `ALTER ROLE eddy PASSWORD` changes it.
async fn ensure_superuser(catalog: &Catalog, security: &Security) -> Result<(), Error> {
    let existing = catalog
        .read()
        .access
        .role(BOOTSTRAP_ROLE)
        .map(|r| r.def.verifier.is_some());
    let verifier = security
        .password
        .as_ref()
        .map(|p| crate::access::scram::verifier_of(p.expose()));
    let no_password = || Error::Query {
        code: common::SqlState::InvalidParameterValue,
        message: format!(
            "the superuser {BOOTSTRAP_ROLE} has no password, and --auth {} needs one: set the \
             environment variable EDDY_PASSWORD (or --password-file FILE) on this node, or run \
             with --auth trust",
            security.auth.name()
        ),
        hint: None,
    };
    let cmd = match (existing, verifier) {
        (Some(true), _) => return Ok(()),
        (Some(false), None) | (None, None) if security.auth.needs_password() => {
            return Err(no_password())
        }
        (Some(false), None) => return Ok(()),
        (Some(false), Some(v)) => Command::AlterRole {
            name: BOOTSTRAP_ROLE.to_owned(),
            change: crate::access::RoleChange {
                verifier: Some(Some(v)),
                ..Default::default()
            },
        },
        (None, verifier) => Command::CreateRole(crate::access::RoleDef {
            name: BOOTSTRAP_ROLE.to_owned(),
            superuser: true,
            login: true,
            verifier,
        }),
    };
    match catalog.submit(cmd).await {
        // Another node of a new cluster created it first.
        Ok(_) | Err(Error::DuplicateObject { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The credentials derived from the secret in the catalog log, once the
/// cluster has one (clusters without `--cluster-key-file`).
fn catalog_credentials(catalog: &Catalog) -> Result<Option<Credentials>, Error> {
    let secret = catalog.read().secret.clone();
    secret
        .map(|s| Credentials::from_key(s.as_bytes()))
        .transpose()
}

/// Makes sure the catalog holds the cluster secret that authenticates
/// internal sessions; the first node of a cluster writes it.
async fn ensure_secret(catalog: &Catalog) -> Result<(), Error> {
    if catalog.read().secret.is_some() {
        return Ok(());
    }
    catalog
        .submit(Command::ClusterSecret {
            secret: crate::cluster::credentials::new_key(),
        })
        .await?;
    Ok(())
}
