//! The catalog as of some offset of the command log: sources and views by
//! name. Applying a command is deterministic, so every node that applies
//! the same log holds the same catalog.

use common::ViewId;
use planner::plan::{SourceDef, ViewDef};
use std::collections::BTreeMap;
use std::sync::Arc;

use super::command::Command;
use crate::access::{self, Access, Privilege};
use crate::error::Error;

#[derive(Debug, Clone)]
pub struct CatalogView {
    pub id: ViewId,
    pub def: ViewDef,
}

#[derive(Debug, Default, Clone)]
pub struct CatalogState {
    pub sources: BTreeMap<String, SourceDef>,
    /// Shared, so a read takes a view's definition without copying its plan.
    pub views: BTreeMap<String, Arc<CatalogView>>,
    /// Authenticates internal sessions between nodes (see `cluster`).
    pub secret: Option<String>,
    /// Roles and their privileges.
    pub access: Access,
}

/// What applying a command did, for the node to act on.
#[derive(Debug, Clone)]
pub enum Effect {
    None,
    ViewCreated {
        view: CatalogView,
        source: SourceDef,
    },
    ViewDropped(CatalogView),
    SourceDropped(String),
}

impl CatalogState {
    /// Checks `cmd` against the current catalog without applying it.
    pub fn check(&self, cmd: &Command) -> Result<(), Error> {
        match cmd {
            Command::CreateSource(s) => self.check_free(&s.name),
            Command::CreateView(v) => {
                self.check_free(&v.name)?;
                if !self.sources.contains_key(&v.source) {
                    return Err(Error::UnknownObject {
                        kind: "source",
                        name: v.source.clone(),
                    });
                }
                Ok(())
            }
            Command::DropView { name } => {
                if self.views.contains_key(name) {
                    Ok(())
                } else if self.sources.contains_key(name) {
                    Err(Error::WrongKind {
                        name: name.clone(),
                        is: "source",
                        wanted: "materialized view",
                    })
                } else {
                    Err(Error::UnknownObject {
                        kind: "materialized view",
                        name: name.clone(),
                    })
                }
            }
            Command::ClusterSecret { .. } => Ok(()),
            Command::CreateRole(def) => self.access.check_create(def),
            Command::AlterRole { name, change } => self.access.check_alter(name, change),
            Command::DropRole { name } => self.access.check_drop(name, &self.owned_by(name)),
            Command::Grant(grant) | Command::Revoke(grant) => {
                self.access.check_grant(grant)?;
                if grant.privilege == Privilege::Select {
                    for object in &grant.objects {
                        if self.kind_of(object).is_none() {
                            return Err(Error::UnknownObject {
                                kind: "relation",
                                name: object.clone(),
                            });
                        }
                    }
                }
                Ok(())
            }
            Command::DropSource { name } => {
                if !self.sources.contains_key(name) {
                    if self.views.contains_key(name) {
                        return Err(Error::WrongKind {
                            name: name.clone(),
                            is: "materialized view",
                            wanted: "source",
                        });
                    }
                    return Err(Error::UnknownObject {
                        kind: "source",
                        name: name.clone(),
                    });
                }
                let dependents: Vec<String> = self
                    .views
                    .values()
                    .filter(|v| &v.def.source == name)
                    .map(|v| v.def.name.clone())
                    .collect();
                if dependents.is_empty() {
                    Ok(())
                } else {
                    Err(Error::DependentViews {
                        source_name: name.clone(),
                        views: dependents,
                    })
                }
            }
        }
    }

