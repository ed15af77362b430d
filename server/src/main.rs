//! `eddy`: the command line.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "eddy",
    version,
    about = "Materialized views over Kafka topics, served over the Postgres protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node. Nodes with the same --cluster and --brokers form one database.
    Serve(Box<ServeArgs>),
    /// Print a new random cluster key, for --cluster-key-file.
    ClusterKey,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to accept Postgres connections on.
    #[arg(long, env = "EDDY_PG_LISTEN", default_value = "127.0.0.1:6875")]
    pg_listen: String,
    /// Postgres address advertised to other nodes (defaults to --pg-listen).
    #[arg(long, env = "EDDY_ADVERTISE_PG")]
    advertise_pg: Option<String>,
    /// Address the internal service (Arrow Flight, node to node) listens on.
    /// Default: --pg-listen's host, any free port.
    #[arg(long, env = "EDDY_INTERNAL_LISTEN")]
    internal_listen: Option<String>,
    /// Internal-service address advertised to other nodes. Default:
    /// --advertise-pg's host with the bound port.
    #[arg(long, env = "EDDY_ADVERTISE_INTERNAL")]
    advertise_internal: Option<String>,
    /// Directory for this node's state (RocksDB). Reused across restarts.
    #[arg(long, env = "EDDY_DATA_DIR", default_value = "eddy-data")]
    data_dir: PathBuf,
    /// Kafka bootstrap servers, HOST:PORT[,HOST:PORT..].
    #[arg(long, env = "EDDY_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// This node's id, unique in the cluster.
    #[arg(long, env = "EDDY_NODE_ID", default_value = "node-1")]
    node_id: String,
    /// Cluster name: namespaces every internal topic and consumer group.
    #[arg(long, env = "EDDY_CLUSTER", default_value = "eddy")]
    cluster: String,
    /// Default number of partitions of a new materialized view.
    #[arg(long, env = "EDDY_PARTITIONS", default_value_t = 8)]
    partitions: u32,
    /// Default number of standby replicas per partition of a new view.
    #[arg(long, env = "EDDY_STANDBYS", default_value_t = 0)]
    standbys: u32,
    /// Default of the max_staleness session setting, in milliseconds.
    #[arg(long, env = "EDDY_MAX_STALENESS_MS", default_value_t = 0)]
    max_staleness_ms: u64,
    /// Bound on each request to the brokers, in milliseconds.
    #[arg(long, env = "EDDY_KAFKA_TIMEOUT_MS", default_value_t = 30_000)]
    kafka_timeout_ms: u64,
    /// Threads serving Postgres connections and the catalog (view tasks run on
    /// threads of their own). Default: half the cores, at least one.
    #[arg(long, env = "EDDY_WORKER_THREADS")]
    worker_threads: Option<usize>,
    /// Delete a dropped view's internal topics. Leave off on Tansu 0.6.0, whose
    /// topic deletion removes every topic of the broker.
    #[arg(long, env = "EDDY_DELETE_INTERNAL_TOPICS")]
    delete_internal_topics: bool,
    /// Failure detection: a node not heard from for this long is dead and its
    /// partitions move to the others (membership and the internal consumer
    /// groups' session timeout), in milliseconds.
    #[arg(long, env = "EDDY_SESSION_TIMEOUT_MS", default_value_t = 3_000)]
    session_timeout_ms: u64,
    /// How often a node tells the others it is alive, in milliseconds.
    #[arg(long, env = "EDDY_HEARTBEAT_MS", default_value_t = 500)]
    heartbeat_ms: u64,
    /// Open Postgres connections at most; more are refused with 53300.
    #[arg(long, env = "EDDY_MAX_CONNECTIONS", default_value_t = 1000)]
    max_connections: usize,
    /// The largest message a client may send (a statement with its
    /// parameters), in bytes; larger ones end the connection with 54000.
    #[arg(long, env = "EDDY_MAX_MESSAGE_BYTES", default_value_t = 16 << 20)]
    max_message_bytes: usize,
    /// A client must finish its startup within this many milliseconds.
    #[arg(long, env = "EDDY_STARTUP_TIMEOUT_MS", default_value_t = 15_000)]
    startup_timeout_ms: u64,
    /// How Postgres clients authenticate: `scram` (SCRAM-SHA-256), `md5`
    /// (answered with SCRAM, as PostgreSQL does for SCRAM-stored passwords)
    /// or `trust` (no password; the role must still exist).
    #[arg(long, env = "EDDY_AUTH", value_enum, default_value = "scram")]
    auth: eddy_server::access::login::Method,
    /// A file holding the password of the superuser `eddy`, set when the
    /// cluster first starts (the environment variable EDDY_PASSWORD gives it
    /// directly).
    #[arg(long, env = "EDDY_PASSWORD_FILE")]
    password_file: Option<PathBuf>,
    /// The Postgres port's TLS certificate chain (PEM).
    #[arg(long, env = "EDDY_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "EDDY_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Ask TLS clients for a certificate signed by this CA (PEM), and refuse
    /// those without one.
    #[arg(long, env = "EDDY_TLS_CLIENT_CA")]
    tls_client_ca: Option<PathBuf>,
    /// Refuse clients that do not negotiate TLS (SQLSTATE 28000).
    #[arg(long, env = "EDDY_TLS_REQUIRED")]
    tls_required: bool,
    /// A file holding the cluster's key (make one with `eddy cluster-key`;
    /// every node gets the same). Nodes prove it to each other with mutual
    /// TLS on the internal service and sign their heartbeats with it; a
    /// process without it cannot join, read or forward. Without this flag,
    /// nodes use a secret kept in the catalog log.
    #[arg(long, env = "EDDY_CLUSTER_KEY_FILE")]
    cluster_key_file: Option<PathBuf>,
}

