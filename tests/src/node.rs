//! An `eddy serve` child process.
//!
//! A node is usable only once it has printed `eddy ready pg=<addr>` on stdout; start
//! waits for that line (with a deadline) rather than for a port or a pause. The data
//! dir lives in the node's tempdir and survives [`Node::restart`] and [`Node::kill9`];
//! [`Node::wipe_data_dir`] empties it to test a rebuild from the changelog.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context, Result};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio_postgres::{Client, NoTls};

use crate::wait::{eventually, permanent};
use crate::{eddy_bin, free_port, tail, unique, Broker, DEADLINE};

/// How long a graceful stop may take before the harness uses SIGKILL.
const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// Builder for [`Node`]; every setting has a per-test default.
#[derive(Clone, Debug)]
pub struct NodeBuilder {
    brokers: String,
    node_id: String,
    cluster: String,
    partitions: u32,
    standbys: u32,
    data_dir: Option<PathBuf>,
    pg_port: Option<u16>,
    env: Vec<(String, String)>,
    binary: Option<PathBuf>,
    /// The superuser `eddy`'s password (`EDDY_PASSWORD`), made at test time.
    password: String,
}

impl NodeBuilder {
    /// Defaults: node id `n1`, a unique cluster name, 4 partitions, 0 standbys, a
    /// fresh data dir and a free pg port.
    pub fn new(brokers: impl Into<String>) -> NodeBuilder {
        NodeBuilder {
            brokers: brokers.into(),
            node_id: "n1".to_owned(),
            cluster: unique("cluster"),
            partitions: 4,
            standbys: 0,
            data_dir: None,
            pg_port: None,
            env: Vec::new(),
            binary: None,
            password: crate::test_password(),
        }
    }

    /// The superuser's password; nodes of one cluster must share it. An
    /// empty one leaves `EDDY_PASSWORD` unset.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = password.into();
        self
    }

    pub fn node_id(mut self, id: impl Into<String>) -> Self {
        self.node_id = id.into();
        self
    }

    /// Nodes of one cluster share this name; give each test its own.
    pub fn cluster(mut self, name: impl Into<String>) -> Self {
        self.cluster = name.into();
        self
    }

    pub fn partitions(mut self, n: u32) -> Self {
        self.partitions = n;
        self
    }

    pub fn standbys(mut self, n: u32) -> Self {
        self.standbys = n;
        self
    }

    /// Use this data dir instead of one in the node's tempdir.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    pub fn pg_port(mut self, port: u16) -> Self {
        self.pg_port = Some(port);
        self
    }

    /// An extra environment variable for the child (e.g. `RUST_LOG`).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Run this executable instead of [`eddy_bin`] (harness self-tests, old builds).
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// Prepares the node without starting it.
    pub fn build(self) -> Result<Node> {
        let root = tempfile::Builder::new().prefix("eddy-node-").tempdir()?;
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| root.path().join("data"));
        std::fs::create_dir_all(&data_dir)?;
        Ok(Node {
            pg_port: self.pg_port.unwrap_or_else(free_port),
            data_dir,
            root,
            config: self,
            child: None,
            pg_addr: None,
            starts: 0,
        })
    }

    /// Starts the node and waits for its ready line.
    pub async fn start(self) -> Result<Node> {
        let mut node = self.build()?;
        node.start().await?;
        Ok(node)
    }
}

/// An `eddy serve` child process; SIGKILLed when dropped.
pub struct Node {
    config: NodeBuilder,
    root: TempDir,
    data_dir: PathBuf,
    pg_port: u16,
    child: Option<Child>,
    pg_addr: Option<String>,
    starts: u32,
}

impl Node {
    /// A builder for a node of `broker`'s cluster.
    pub fn builder(broker: &Broker) -> NodeBuilder {
        NodeBuilder::new(broker.bootstrap())
    }

    pub fn cluster(&self) -> &str {
        &self.config.cluster
    }

