//! # eddy-examples: the demo feeder and the benchmark
//!
//! Tools around Eddy, not part of it: they talk to Eddy only as any user would, over
//! the Postgres wire protocol, and to the broker as any Kafka client would.
//!
//! - `demo-feed` (src/bin/demo-feed.rs): creates the demo topics, sources and view,
//!   then produces a trickle of orders (what `scripts/run.sh` runs).
//! - `bench` (src/bin/bench/): a bare Kafka consumer versus Eddy ingesting the same
//!   topic, point lookups on Eddy versus PostgreSQL 15 with pgbench, clusters,
//!   whole-view scans on three nodes versus PostgreSQL, high availability; writes
//!   BENCHMARKS.md.
//!
//! ## Layout
//!
//! - [`orders`]: a deterministic PRNG and order records as JSON.
//! - [`kafka`]: topic creation and an in-order, pipelined producer.
//! - [`procs`]: child processes the bench starts: Tansu, an Eddy node, PostgreSQL.

pub mod kafka;
pub mod orders;
pub mod procs;

use std::path::{Path, PathBuf};

/// `HOME`, or `/root`.
pub fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

/// The `eddy` binary: `$EDDY_BIN`, else `eddy` beside this executable (same target
/// dir), else `$CARGO_TARGET_DIR/release/eddy`.
pub fn eddy_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("EDDY_BIN") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(candidate) = exe.parent().map(|d| d.join("eddy")) {
            if candidate.exists() {
                return candidate;
            }
        }
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cache/eddy-target"))
        .join("release/eddy")
}

/// The `tansu` binary: `$TANSU_BIN`, else on PATH, else `~/.cargo/bin/tansu`.
pub fn tansu_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TANSU_BIN") {
        return PathBuf::from(p);
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("tansu"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| home().join(".cargo/bin/tansu"))
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The last `lines` lines of a file ("" when absent).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
