//! `TestCluster`: one broker plus N nodes of one uniquely named cluster — the setup
//! every end-to-end test starts from, so no test copies it.

use anyhow::Result;
use tokio_postgres::Client;

use crate::broker::{Broker, Engine, Producer};
use crate::node::{Node, NodeBuilder};
use crate::unique;

/// Builder for [`TestCluster`].
#[derive(Debug)]
pub struct TestClusterBuilder {
    nodes: usize,
    partitions: u32,
    standbys: u32,
    engine: Engine,
    env: Vec<(String, String)>,
}

impl TestClusterBuilder {
    /// How long a silent node counts as alive (`--session-timeout-ms`).
    pub fn session_timeout_ms(mut self, ms: u64) -> Self {
        self.env
            .push(("EDDY_SESSION_TIMEOUT_MS".into(), ms.to_string()));
        self
    }

    /// An environment variable for every node (any `EDDY_*` flag).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn nodes(mut self, n: usize) -> Self {
        self.nodes = n;
        self
    }

    /// The nodes' default view partitions (`--partitions`).
    pub fn partitions(mut self, n: u32) -> Self {
        self.partitions = n;
        self
    }

    pub fn standbys(mut self, n: u32) -> Self {
        self.standbys = n;
        self
    }

    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }

    /// Starts the broker, then each node (ids `n1`, `n2`, ...), each waited for.
    pub async fn start(self) -> Result<TestCluster> {
        let broker = Broker::builder().engine(self.engine).start().await?;
        let prefix = unique("t");
        let cluster = format!("{prefix}_cluster");
        let mut cluster = TestCluster {
            broker,
            nodes: Vec::new(),
            prefix,
            cluster,
            partitions: self.partitions,
            standbys: self.standbys,
            env: self.env,
            password: crate::test_password(),
        };
        for i in 1..=self.nodes {
            let node = cluster.start_node(&format!("n{i}")).await?;
            cluster.nodes.push(node);
        }
        Ok(cluster)
    }
}

/// A broker and the nodes of one cluster. Fields are public so tests can restart or
/// kill either; drop order (nodes first) keeps the broker up while nodes die.
pub struct TestCluster {
    pub nodes: Vec<Node>,
    pub broker: Broker,
    prefix: String,
    /// The `--cluster` name and node defaults, for nodes started later.
    cluster: String,
    partitions: u32,
    standbys: u32,
    env: Vec<(String, String)>,
    /// The superuser's password, the same on every node.
    password: String,
}

impl TestCluster {
    /// Defaults: one node, 4 partitions, no standbys, the sqlite engine.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> TestClusterBuilder {
        TestClusterBuilder {
            nodes: 1,
            partitions: 4,
            standbys: 0,
            engine: Engine::Sqlite,
            env: Vec::new(),
        }
    }

    /// A single-node cluster with the defaults.
    pub async fn start() -> Result<TestCluster> {
        TestCluster::new().start().await
    }

    /// A topic name unique to this test: `<prefix>_<base>`.
    pub fn topic(&self, base: &str) -> String {
        format!("{}_{base}", self.prefix)
    }

    /// Creates a topic named [`TestCluster::topic`]`(base)` and returns its name.
    pub async fn create_topic(&self, base: &str, partitions: i32) -> Result<String> {
        let name = self.topic(base);
        self.broker.create_topic(&name, partitions).await?;
        Ok(name)
    }

    /// Starts one more node of this cluster (same defaults) and waits for
    /// it; the caller decides whether it joins [`TestCluster::nodes`].
    pub async fn start_node(&self, id: &str) -> Result<Node> {
        self.node_builder(id).start().await
    }

    /// A builder for one more node of this cluster (same defaults), to
    /// change before starting it.
    pub fn node_builder(&self, id: &str) -> NodeBuilder {
        let mut builder = NodeBuilder::new(self.broker.bootstrap())
            .cluster(&self.cluster)
            .node_id(id)
            .partitions(self.partitions)
            .standbys(self.standbys)
            .password(&self.password);
        for (k, v) in &self.env {
            builder = builder.env(k, v);
        }
        builder
    }

    /// The superuser `eddy`'s password.
    pub fn password(&self) -> &str {
        &self.password
    }

    pub fn node(&self) -> &Node {
        &self.nodes[0]
    }

    pub fn node_mut(&mut self) -> &mut Node {
        &mut self.nodes[0]
    }

    /// A client of the first node.
    pub async fn client(&self) -> Result<Client> {
        self.nodes[0].client().await
    }

    pub fn producer(&self) -> Result<Producer> {
        self.broker.producer()
    }
}