    pub fn node_id(&self) -> &str {
        &self.config.node_id
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn pg_port(&self) -> u16 {
        self.pg_port
    }

    /// The address from the ready line (or the one passed to `--pg-listen`).
    pub fn pg_addr(&self) -> String {
        self.pg_addr
            .clone()
            .unwrap_or_else(|| format!("127.0.0.1:{}", self.pg_port))
    }

    pub fn stderr_path(&self) -> PathBuf {
        self.root.path().join("eddy.stderr.log")
    }

    pub fn stdout_path(&self) -> PathBuf {
        self.root.path().join("eddy.stdout.log")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Spawns `eddy serve` and waits (at most [`DEADLINE`]) for `eddy ready pg=..`.
    pub async fn start(&mut self) -> Result<()> {
        if self.is_running() {
            bail!("node {} is already running", self.config.node_id);
        }
        self.starts += 1;
        let mut stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_path())?;
        writeln!(stderr, "=== harness: start #{} ===", self.starts)?;
        let mut stdout_log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stdout_path())?;
        writeln!(stdout_log, "=== harness: start #{} ===", self.starts)?;

        let c = &self.config;
        let bin = c.binary.clone().unwrap_or_else(eddy_bin);
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .args(["--pg-listen", &format!("127.0.0.1:{}", self.pg_port)])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--brokers", &c.brokers])
            .args(["--node-id", &c.node_id])
            .args(["--cluster", &c.cluster])
            .args(["--partitions", &c.partitions.to_string()])
            .args(["--standbys", &c.standbys.to_string()])
            .env("EDDY_PASSWORD", &c.password)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        if c.password.is_empty() {
            cmd.env_remove("EDDY_PASSWORD");
        }
        for (k, v) in &c.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().with_context(|| {
            format!(
                "spawning {} (build it: cargo build --release -p eddy-server)",
                bin.display()
            )
        })?;

        // A thread drains stdout for the whole life of the process (so the child never
        // blocks on a full pipe), copies it to a file and reports the ready line.
        let stdout = child.stdout.take().expect("stdout is piped");
        let (ready_tx, ready_rx) = oneshot::channel::<Result<String, String>>();
        std::thread::Builder::new()
            .name(format!("eddy-stdout-{}", self.config.node_id))
            .spawn(move || {
                let mut ready_tx = Some(ready_tx);
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let _ = writeln!(stdout_log, "{line}");
                    if let Some(addr) = line.trim().strip_prefix("eddy ready pg=") {
                        if let Some(tx) = ready_tx.take() {
                            let _ = tx.send(Ok(addr.trim().to_owned()));
                        }
                    }
                }
                if let Some(tx) = ready_tx.take() {
                    let _ = tx.send(Err("stdout closed before the ready line".to_owned()));
                }
            })?;
        self.child = Some(child);

        let outcome = tokio::time::timeout(DEADLINE, ready_rx).await;
        let failure = match outcome {
            Ok(Ok(Ok(addr))) => {
                self.pg_addr = Some(addr);
                return Ok(());
            }
            Ok(Ok(Err(why))) => why,
            Ok(Err(_)) => "stdout reader vanished".to_owned(),
            Err(_) => format!("no ready line within {DEADLINE:?}"),
        };
        let status = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        self.kill9();
        Err(anyhow!(
            "eddy node {} did not become ready: {failure} (exit: {status:?}); stderr tail:\n{}",
            self.config.node_id,
            tail(&self.stderr_path(), 40)
        ))
    }

    /// SIGKILL for real: no shutdown code runs. The data dir stays.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the process stays but does nothing — no heartbeats, no
    /// answers, no progress — until [`Node::resume`].
    pub fn pause(&self) -> Result<()> {
        self.signal("STOP")
    }

    /// SIGCONT after [`Node::pause`].
    pub fn resume(&self) -> Result<()> {
        self.signal("CONT")
    }

    fn signal(&self, name: &str) -> Result<()> {
        let pid = self.pid().context("the node is not running")?;
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()?;
        ensure!(status.success(), "kill -{name} {pid}: {status}");
        Ok(())
    }

    /// Graceful stop (SIGTERM); fails if the node needs SIGKILL after 30 s.
    pub async fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        terminate(&mut child).await
    }

    /// Graceful stop, then start on the same data dir and pg port.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await?;
        self.start().await
    }

    /// Empties the data dir (the node must be stopped): the next start rebuilds its
    /// state from the changelog.
    pub fn wipe_data_dir(&mut self) -> Result<()> {
        if self.is_running() {
            bail!("stop the node before wiping its data dir");
        }
        std::fs::remove_dir_all(&self.data_dir)?;
        std::fs::create_dir_all(&self.data_dir)?;
        Ok(())
    }

    /// A libpq-style connection string for this node, as the superuser.
    pub fn connection_string(&self) -> String {
        let addr = self.pg_addr();
        let (host, port) = addr.rsplit_once(':').unwrap_or(("127.0.0.1", "6875"));
        format!(
            "host={host} port={port} user=eddy password={} dbname=eddy connect_timeout=10",
            self.config.password
        )
    }

    /// The superuser `eddy`'s password.
    pub fn password(&self) -> &str {
        &self.config.password
    }

    /// A connected client; its connection task runs on the test's runtime.
    pub async fn client(&self) -> Result<Client> {
        let (client, connection) = tokio_postgres::connect(&self.connection_string(), NoTls)
            .await
            .with_context(|| format!("connecting to eddy at {}", self.pg_addr()))?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                eprintln!("eddy connection closed: {err}");
            }
        });
        Ok(client)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
        // Captured by libtest: shown only when the test fails.
        eprintln!(
            "--- eddy {} stderr tail ({}) ---\n{}",
            self.config.node_id,
            self.stderr_path().display(),
            tail(&self.stderr_path(), 40)
        );
    }
}

/// SIGTERM, then wait for the exit; SIGKILL (and an error) after [`STOP_DEADLINE`].
pub(crate) async fn terminate(child: &mut Child) -> Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    // `unsafe` is forbidden in the workspace, so the signal goes through kill(1).
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    if !status.success() {
        bail!("kill -TERM {} failed: {status}", child.id());
    }
    let exited = eventually(STOP_DEADLINE, async || match child.try_wait() {
        Ok(Some(status)) => Ok(status),
        Ok(None) => Err(anyhow!("pid {} still running after SIGTERM", child.id())),
        Err(err) => Err(permanent(err.into())),
    })
    .await;
    match exited {
        Ok(_) => Ok(()),
        Err(err) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(err.context("graceful stop timed out; sent SIGKILL"))
        }
    }
}
