//! Self-tests of the harness against a real Tansu broker: these pass without the
//! engine, and prove that a failing end-to-end test is about Eddy, not the harness.

use std::time::Duration;

use anyhow::Result;
use eddy_tests::broker::Record;
use eddy_tests::{eventually, unique, Broker, Engine, DEADLINE};

#[tokio::test]
async fn broker_produces_and_consumes_a_record() -> Result<()> {
    let broker = Broker::start().await?;
    let topic = unique("harness");
    broker.create_topic(&topic, 2).await?;

    let producer = broker.producer()?;
    let d = producer
        .produce_json(&topic, Some("k1"), Some(r#"{"order_id":1}"#))
        .await?;
    let tomb = producer.produce_json(&topic, Some("k1"), None).await?;
    assert_eq!(d.partition, tomb.partition, "same key, same partition");
    assert_eq!(tomb.offset, d.offset + 1);

    let got = broker.consume(&topic, 2).await?;
    assert_eq!(got[0].key.as_deref(), Some("k1"));
    assert_eq!(got[0].value.as_deref(), Some(r#"{"order_id":1}"#));
    assert_eq!((got[0].partition, got[0].offset), (d.partition, d.offset));
    assert_eq!(got[1].value, None, "a tombstone has no value");
    Ok(())
}

#[tokio::test]
async fn batch_keeps_order_and_sqlite_broker_survives_restart() -> Result<()> {
    let mut broker = Broker::start().await?;
    let topic = unique("harness_batch");
    broker.create_topic(&topic, 1).await?;

    let producer = broker.producer()?;
    let records = (0..1000).map(|i| Record::value(format!("{{\"n\":{i}}}")));
    let delivered = producer.produce_batch(&topic, records).await?;
    let offsets: Vec<i64> = delivered.iter().map(|d| d.offset).collect();
    assert_eq!(offsets, (0..1000).collect::<Vec<i64>>());
    assert_eq!(broker.watermarks(&topic, 0).await?.1, 1000);
    drop(producer);

    broker.restart().await?;
    assert_eq!(broker.watermarks(&topic, 0).await?.1, 1000, "records kept");
    let producer = broker.producer()?;
    let d = producer.produce_json(&topic, None, Some("{}")).await?;
    assert_eq!(d.offset, 1000, "offsets continue after a restart");
    let got = broker.consume(&topic, 1001).await?;
    assert_eq!(got[999].value.as_deref(), Some(r#"{"n":999}"#));
    Ok(())
}

#[tokio::test]
async fn memory_broker_starts_and_eventually_times_out() -> Result<()> {
    let broker = Broker::builder().engine(Engine::Memory).start().await?;
    let topic = unique("harness_mem");
    broker.create_topic(&topic, 1).await?;
    broker
        .producer()?
        .produce_json(&topic, None, Some("{}"))
        .await?;
    assert_eq!(broker.consume(&topic, 1).await?.len(), 1);

    let mut calls = 0;
    let err = eventually::<()>(Duration::from_millis(200), async || {
        calls += 1;
        anyhow::bail!("never")
    })
    .await
    .unwrap_err();
    assert!(calls > 1, "retried");
    assert!(format!("{err:#}").contains("never"));
    assert!(DEADLINE <= Duration::from_secs(60));
    Ok(())
}

/// The node lifecycle (ready line, SIGTERM, SIGKILL, restart on the same data dir,
/// wipe) against a stand-in script that behaves like `eddy serve` on stdout.
#[tokio::test]
async fn node_lifecycle_with_a_stand_in_binary() -> Result<()> {
    use eddy_tests::NodeBuilder;
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir()?;
    let script = dir.path().join("fake-eddy");
    std::fs::write(
        &script,
        r#"#!/usr/bin/env bash
data=$(echo "$*" | sed -E 's/.*--data-dir ([^ ]+).*/\1/')
port=$(echo "$*" | sed -E 's/.*--pg-listen [0-9.]+:([0-9]+).*/\1/')
echo start >> "$data/starts"
trap 'echo "got TERM" >&2; exit 0' TERM
echo "eddy ready pg=127.0.0.1:$port"
while :; do read -t 1 || true; done
"#,
    )?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;

    let mut node = NodeBuilder::new("127.0.0.1:1")
        .binary(&script)
        .start()
        .await?;
    let starts_file = node.data_dir().join("starts");
    let starts = || std::fs::read_to_string(&starts_file).unwrap_or_default();
    assert!(node.is_running());
    assert_eq!(node.pg_addr(), format!("127.0.0.1:{}", node.pg_port()));

    node.stop().await?;
    assert!(!node.is_running());
    assert!(std::fs::read_to_string(node.stderr_path())?.contains("got TERM"));

    node.start().await?;
    node.kill9();
    assert!(!node.is_running());
    node.restart().await?;
    assert_eq!(starts().lines().count(), 3, "same data dir across restarts");

    node.stop().await?;
    node.wipe_data_dir()?;
    assert_eq!(starts(), "", "wiped");
    node.start().await?;
    assert!(node.is_running());
    Ok(())
}
