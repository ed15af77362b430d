//! A real Tansu broker as a child process (DESIGN §6), and a producer for tests.
//!
//! The broker listens on a free loopback port and is ready only when the port accepts
//! *and* an rdkafka metadata request succeeds. The sqlite engine keeps its file in the
//! broker's tempdir (the path is relative to the working directory), so
//! [`Broker::restart`] finds the same topics and offsets; the memory engine forgets
//! everything and reports wrong end offsets, so tests that need either use sqlite.

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use tempfile::TempDir;

use crate::wait::{eventually, permanent, DEADLINE};
use crate::{free_port, tail, tansu_bin};

/// Which Tansu storage engine backs the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// `sqlite://tansu.db` in the broker's tempdir: durable across restarts, correct
    /// end offsets.
    Sqlite,
    /// `memory://tansu/`: fast, forgets everything on restart.
    Memory,
}

/// Builder for [`Broker`].
#[derive(Debug)]
pub struct BrokerBuilder {
    engine: Engine,
    port: Option<u16>,
}

impl BrokerBuilder {
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }

    /// Listen on this port instead of a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    pub async fn start(self) -> Result<Broker> {
        let dir = tempfile::Builder::new().prefix("eddy-broker-").tempdir()?;
        let mut broker = Broker {
            port: self.port.unwrap_or_else(free_port),
            engine: self.engine,
            dir,
            child: None,
            starts: 0,
        };
        broker.spawn().await?;
        Ok(broker)
    }
}

/// A Tansu broker child process; killed when dropped.
pub struct Broker {
    port: u16,
    engine: Engine,
    dir: TempDir,
    child: Option<Child>,
    starts: u32,
}

impl Broker {
    /// A sqlite-engine broker on a free loopback port, ready for clients.
    pub async fn start() -> Result<Broker> {
        Broker::builder().start().await
    }

    pub fn builder() -> BrokerBuilder {
        BrokerBuilder {
            engine: Engine::Sqlite,
            port: None,
        }
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers` and `eddy serve --brokers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The broker's working directory (holds `tansu.db` and the logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("tansu.log")
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    async fn spawn(&mut self) -> Result<()> {
        self.starts += 1;
        let log_path = self.log_path();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        writeln!(log, "=== harness: start #{} ===", self.starts)?;
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let engine = match self.engine {
            Engine::Sqlite => "sqlite://tansu.db",
            Engine::Memory => "memory://tansu/",
        };
        let bin = tansu_bin();
        let child = Command::new(&bin)
            .arg("broker")
            .args(["--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", engine])
            .current_dir(self.dir.path())
            .env_remove("STORAGE_ENGINE")
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("spawning {} (run scripts/setup.sh)", bin.display()))?;
        self.child = Some(child);

        let addr = self.bootstrap();
        let result = eventually(DEADLINE, async || {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(permanent(anyhow!("tansu exited with {status}")));
            }
            tokio::net::TcpStream::connect(&addr).await?;
            self.metadata(None).await?;
            Ok(())
        })
        .await;
        result.with_context(|| {
            format!(
                "tansu on {addr} not ready; log tail:\n{}",
                tail(&log_path, 30)
            )
        })
    }

    /// Fetches cluster (or one topic's) metadata: topic name → partition count.
    pub async fn metadata(&self, topic: Option<&str>) -> Result<Vec<(String, usize)>> {
        let consumer: BaseConsumer = self.client_config().create()?;
        let topic = topic.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            let md = consumer.fetch_metadata(topic.as_deref(), Duration::from_secs(5))?;
            if md.brokers().is_empty() {
                bail!("metadata lists no brokers");
            }
            Ok(md
                .topics()
                .iter()
                .filter(|t| t.error().is_none())
                .map(|t| (t.name().to_owned(), t.partitions().len()))
                .collect())
        })
        .await?
    }

    /// Low and high watermarks of one partition (correct on the sqlite engine only).
    pub async fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64)> {
        let consumer: BaseConsumer = self.client_config().create()?;
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            Ok(consumer.fetch_watermarks(&topic, partition, Duration::from_secs(5))?)
        })
        .await?
    }

    /// Stops gracefully (SIGTERM), or with SIGKILL if it has not exited in time.
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(child) = self.child.as_mut() {
            crate::node::terminate(child).await?;
        }
        self.child = None;
        Ok(())
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the broker and starts it again on the same port and directory.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await?;
        self.spawn().await
    }

    /// Starts the broker again after [`Broker::stop`] or [`Broker::kill9`].
    pub async fn start_again(&mut self) -> Result<()> {
        if self.is_running() {
            bail!("broker is already running");
        }
        self.spawn().await
    }

    /// A client config pointing at this broker.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.bootstrap())
            .set("broker.address.family", "v4");
        config
    }

    /// Creates a topic (an existing one is fine) and waits until metadata shows it
    /// with all its partitions.
    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        self.create_topic_with_config(name, partitions, &[]).await
    }

    pub async fn create_topic_with_config(
        &self,
        name: &str,
        partitions: i32,
        config: &[(&str, &str)],
    ) -> Result<()> {
        let admin: AdminClient<DefaultClientContext> = self.client_config().create()?;
        let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        for (k, v) in config {
            topic = topic.set(k, v);
        }
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        for result in admin.create_topics([&topic], &options).await? {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => bail!("create topic {topic}: {code}"),
            }
        }
        eventually(DEADLINE, async || {
            let md = self.metadata(Some(name)).await?;
            match md.iter().find(|(t, _)| t == name) {
                Some((_, n)) if *n == partitions as usize => Ok(()),
                other => {
                    bail!("topic {name} not yet visible with {partitions} partitions: {other:?}")
                }
            }
        })
        .await
    }

    /// An idempotent producer (Tansu supports it) so that retries neither duplicate
    /// nor reorder records of a partition.
    pub fn producer(&self) -> Result<Producer> {
        let inner: FutureProducer = self
            .client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "60000")
            // Tests send records larger than Eddy's own topics take.
            .set("message.max.bytes", "32000000")
            .create()?;
        Ok(Producer { inner })
    }

    /// A consumer in its own group reading from the earliest offset.
    pub fn consumer(&self, group: &str) -> Result<StreamConsumer> {
        Ok(self
            .client_config()
            .set("group.id", group)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()?)
    }

    /// Reads `count` records of `topic` from the beginning (waiting at most
    /// [`DEADLINE`] for each): (partition, offset, key, value).
    pub async fn consume(&self, topic: &str, count: usize) -> Result<Vec<Consumed>> {
        let consumer = self.consumer(&crate::unique("harness_read"))?;
        consumer.subscribe(&[topic])?;
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let msg = tokio::time::timeout(DEADLINE, consumer.recv())
                .await
                .map_err(|_| anyhow!("no record from {topic} after {} of {count}", out.len()))??;
            let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
            out.push(Consumed {
                partition: msg.partition(),
                offset: msg.offset(),
                key: text(msg.key()),
                value: text(msg.payload()),
            });
        }
        Ok(out)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill9();
        // Captured by libtest: shown only when the test fails.
        eprintln!(
            "--- tansu log tail ({}) ---\n{}",
            self.log_path().display(),
            tail(&self.log_path(), 20)
        );
    }
}

