//! # eddy-tests: the one end-to-end test harness
//!
//! End-to-end tests drive the real `eddy` binary against a real Kafka-protocol broker
//! (Tansu, DESIGN §6) through real clients (`rdkafka`, `tokio-postgres`, `psql`).
//! Nothing here mocks the engine, and nothing sleeps its way to correctness: every wait
//! is [`eventually`] — a condition polled with a short backoff until a deadline.
//!
//! ## Layout
//!
//! - [`broker`]: [`Broker`], a Tansu child process on a free loopback port (sqlite
//!   engine in a tempdir by default), topic creation and a [`Producer`] with JSON
//!   helpers.
//! - [`node`]: [`Node`] / [`NodeBuilder`], an `eddy serve` child process with its own
//!   data dir and cluster name; start waits for the `eddy ready` line; `kill9`, `stop`,
//!   `restart`, `client`.
//! - [`cluster`]: [`TestCluster`], a broker plus N nodes of one uniquely named
//!   cluster — the setup every end-to-end test starts from.
//! - [`wait`]: [`eventually`] and [`DEADLINE`].
//! - [`sql`]: text-row helpers over `simple_query` and SQLSTATE assertions.
//! - [`postgres`]: [`Postgres`], a throwaway PostgreSQL 15 server to check
//!   answers against.
//! - [`fixtures`]: deterministic order records and the `revenue` answer computed in
//!   the test, to compare a view with.
//!
//! ## Isolation
//!
//! Every test starts its own broker and nodes, with names from [`unique`] (pid +
//! counter), so tests run in parallel. Child stderr goes to a file in the child's
//! tempdir; its tail is printed when the handle drops, which libtest shows only for
//! failing tests.

pub mod broker;
pub mod cluster;
pub mod fixtures;
pub mod node;
pub mod postgres;
pub mod raw;
pub mod reference;
pub mod sql;
pub mod terminal;
pub mod wait;

pub use broker::{Broker, BrokerBuilder, Delivered, Engine, Producer, Record};
pub use cluster::{TestCluster, TestClusterBuilder};
pub use node::{Node, NodeBuilder};
pub use postgres::Postgres;
pub use sql::{assert_sqlstate, query_maps, query_rows, query_rows_sorted, sql_error};
pub use wait::{eventually, DEADLINE};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A name unique across the tests of every test binary running on this machine:
/// `prefix_<pid>_<counter>`, lower case so it is a valid unquoted SQL identifier.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{n}", std::process::id())
}

/// A password made at test time (never a committed secret): 128 bits from
/// the OS-seeded hasher keys.
pub fn test_password() -> String {
    use std::hash::{BuildHasher, Hasher};
    let word = || {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    format!("pw-{:016x}{:016x}", word(), word())
}

/// A free TCP port on 127.0.0.1, found by binding port 0 and releasing it.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// The last `lines` lines of a log file ("" when it does not exist).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The `eddy` binary: `$EDDY_BIN`, else `release/eddy` beside this test executable
/// (same target dir), else `$CARGO_TARGET_DIR/release/eddy`.
pub fn eddy_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("EDDY_BIN") {
        return PathBuf::from(p);
    }
    // Test executables live in <target>/release/deps/.
    if let Ok(exe) = std::env::current_exe() {
        if let Some(release) = exe.parent().and_then(Path::parent) {
            let candidate = release.join("eddy");
            if candidate.exists() {
                return candidate;
            }
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cache/eddy-target"));
    target.join("release/eddy")
}

/// The `tansu` binary: `$TANSU_BIN`, else `tansu` on PATH, else `~/.cargo/bin/tansu`.
pub fn tansu_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TANSU_BIN") {
        return PathBuf::from(p);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("tansu");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    home().join(".cargo/bin/tansu")
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}
