//! The commands of the catalog log. Their JSON form is what the command topic
//! holds: changing it changes how old clusters replay.

use crate::access::{Grant, RoleChange, RoleDef};
use planner::plan::{SourceDef, ViewDef};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    CreateSource(SourceDef),
    /// The view's id is the offset of this command.
    CreateView(Box<ViewDef>),
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
    CreateRole(RoleDef),
    AlterRole {
        name: String,
        change: RoleChange,
    },
    DropRole {
        name: String,
    },
    Grant(Grant),
    Revoke(Grant),
}

impl Command {
    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Reads a command back. Nesting is bounded by what the planner lets
    /// through (`planner::bind::limits`), not by serde_json's default of 128
    /// levels, which a view with a 70-term `OR` already passes.
    pub fn decode(bytes: &[u8]) -> Result<Command, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        de.disable_recursion_limit();
        let cmd = Command::deserialize(&mut de)?;
        de.end()?;
        Ok(cmd)
    }

    /// The bytes to write to the log, once they are known to read back as
    /// the same command: nothing goes into the log that a node cannot replay.
    pub fn encode_checked(&self) -> Result<Vec<u8>, serde_json::Error> {
        let bytes = self.encode()?;
        let again = Command::decode(&bytes)?.encode()?;
        if again != bytes {
            return Err(serde::ser::Error::custom(
                "the command does not read back as written",
            ));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::{Column, SqlType, Value};
    use planner::bind::limits::MAX_DEPTH;
    use planner::expr::BinaryOp;
    use planner::plan::{ProjectPlan, ViewPlan};
    use planner::Expr;

    #[test]
    fn a_view_as_deep_as_the_planner_allows_reads_back() {
        // A filter `id = 0 OR id = 1 OR ...` as deep as a statement may nest:
        // its JSON is far past serde_json's default limit of 128 levels.
        let column = Expr::Column {
            index: 0,
            ty: SqlType::BigInt,
        };
        let term = |i: i64| Expr::Binary {
            op: BinaryOp::Eq,
            left: Box::new(column.clone()),
            right: Box::new(Expr::literal(Value::Int(i), SqlType::BigInt)),
            ty: SqlType::Boolean,
        };
        let mut filter = term(0);
        for i in 1..MAX_DEPTH as i64 {
            filter = Expr::Binary {
                op: BinaryOp::Or,
                left: Box::new(filter),
                right: Box::new(term(i)),
                ty: SqlType::Boolean,
            };
        }
        let cmd = Command::CreateView(Box::new(ViewDef {
            name: "v".into(),
            sql: String::new(),
            source: "orders".into(),
            partitions: 2,
            standbys: 0,
            columns: vec![Column::new("id", SqlType::BigInt)],
            key_columns: vec![],
            plan: ViewPlan::Project(ProjectPlan {
                filter: Some(filter),
                output: vec![],
            }),
            owner: None,
        }));
        let equal = std::thread::Builder::new()
            .stack_size(planner::NODE_THREAD_STACK)
            .spawn(move || {
                let bytes = cmd.encode_checked().expect("reads back");
                Command::decode(&bytes).expect("decodes") == cmd
            })
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert!(equal, "the command reads back equal");
    }
}
