//! Internal requests between nodes: one node asks another for the rows of
//! partitions it owns, over an ordinary Postgres session.
//!
//! A request is one simple-protocol statement, `EDDY INTERNAL <secret> ...`,
//! which the SQL parser never sees. The secret is the cluster's (first
//! `ClusterSecret` command of the catalog log): a client that cannot read the
//! brokers cannot forge one. Rows travel as one TEXT column holding the hex
//! of `common::codec::encode_row`, so values keep their exact types.
//!
//! ```text
//! EDDY INTERNAL <secret> ROWS <view id> <max lag ms> <p>,<p>,..   every row of those partitions
//! EDDY INTERNAL <secret> LOOKUP <view id> <max lag ms> <hex key>  the row with that key
//! EDDY INTERNAL <secret> ERRORS                                   this node's bad records
//! ```
//!
//! The node asked checks, when it executes, that it holds a replica of each
//! partition within the reader's `max_staleness` (its own lag, measured
//! now): the asker's view of it may be a heartbeat old.

use common::codec::{decode_row, encode_row};
use common::{Column, PartitionId, Row, SqlType, Value, ViewId};
use std::sync::Arc;

use crate::catalog::CatalogView;
use crate::error::Error;
use crate::handler::Database;
use crate::session::Outcome;
use dataflow::status::now_ms;

pub const PREFIX: &str = "EDDY INTERNAL ";

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Rows {
        view: u64,
        max_lag_ms: i64,
        partitions: Vec<u32>,
    },
    Lookup {
        view: u64,
        max_lag_ms: i64,
        key: Row,
    },
    Errors,
}

impl Request {
    pub fn to_sql(&self, secret: &str) -> String {
        match self {
            Request::Rows {
                view,
                max_lag_ms,
                partitions,
            } => {
                let parts: Vec<String> = partitions.iter().map(u32::to_string).collect();
                format!(
                    "{PREFIX}{secret} ROWS {view} {max_lag_ms} {}",
                    parts.join(",")
                )
            }
            Request::Lookup {
                view,
                max_lag_ms,
                key,
            } => {
                format!(
                    "{PREFIX}{secret} LOOKUP {view} {max_lag_ms} {}",
                    to_hex(&encode_row(key))
                )
            }
            Request::Errors => format!("{PREFIX}{secret} ERRORS"),
        }
    }

    /// Parses what follows [`PREFIX`]: the secret and the request.
    pub fn parse(text: &str) -> Result<(&str, Request), Error> {
        let bad = || Error::NotAuthorized("malformed internal request".into());
        let mut words = text.split_whitespace();
        let secret = words.next().ok_or_else(bad)?;
        let request = match words.next().ok_or_else(bad)? {
            "ROWS" => Request::Rows {
                view: words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?,
                max_lag_ms: words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?,
                partitions: words
                    .next()
                    .ok_or_else(bad)?
                    .split(',')
                    .map(|p| p.parse().map_err(|_| bad()))
                    .collect::<Result<_, _>>()?,
            },
            "LOOKUP" => Request::Lookup {
                view: words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?,
                max_lag_ms: words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?,
                key: words
                    .next()
                    .and_then(from_hex)
                    .and_then(|b| decode_row(&b).ok())
                    .ok_or_else(bad)?,
            },
            "ERRORS" => Request::Errors,
            _ => return Err(bad()),
        };
        Ok((secret, request))
    }
}

/// Encodes rows the way an internal answer carries them.
pub fn encode_rows(rows: Vec<Row>) -> Outcome {
    Outcome::Rows {
        columns: vec![Column::new("row", SqlType::Text)],
        rows: rows
            .into_iter()
            .map(|r| vec![Value::Text(to_hex(&encode_row(&r)))])
            .collect(),
    }
}

/// Decodes an internal answer's rows.
pub fn decode_rows(node: &str, texts: Vec<String>) -> Result<Vec<Row>, Error> {
    texts
        .iter()
        .map(|t| {
            from_hex(t)
                .and_then(|b| decode_row(&b).ok())
                .ok_or_else(|| Error::Peer {
                    node: node.to_owned(),
                    message: "an unreadable row".into(),
                    unavailable: false,
                })
        })
        .collect()
}

