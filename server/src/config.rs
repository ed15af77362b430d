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
    /// Authentication and TLS.
    pub security: Security,
}

/// How the node authenticates clients and protects connections.
#[derive(Debug, Clone)]
pub struct Security {
    /// `--auth`: how Postgres clients authenticate.
    pub auth: crate::access::login::Method,
    /// The bootstrap superuser's password (`EDDY_PASSWORD` or
    /// `--password-file`), used when the cluster first starts.
    pub password: Option<Secret>,
    /// TLS on the Postgres port.
    pub tls: crate::access::tls::TlsFiles,
    /// The cluster's shared key (`--cluster-key-file`); without it, nodes
    /// use the secret in the catalog log.
    pub cluster_key_file: Option<std::path::PathBuf>,
}

/// A secret that never shows in logs or debug output.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: String) -> Secret {
        Secret(secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}