/// The bootstrap password: EDDY_PASSWORD, or the first line of --password-file.
fn password(file: Option<&std::path::Path>) -> anyhow::Result<Option<eddy_server::config::Secret>> {
    let text = match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading --password-file {}", path.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
        None => match std::env::var("EDDY_PASSWORD") {
            Ok(p) => p,
            Err(_) => return Ok(None),
        },
    };
    anyhow::ensure!(
        !text.is_empty(),
        "the superuser password is empty: set EDDY_PASSWORD or --password-file to a non-empty password"
    );
    Ok(Some(eddy_server::config::Secret::new(text)))
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = match Cli::parse().command {
        Command::Serve(args) => args,
        Command::ClusterKey => {
            println!("{}", eddy_server::cluster::credentials::new_key());
            return Ok(());
        }
    };
    anyhow::ensure!(args.partitions > 0, "--partitions must be at least 1");
    anyhow::ensure!(
        args.heartbeat_ms > 0 && args.heartbeat_ms < args.session_timeout_ms,
        "--heartbeat-ms must be above 0 and below --session-timeout-ms"
    );
    anyhow::ensure!(
        args.max_connections > 0,
        "--max-connections must be at least 1"
    );
    anyhow::ensure!(
        args.max_message_bytes >= 1024,
        "--max-message-bytes must be at least 1024"
    );
    anyhow::ensure!(
        args.startup_timeout_ms > 0,
        "--startup-timeout-ms must be above 0"
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = args.worker_threads.unwrap_or(cores / 2).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("eddy-worker")
        // Planning and evaluation recurse once per level of nesting; the
        // planner's limits are sized for this stack.
        .thread_stack_size(planner::NODE_THREAD_STACK)
        .enable_all()
        .build()?;
    let internal_listen = args
        .internal_listen
        .unwrap_or_else(|| format!("{}:0", host_of(&args.pg_listen)));
    let config = eddy_server::NodeConfig {
        advertise_pg: args.advertise_pg.unwrap_or_else(|| args.pg_listen.clone()),
        internal_listen,
        advertise_internal: args.advertise_internal.unwrap_or_default(),
        pg_listen: args.pg_listen,
        data_dir: args.data_dir,
        brokers: args.brokers,
        node_id: args.node_id,
        cluster: args.cluster,
        partitions: args.partitions,
        standbys: args.standbys,
        max_staleness: Duration::from_millis(args.max_staleness_ms),
        kafka_timeout: Duration::from_millis(args.kafka_timeout_ms),
        delete_internal_topics: args.delete_internal_topics,
        session_timeout: Duration::from_millis(args.session_timeout_ms),
        heartbeat_interval: Duration::from_millis(args.heartbeat_ms),
        pg_limits: eddy_server::pgwire::Limits {
            startup_timeout: Duration::from_millis(args.startup_timeout_ms),
            max_message_bytes: args.max_message_bytes,
            max_connections: args.max_connections,
        },
        worker_threads: workers,
        security: eddy_server::config::Security {
            auth: args.auth,
            password: password(args.password_file.as_deref())?,
            tls: eddy_server::access::tls::TlsFiles {
                cert: args.tls_cert,
                key: args.tls_key,
                client_ca: args.tls_client_ca,
                required: args.tls_required,
            },
            cluster_key_file: args.cluster_key_file,
        },
    };
    runtime
        .block_on(eddy_server::node::run(config, shutdown_signal(), |addr| {
            println!("eddy ready pg={addr}");
        }))
        .context("eddy stopped with an error")
}

/// The host part of `HOST:PORT` (`[v6]:PORT` too).
fn host_of(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(host, _)| host)
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
