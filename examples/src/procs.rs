//! Child processes the benchmark starts and stops itself: a Tansu broker, an Eddy
//! node and a PostgreSQL 15 instance, each on a free loopback port, each waited for
//! on a condition with a deadline and stopped on drop.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tempfile::TempDir;

use crate::{eddy_bin, free_port, tail, tansu_bin};

/// Polls `ready` every 100 ms until it holds, `alive` fails, or `deadline` passes.
pub fn wait_for(
    what: &str,
    deadline: Duration,
    mut alive: impl FnMut() -> Result<()>,
    mut ready: impl FnMut() -> bool,
) -> Result<()> {
    let start = Instant::now();
    loop {
        if ready() {
            return Ok(());
        }
        alive()?;
        if start.elapsed() > deadline {
            bail!("{what} not ready after {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn exited(child: &mut Child, name: &str, log: &Path) -> Result<()> {
    match child.try_wait()? {
        None => Ok(()),
        Some(status) => Err(anyhow!(
            "{name} exited with {status}; log tail:\n{}",
            tail(log, 30)
        )),
    }
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// SIGTERM via kill(1) (the workspace forbids `unsafe`), then SIGKILL after 20 s.
pub fn terminate(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A Tansu broker in a tempdir.
pub struct Tansu {
    pub port: u16,
    pub dir: TempDir,
    child: Child,
}

impl Tansu {
    /// `engine` is a Tansu storage URL: `memory://tansu/` or `sqlite://tansu.db`.
    pub fn start(engine: &str) -> Result<Tansu> {
        let dir = tempfile::Builder::new()
            .prefix("eddy-bench-tansu-")
            .tempdir()?;
        let port = free_port()?;
        let url = format!("tcp://127.0.0.1:{port}");
        let log_path = dir.path().join("tansu.log");
        let log = File::create(&log_path)?;
        let mut child = Command::new(tansu_bin())
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", engine])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("spawning tansu (run scripts/setup.sh)")?;
        let brokers = format!("127.0.0.1:{port}");
        wait_for(
            "tansu",
            Duration::from_secs(60),
            || exited(&mut child, "tansu", &log_path),
            || port_open(port) && metadata_ok(&brokers),
        )?;
        Ok(Tansu { port, dir, child })
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn metadata_ok(brokers: &str) -> bool {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let Ok(consumer) = crate::kafka::config(brokers).create::<BaseConsumer>() else {
        return false;
    };
    consumer
        .fetch_metadata(None, Duration::from_secs(2))
        .map(|md| !md.brokers().is_empty())
        .unwrap_or(false)
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An `eddy serve` node with a fresh data dir.
pub struct Eddy {
    pub pg_port: u16,
    pub dir: TempDir,
    child: Child,
}

/// The superuser password of the benchmark's nodes, made when it starts
/// (never a committed secret). pgbench and psql get it as PGPASSWORD.
pub fn password() -> &'static str {
    static PASSWORD: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PASSWORD.get_or_init(eddy_tests::test_password)
}

impl Eddy {
    pub fn start(brokers: &str, cluster: &str, partitions: u32) -> Result<Eddy> {
        Eddy::start_node(brokers, cluster, "n1", partitions, "warn", None)
    }

    /// Node `node_id` of `cluster`, logging at `log` (a RUST_LOG filter)
    /// unless RUST_LOG is set; `session_ms` overrides `--session-timeout-ms`.
    pub fn start_node(
        brokers: &str,
        cluster: &str,
        node_id: &str,
        partitions: u32,
        log: &str,
        session_ms: Option<u64>,
    ) -> Result<Eddy> {
        Eddy::start_node_env(brokers, cluster, node_id, partitions, log, session_ms, &[])
    }

    /// [`Eddy::start_node`] with extra environment variables (`EDDY_*` flags).
    pub fn start_node_env(
        brokers: &str,
        cluster: &str,
        node_id: &str,
        partitions: u32,
        log: &str,
        session_ms: Option<u64>,
        env: &[(&str, String)],
    ) -> Result<Eddy> {
        // EDDY_BENCH_KEEP=1 keeps each node's data dir and log for a post-mortem.
        let dir = tempfile::Builder::new()
            .prefix("eddy-bench-node-")
            .disable_cleanup(std::env::var_os("EDDY_BENCH_KEEP").is_some())
            .tempdir()?;
        let pg_port = free_port()?;
        let stderr_path = dir.path().join("eddy.log");
        let bin = eddy_bin();
        let mut child = Command::new(&bin)
            .arg("serve")
            .args(["--pg-listen", &format!("127.0.0.1:{pg_port}")])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args([
                "--brokers",
                brokers,
                "--node-id",
                node_id,
                "--cluster",
                cluster,
            ])
            .args(["--partitions", &partitions.to_string(), "--standbys", "0"])
            .args(session_ms.map_or_else(Vec::new, |ms| {
                vec![
                    "--session-timeout-ms".to_owned(),
                    ms.to_string(),
                    "--heartbeat-ms".to_owned(),
                    (ms / 6).max(1).to_string(),
                ]
            }))
            .env("EDDY_PASSWORD", password())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| log.into()),
            )
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(File::create(&stderr_path)?))
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel::<bool>();
        // Drain stdout for the node's whole life; report the ready line.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent && line.starts_with("eddy ready") {
                    sent = tx.send(true).is_ok();
                }
            }
            let _ = tx.send(false);
        });
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(true) => Ok(Eddy {
                pg_port,
                dir,
                child,
            }),
            other => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "eddy did not print its ready line ({other:?}); stderr tail:\n{}",
                    tail(&stderr_path, 30)
                )
            }
        }
    }

    pub fn conn_str(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=eddy password={} dbname=eddy",
            self.pg_port,
            password()
        )
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("eddy.log")
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Eddy {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

pub use eddy_tests::postgres::run;