    fn check_free(&self, name: &str) -> Result<(), Error> {
        if let Some(kind) = self.kind_of(name) {
            return Err(Error::DuplicateObject {
                kind,
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// The owner of a source or view: its creator, or the bootstrap
    /// superuser for objects created before roles existed.
    pub fn owner_of(&self, name: &str) -> Option<&str> {
        let owner = if let Some(s) = self.sources.get(name) {
            &s.owner
        } else {
            &self.views.get(name)?.def.owner
        };
        Some(owner.as_deref().unwrap_or(access::BOOTSTRAP_ROLE))
    }

    /// The sources and views `role` owns.
    pub fn owned_by(&self, role: &str) -> Vec<String> {
        self.sources
            .keys()
            .chain(self.views.keys())
            .filter(|name| self.owner_of(name) == Some(role))
            .cloned()
            .collect()
    }

    pub fn kind_of(&self, name: &str) -> Option<&'static str> {
        if self.sources.contains_key(name) {
            Some("source")
        } else if self.views.contains_key(name) {
            Some("materialized view")
        } else {
            None
        }
    }

    /// Applies the command at `offset` of the log.
    pub fn apply(&mut self, offset: i64, cmd: Command) -> Result<Effect, Error> {
        self.check(&cmd)?;
        Ok(match cmd {
            Command::CreateSource(s) => {
                self.sources.insert(s.name.clone(), s);
                Effect::None
            }
            Command::CreateView(def) => {
                let view = CatalogView {
                    id: ViewId(offset as u64),
                    def: *def,
                };
                let source = self.sources[&view.def.source].clone();
                self.views
                    .insert(view.def.name.clone(), Arc::new(view.clone()));
                Effect::ViewCreated { view, source }
            }
            Command::DropView { name } => {
                self.access.forget(&name);
                let view = self.views.remove(&name).expect("checked");
                Effect::ViewDropped(Arc::unwrap_or_clone(view))
            }
            Command::DropSource { name } => {
                self.access.forget(&name);
                self.sources.remove(&name);
                Effect::SourceDropped(name)
            }
            Command::ClusterSecret { secret } => {
                self.secret.get_or_insert(secret);
                Effect::None
            }
            Command::CreateRole(def) => {
                self.access.create_role(def, offset);
                Effect::None
            }
            Command::AlterRole { name, change } => {
                self.access.alter_role(&name, change);
                Effect::None
            }
            Command::DropRole { name } => {
                self.access.drop_role(&name);
                Effect::None
            }
            Command::Grant(grant) => {
                self.access.grant(grant);
                Effect::None
            }
            Command::Revoke(grant) => {
                self.access.revoke(grant);
                Effect::None
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::{Column, SqlType};
    use planner::plan::{Format, ProjectPlan, StartFrom, ViewPlan};

    fn source(name: &str) -> Command {
        Command::CreateSource(SourceDef {
            name: name.into(),
            columns: vec![Column::new("id", SqlType::BigInt)],
            primary_key: None,
            topic: name.into(),
            format: Format::Json,
            start: StartFrom::Earliest,
            owner: None,
        })
    }

    fn view(name: &str, source: &str) -> Command {
        Command::CreateView(Box::new(ViewDef {
            name: name.into(),
            sql: String::new(),
            source: source.into(),
            partitions: 2,
            standbys: 0,
            columns: vec![Column::new("id", SqlType::BigInt)],
            key_columns: vec![],
            plan: ViewPlan::Project(ProjectPlan {
                filter: None,
                output: vec![],
            }),
            owner: None,
        }))
    }

    #[test]
    fn the_first_command_for_a_name_wins() {
        let mut c = CatalogState::default();
        c.apply(0, source("orders")).unwrap();
        assert!(matches!(
            c.apply(1, source("orders")),
            Err(Error::DuplicateObject { .. })
        ));
        let Effect::ViewCreated { view: v, .. } = c.apply(2, view("v", "orders")).unwrap() else {
            panic!()
        };
        assert_eq!(v.id, ViewId(2), "a view's id is its command's offset");
        assert!(matches!(
            c.apply(3, view("orders", "orders")),
            Err(Error::DuplicateObject { .. })
        ));
        assert!(matches!(
            c.apply(4, view("w", "nope")),
            Err(Error::UnknownObject { .. })
        ));
    }

    #[test]
    fn a_source_with_views_cannot_be_dropped() {
        let mut c = CatalogState::default();
        c.apply(0, source("orders")).unwrap();
        c.apply(1, view("v", "orders")).unwrap();
        let drop_source = Command::DropSource {
            name: "orders".into(),
        };
        assert!(matches!(
            c.apply(2, drop_source.clone()),
            Err(Error::DependentViews { .. })
        ));
        assert!(matches!(
            c.apply(3, Command::DropSource { name: "v".into() }),
            Err(Error::WrongKind { .. })
        ));
        assert!(matches!(
            c.apply(4, Command::DropView { name: "v".into() }).unwrap(),
            Effect::ViewDropped(_)
        ));
        assert!(matches!(
            c.apply(5, drop_source).unwrap(),
            Effect::SourceDropped(_)
        ));
        assert!(c.sources.is_empty() && c.views.is_empty());
    }

    #[test]
    fn commands_round_trip_through_json() {
        let cmd = view("v", "orders");
        assert_eq!(Command::decode(&cmd.encode().unwrap()).unwrap(), cmd);
    }
}
