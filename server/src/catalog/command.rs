//! The commands of the catalog log. Their JSON form is what the command topic
//! holds: changing it changes how old clusters replay.

use planner::plan::{SourceDef, ViewDef};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    CreateSource(SourceDef),
    /// The view's id is the offset of this command.
    CreateView(ViewDef),
    DropView {
        name: String,
    },
    DropSource {
        name: String,
    },
    /// The secret nodes show each other on internal sessions. The first one
    /// in the log holds; later ones (nodes racing at bootstrap) are ignored.
    ClusterSecret {
        secret: String,
    },
}

impl Command {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("command serializes")
    }

    pub fn decode(bytes: &[u8]) -> Result<Command, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}