/// Serves one internal request (the text after [`PREFIX`]).
pub async fn serve(db: &Database, text: &str) -> Result<Outcome, Error> {
    let (secret, request) = Request::parse(text)?;
    let known = db.catalog.read().secret.clone();
    if !known.is_some_and(|k| same_secret(&k, secret)) {
        return Err(Error::NotAuthorized(
            "wrong cluster secret: internal requests come only from nodes of this cluster".into(),
        ));
    }
    match request {
        Request::Rows {
            view,
            max_lag_ms,
            partitions,
        } => {
            let view = view_by_id(db, view)?;
            let parts: Vec<PartitionId> = partitions.into_iter().map(PartitionId).collect();
            for p in &parts {
                check_replica(db, &view, *p, max_lag_ms)?;
            }
            let rows = crate::handler::scan_rows(db, &view, parts).await?;
            Ok(encode_rows(rows))
        }
        Request::Lookup {
            view,
            max_lag_ms,
            key,
        } => {
            let view = view_by_id(db, view)?;
            if let Some((p, _)) = dataflow::read::locate(&view.def, &key) {
                check_replica(db, &view, p, max_lag_ms)?;
            }
            let row = dataflow::read::lookup(db.dataflow.store(), view.id, &view.def, &key)?;
            Ok(encode_rows(row.into_iter().collect()))
        }
        Request::Errors => Ok(encode_rows(tokio::task::block_in_place(|| {
            serve_errors(db)
        })?)),
    }
}

/// Compares secrets in time that depends only on their lengths, so a
/// client timing refusals learns nothing about the secret's bytes.
fn same_secret(known: &str, given: &str) -> bool {
    let (a, b) = (known.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// This node's bad records, as rows of `eddy_catalog.source_errors`.
pub fn serve_errors(db: &Database) -> Result<Vec<Row>, Error> {
    Ok(db
        .dataflow
        .store()
        .source_errors(None)?
        .into_iter()
        .map(|e| {
            vec![
                Value::Text(e.source),
                Value::Int(i64::from(e.partition)),
                Value::Int(e.offset),
                Value::Text(e.reason),
                Value::TimestampTz(e.seen_at_ms.saturating_mul(1000)),
            ]
        })
        .collect())
}

fn view_by_id(db: &Database, id: u64) -> Result<Arc<CatalogView>, Error> {
    db.catalog
        .read()
        .views
        .values()
        .find(|v| v.id == ViewId(id))
        .cloned()
        .ok_or_else(|| Error::UnknownObject {
            kind: "materialized view",
            name: format!("with id {id}"),
        })
}

/// Fails unless this node holds a replica of partition `p` of `view` that
/// may answer a read accepting `max_lag_ms` of staleness: the active, or a
/// standby whose own lag, measured now, is within it (DESIGN.md §3).
pub fn check_replica(
    db: &Database,
    view: &CatalogView,
    p: PartitionId,
    max_lag_ms: i64,
) -> Result<(), Error> {
    let status = db.dataflow.status(view.id).and_then(|s| s.partition(p));
    let node = &db.config.node_id;
    let reason = match status {
        Some(s) => {
            let lag = s.lag_ms(now_ms());
            if s.readable && lag <= max_lag_ms {
                return Ok(());
            }
            format!(
                "node {node} ({}) is {} behind the changelog ({} records), over \
                 max_staleness = {}",
                s.role.name(),
                dataflow::status::lag_text(lag),
                s.lag_records(),
                bound_text(max_lag_ms)
            )
        }
        None => format!("node {node} holds no replica of it"),
    };
    Err(Error::ViewUnavailable {
        view: view.def.name.clone(),
        partition: p.0,
        reason,
    })
}

/// A `max_staleness` bound in milliseconds, as `SHOW max_staleness` puts it.
pub fn bound_text(ms: i64) -> String {
    crate::session::vars::format_duration(std::time::Duration::from_millis(ms.max(0) as u64))
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        for r in [
            Request::Rows {
                view: 12,
                max_lag_ms: 250,
                partitions: vec![0, 3, 7],
            },
            Request::Lookup {
                view: 4,
                max_lag_ms: 0,
                key: vec![Value::Text("alice b".into()), Value::Int(-3)],
            },
            Request::Errors,
        ] {
            let sql = r.to_sql("s3cret");
            let (secret, parsed) = Request::parse(sql.strip_prefix(PREFIX).unwrap()).unwrap();
            assert_eq!((secret, parsed), ("s3cret", r));
        }
        assert!(Request::parse("s ROWS x 0 1").is_err());
        assert!(Request::parse("s ROWS 1 1").is_err(), "no bound");
        assert!(Request::parse("s LOOKUP 1 0 zz").is_err());
        assert!(Request::parse("").is_err());
    }

    #[test]
    fn rows_survive_the_text_encoding() {
        let rows = vec![vec![
            Value::Float(0.1 + 0.2),
            Value::Null,
            Value::Text("é".into()),
        ]];
        let Outcome::Rows { rows: texts, .. } = encode_rows(rows.clone()) else {
            panic!("rows");
        };
        let texts = texts
            .into_iter()
            .map(|r| match &r[0] {
                Value::Text(t) => t.clone(),
                _ => panic!("text"),
            })
            .collect();
        assert_eq!(decode_rows("n", texts).unwrap(), rows);
    }
}