/// One record read back by [`Broker::consume`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: Option<String>,
}

/// One record to produce: an optional key (upsert sources: the primary key as a
/// string), an optional value (JSON; `None` is a tombstone) and an optional partition.
#[derive(Clone, Debug, Default)]
pub struct Record {
    pub key: Option<String>,
    pub value: Option<String>,
    pub partition: Option<i32>,
}

impl Record {
    /// An unkeyed JSON record.
    pub fn value(json: impl Into<String>) -> Record {
        Record {
            value: Some(json.into()),
            ..Record::default()
        }
    }

    /// A keyed JSON record.
    pub fn keyed(key: impl Into<String>, json: impl Into<String>) -> Record {
        Record {
            key: Some(key.into()),
            value: Some(json.into()),
            partition: None,
        }
    }

    /// A tombstone: deletes `key` from an upsert source.
    pub fn tombstone(key: impl Into<String>) -> Record {
        Record {
            key: Some(key.into()),
            ..Record::default()
        }
    }

    pub fn to_partition(mut self, partition: i32) -> Record {
        self.partition = Some(partition);
        self
    }
}

/// Where a record landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

/// A producer whose helpers return only once the broker acknowledged the records.
pub struct Producer {
    inner: FutureProducer,
}

impl Producer {
    pub fn inner(&self) -> &FutureProducer {
        &self.inner
    }

    /// Produces one record and awaits its delivery.
    pub async fn produce_json(
        &self,
        topic: &str,
        key: Option<&str>,
        value: Option<&str>,
    ) -> Result<Delivered> {
        let record = Record {
            key: key.map(str::to_owned),
            value: value.map(str::to_owned),
            partition: None,
        };
        let delivered = self.produce_batch(topic, [record]).await?;
        Ok(delivered[0])
    }

    /// Produces `records` in order and awaits every delivery. Records are enqueued one
    /// after another (the idempotent producer keeps per-partition order); when the
    /// local queue is full, the oldest pending delivery is awaited first.
    pub async fn produce_batch(
        &self,
        topic: &str,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<Vec<Delivered>> {
        const MAX_IN_FLIGHT: usize = 10_000;
        let mut pending: VecDeque<DeliveryFuture> = VecDeque::new();
        let mut delivered = Vec::new();
        for record in records {
            loop {
                let mut fr = FutureRecord::<str, str>::to(topic);
                if let Some(k) = record.key.as_deref() {
                    fr = fr.key(k);
                }
                if let Some(v) = record.value.as_deref() {
                    fr = fr.payload(v);
                }
                if let Some(p) = record.partition {
                    fr = fr.partition(p);
                }
                if pending.len() >= MAX_IN_FLIGHT {
                    delivered.push(await_delivery(pending.pop_front().expect("non-empty")).await?);
                }
                match self.inner.send_result(fr) {
                    Ok(future) => {
                        pending.push_back(future);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        match pending.pop_front() {
                            Some(oldest) => delivered.push(await_delivery(oldest).await?),
                            None => bail!("producer queue full with nothing in flight"),
                        }
                    }
                    Err((err, _)) => return Err(err.into()),
                }
            }
        }
        for future in pending {
            delivered.push(await_delivery(future).await?);
        }
        Ok(delivered)
    }
}

async fn await_delivery(future: DeliveryFuture) -> Result<Delivered> {
    match future.await {
        Ok(Ok(d)) => Ok(Delivered {
            partition: d.partition,
            offset: d.offset,
        }),
        Ok(Err((err, _))) => Err(anyhow!("delivery failed: {err}")),
        Err(_) => Err(anyhow!("producer dropped before delivery")),
    }
}
