//! Identifiers. Bare integers and strings are never passed where one of these is meant.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A catalog object's id: the offset of the command that created it in the
/// command topic. Unique for the life of a cluster, so a view re-created under
/// an old name never meets the old one's state or topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ViewId(pub u64);

/// A partition of a view's state (and of its changelog topic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartitionId(pub u32);

/// A node of a cluster, as given by `--node-id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub String);

/// A writer generation. A writer of an older epoch is fenced: its changelog
/// batches are never applied once a newer epoch has committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Epoch(pub u64);

impl fmt::Display for ViewId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl PartitionId {
    /// The partition that owns `key_bytes` among `partitions`. Stable across
    /// releases: it decides where state lives, so it must never change.
    pub fn for_key(key_bytes: &[u8], partitions: u32) -> PartitionId {
        PartitionId((fnv1a(key_bytes) % u64::from(partitions.max(1))) as u32)
    }
}

/// FNV-1a, 64 bit: tiny, stable, and good enough to spread keys.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_for_key_is_stable_and_in_range() {
        // Pinned: a change here would move every key of every existing view.
        assert_eq!(
            PartitionId::for_key(b"alice", 8),
            PartitionId(fnv1a(b"alice") as u32 % 8)
        );
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        for k in 0..1000u32 {
            assert!(PartitionId::for_key(&k.to_be_bytes(), 7).0 < 7);
        }
        assert_eq!(PartitionId::for_key(b"x", 0), PartitionId(0));
    }
}
