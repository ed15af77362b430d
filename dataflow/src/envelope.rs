//! The records of the internal repartition topics: one source record (or one
//! retraction derived from it) on its way to the partition that owns its key.
//!
//! Every envelope names its *upstream position* — the partition and offset it
//! was derived from one step back — so the receiving partition can drop a
//! duplicate written by a sender that died mid-batch and started over (see
//! `stage`). It also carries the *source position* it came from, for error
//! reports.
//!
//! Value layout: `kind u8 | up_partition i32 | up_offset i64 | src_partition
//! i32 | src_offset i64 | row (common::codec)`; big-endian. The Kafka key is
//! the routing key (for upserts, the primary key).

use common::codec::{decode_row, encode_row, DecodeError};
use common::Row;

/// What an envelope asks of the receiving partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Add a row.
    Insert = 0,
    /// Remove a row inserted earlier.
    Retract = 1,
    /// Set the row of a primary key (the key is the Kafka key).
    Upsert = 2,
    /// Delete the row of a primary key.
    Delete = 3,
}

/// A partition and an offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub kind: Kind,
    pub upstream: Position,
    pub source: Position,
    pub row: Option<Row>,
}

const HEADER: usize = 1 + 4 + 8 + 4 + 8;

impl Envelope {
    pub fn encode(&self) -> Vec<u8> {
        let row = self.row.as_ref().map(|r| encode_row(r)).unwrap_or_default();
        let mut out = Vec::with_capacity(HEADER + row.len());
        out.push(self.kind as u8);
        for pos in [self.upstream, self.source] {
            out.extend_from_slice(&pos.partition.to_be_bytes());
            out.extend_from_slice(&pos.offset.to_be_bytes());
        }
        out.extend_from_slice(&row);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
        if bytes.len() < HEADER {
            return Err(DecodeError {
                at: bytes.len(),
                reason: "short envelope",
            });
        }
        let kind = match bytes[0] {
            0 => Kind::Insert,
            1 => Kind::Retract,
            2 => Kind::Upsert,
            3 => Kind::Delete,
            _ => {
                return Err(DecodeError {
                    at: 0,
                    reason: "unknown envelope kind",
                })
            }
        };
        let position = |at: usize| Position {
            partition: i32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")),
            offset: i64::from_be_bytes(bytes[at + 4..at + 12].try_into().expect("8 bytes")),
        };
        let row = match kind {
            Kind::Delete => None,
            _ => Some(decode_row(&bytes[HEADER..])?),
        };
        Ok(Envelope {
            kind,
            upstream: position(1),
            source: position(13),
            row,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::Value;

    #[test]
    fn envelopes_round_trip() {
        for (kind, row) in [
            (
                Kind::Insert,
                Some(vec![Value::Int(1), Value::Text("a".into())]),
            ),
            (Kind::Retract, Some(vec![Value::Null])),
            (Kind::Upsert, Some(vec![])),
            (Kind::Delete, None),
        ] {
            let e = Envelope {
                kind,
                upstream: Position {
                    partition: 3,
                    offset: 1 << 40,
                },
                source: Position {
                    partition: -1,
                    offset: 7,
                },
                row,
            };
            assert_eq!(Envelope::decode(&e.encode()).unwrap(), e);
        }
        assert!(Envelope::decode(&[9; HEADER]).is_err());
        assert!(Envelope::decode(b"short").is_err());
    }
}
