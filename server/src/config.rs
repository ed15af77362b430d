//! A node's configuration, as `eddy serve` parsed it.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Where clients connect, e.g. `127.0.0.1:6875`.
    pub pg_listen: String,
    /// The Postgres address other nodes and clients are told to use.
    pub advertise_pg: String,
    /// Where the internal service listens; port 0 picks a free one.
    pub internal_listen: String,
    /// The internal service's address other nodes are told to use; empty
    /// until the listener is bound (then the advertised Postgres host with
    /// the bound port, unless given).
    pub advertise_internal: String,
    pub data_dir: PathBuf,
    pub brokers: String,
    pub node_id: String,
    pub cluster: String,
    /// Defaults for new views.
    pub partitions: u32,
    pub standbys: u32,
    /// The default of the `max_staleness` session setting.
    pub max_staleness: Duration,
    /// Bound on each call to the brokers.
    pub kafka_timeout: Duration,
    /// Delete a dropped view's internal topics (see `KafkaConfig`).
    pub delete_internal_topics: bool,
    /// A node (and a consumer-group member) not heard from for this long is
    /// dead: its partitions move to the others.
    pub session_timeout: Duration,
    /// How often a node says it is alive (heartbeats and group heartbeats).
    pub heartbeat_interval: Duration,
    /// Limits of the Postgres port: startup timeout, message size, connections.
    pub pg_limits: crate::pgwire::Limits,
    /// Threads of the runtime that serves connections (and point lookups);
    /// scans run beside them on as many cores as are left.
    pub worker_threads: usize,
}
