//! # access: who may connect, and what each role may do
//!
//! Roles and privileges are catalog state: `CREATE ROLE`, `GRANT` and the
//! rest are commands of the catalog log, so every node applies the same ones
//! in the same order and agrees on who may read what (see [`crate::catalog`]).
//! This module holds that state ([`Access`]), the checks statements go
//! through ([`Access::may_select`], [`Access::may_create`],
//! [`Access::may_drop`]), and the pieces connection startup uses:
//!
//! - [`scram`]: SCRAM-SHA-256 verifiers, the only form a password is kept in;
//! - [`login`]: the password lookup pgwire's SCRAM mechanism asks;
//! - [`tls`]: the Postgres port's TLS configuration.
//!
//! The model is PostgreSQL's, cut to what Eddy has:
//! - a superuser may do anything;
//! - the owner of a source or view (its creator) may read and drop it, and
//!   grant or revoke SELECT on it;
//! - everyone else needs `SELECT` on a relation to read it (and on a
//!   source to create a view over it), and `CREATE` on schema `public` to
//!   create sources and views;
//! - `pg_catalog`, `information_schema` and `eddy_catalog` are readable by
//!   every role, as in PostgreSQL.

pub mod login;
pub mod scram;
pub mod tls;

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

use crate::error::Error;
use common::SqlState;

/// The superuser every cluster starts with.
pub const BOOTSTRAP_ROLE: &str = "eddy";

/// `pg_roles.oid` of the bootstrap superuser (PostgreSQL's is also 10).
pub const BOOTSTRAP_OID: i64 = 10;

/// A role as `CREATE ROLE` defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleDef {
    pub name: String,
    pub superuser: bool,
    pub login: bool,
    /// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`; never the
    /// password itself.
    pub verifier: Option<String>,
}

/// What `ALTER ROLE` changes; `None` leaves an attribute as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleChange {
    pub superuser: Option<bool>,
    pub login: Option<bool>,
    /// `Some(None)` is `PASSWORD NULL`.
    pub verifier: Option<Option<String>>,
}

/// The privileges Eddy checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Privilege {
    /// Read a source or view (and create views over a source).
    Select,
    /// Create sources and views in schema `public`.
    Create,
}

impl Privilege {
    pub fn name(self) -> &'static str {
        match self {
            Privilege::Select => "SELECT",
            Privilege::Create => "CREATE",
        }
    }
}

/// `GRANT`/`REVOKE privilege ON objects TO roles`. For `CREATE`, `objects`
/// is empty: the privilege is on schema `public`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub privilege: Privilege,
    pub objects: Vec<String>,
    pub roles: Vec<String>,
    pub grantor: String,
}

/// A role of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub def: RoleDef,
    /// Stable on every node: from the offset of the command that created it.
    pub oid: i64,
}

/// Roles and the privileges granted to them.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub roles: BTreeMap<String, Role>,
    /// Roles granted SELECT, by relation, each with who granted it (for
    /// `relacl`: `grantee=r/grantor`).
    select: BTreeMap<String, BTreeMap<String, String>>,
    /// Roles granted CREATE on schema `public`.
    create: BTreeSet<String>,
}

/// The oid of a role created by the command at `offset`: past every
/// relation oid (sources hash into 1,000,000..1,001,000,000) and within
/// PostgreSQL's 32-bit oids.
pub fn role_oid(name: &str, offset: i64) -> i64 {
    if name == BOOTSTRAP_ROLE {
        BOOTSTRAP_OID
    } else {
        2_000_000_000 + offset.rem_euclid(2_000_000_000)
    }
}

impl Access {
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }

    pub fn is_superuser(&self, user: &str) -> bool {
        self.roles.get(user).is_some_and(|r| r.def.superuser)
    }

    /// Whether `user` may read `relation`, owned by `owner`.
    pub fn may_select(&self, user: &str, relation: &str, owner: &str) -> bool {
        self.is_superuser(user)
            || user == owner
            || self
                .select
                .get(relation)
                .is_some_and(|r| r.contains_key(user))
    }

    /// Whether `user` may create sources and views.
    pub fn may_create(&self, user: &str) -> bool {
        self.is_superuser(user) || self.create.contains(user)
    }

    /// Whether `user` may drop, grant on or revoke on an object of `owner`.
    pub fn may_drop(&self, user: &str, owner: &str) -> bool {
        self.is_superuser(user) || user == owner
    }

    /// The roles granted SELECT on `relation`, with who granted it.
    pub fn readers(&self, relation: &str) -> Vec<(String, String)> {
        self.select
            .get(relation)
            .into_iter()
            .flatten()
            .map(|(role, grantor)| (role.clone(), grantor.clone()))
            .collect()
    }

    /// The roles granted CREATE on schema `public`.
    pub fn creators(&self) -> impl Iterator<Item = &String> {
        self.create.iter()
    }

    /// Checks a role command against the roles as they are.
    pub fn check_create(&self, def: &RoleDef) -> Result<(), Error> {
        if self.roles.contains_key(&def.name) {
            return Err(Error::DuplicateObject {
                kind: "role",
                name: def.name.clone(),
            });
        }
        Ok(())
    }

    pub fn check_exists(&self, name: &str) -> Result<(), Error> {
        if self.roles.contains_key(name) {
            Ok(())
        } else {
            Err(unknown_role(name))
        }
    }

    /// The role exists, and the bootstrap superuser stays a superuser that
    /// may log in (as PostgreSQL keeps its bootstrap superuser): the
    /// cluster always has one role that can do everything.
    pub fn check_alter(&self, name: &str, change: &RoleChange) -> Result<(), Error> {
        self.check_exists(name)?;
        if name == BOOTSTRAP_ROLE
            && (change.superuser == Some(false) || change.login == Some(false))
        {
            return Err(Error::Query {
                code: SqlState::InsufficientPrivilege,
                message: format!("the bootstrap superuser {name} must keep SUPERUSER and LOGIN"),
                hint: Some("Create another role for restricted use.".into()),
            });
        }
        Ok(())
    }

    pub fn check_grant(&self, grant: &Grant) -> Result<(), Error> {
        grant.roles.iter().try_for_each(|r| self.check_exists(r))
    }

    pub fn create_role(&mut self, def: RoleDef, offset: i64) {
        let oid = role_oid(&def.name, offset);
        self.roles.insert(def.name.clone(), Role { def, oid });
    }

    pub fn alter_role(&mut self, name: &str, change: RoleChange) {
        if let Some(role) = self.roles.get_mut(name) {
            let def = &mut role.def;
            def.superuser = change.superuser.unwrap_or(def.superuser);
            def.login = change.login.unwrap_or(def.login);
            if let Some(verifier) = change.verifier {
                def.verifier = verifier;
            }
        }
    }

    /// Drops a role and every privilege granted to it.
    pub fn drop_role(&mut self, name: &str) {
        self.roles.remove(name);
        self.create.remove(name);
        for roles in self.select.values_mut() {
            roles.remove(name);
        }
    }

    pub fn grant(&mut self, grant: Grant) {
        for role in grant.roles {
            match grant.privilege {
                Privilege::Create => {
                    self.create.insert(role);
                }
                Privilege::Select => {
                    for object in &grant.objects {
                        self.select
                            .entry(object.clone())
                            .or_default()
                            .insert(role.clone(), grant.grantor.clone());
                    }
                }
            }
        }
    }

    pub fn revoke(&mut self, grant: Grant) {
        for role in &grant.roles {
            match grant.privilege {
                Privilege::Create => {
                    self.create.remove(role);
                }
                Privilege::Select => {
                    for object in &grant.objects {
                        if let Some(roles) = self.select.get_mut(object) {
                            roles.remove(role);
                        }
                    }
                }
            }
        }
    }

    /// Forgets the privileges on a dropped relation: a new one of the same
    /// name starts with none.
    pub fn forget(&mut self, relation: &str) {
        self.select.remove(relation);
    }

    /// Roles that own something, or that `name` cannot be dropped past.
    pub fn check_drop(&self, name: &str, owned: &[String]) -> Result<(), Error> {
        self.check_exists(name)?;
        if name == BOOTSTRAP_ROLE {
            return Err(Error::Query {
                code: SqlState::ObjectNotInPrerequisiteState,
                message: format!("cannot drop role {name}: it is the bootstrap superuser"),
                hint: Some("Drop another role; the bootstrap superuser always exists.".into()),
            });
        }
        if !owned.is_empty() {
            return Err(Error::Query {
                code: SqlState::DependentObjectsStillExist,
                message: format!(
                    "role \"{name}\" cannot be dropped because some objects depend on it"
                ),
                hint: Some(format!(
                    "Drop what it owns first: {}.",
                    owned
                        .iter()
                        .map(|o| format!("\"{o}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            });
        }
        Ok(())
    }
}

/// `role "x" does not exist` (42704).
pub fn unknown_role(name: &str) -> Error {
    Error::Query {
        code: SqlState::UndefinedObject,
        message: format!("role \"{name}\" does not exist"),
        hint: Some("SELECT rolname FROM pg_roles lists the roles; CREATE ROLE makes one.".into()),
    }
}

/// `permission denied for <kind> <name>` (42501), saying which privilege
/// would allow it.
pub fn denied(kind: &str, name: &str, privilege: Privilege, user: &str) -> Error {
    let hint = match privilege {
        Privilege::Select => {
            format!("Ask its owner or a superuser to run GRANT SELECT ON {name} TO {user}.")
        }
        Privilege::Create => {
            format!("Ask a superuser to run GRANT CREATE ON SCHEMA public TO {user}.")
        }
    };
    Error::Query {
        code: SqlState::InsufficientPrivilege,
        message: format!("permission denied for {kind} {name}"),
        hint: Some(hint),
    }
}

/// `must be owner of <kind> <name>` (42501).
pub fn not_owner(kind: &str, name: &str) -> Error {
    Error::Query {
        code: SqlState::InsufficientPrivilege,
        message: format!("must be owner of {kind} {name}"),
        hint: Some("Only its owner or a superuser may do this.".into()),
    }
}

/// A statement only a superuser may run (42501).
pub fn superuser_only(what: &str) -> Error {
    Error::Query {
        code: SqlState::InsufficientPrivilege,
        message: format!("permission denied to {what}"),
        hint: Some("Only a superuser may do this; connect as one (e.g. eddy).".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str, superuser: bool) -> RoleDef {
        RoleDef {
            name: name.into(),
            superuser,
            login: true,
            verifier: None,
        }
    }

    #[test]
    fn grants_and_revokes_decide_reads() {
        let mut a = Access::default();
        a.create_role(role(BOOTSTRAP_ROLE, true), 0);
        a.create_role(role("alice", false), 5);
        assert_eq!(a.role("alice").unwrap().oid, 2_000_000_005);
        assert_eq!(a.role(BOOTSTRAP_ROLE).unwrap().oid, BOOTSTRAP_OID);
        assert!(a.may_select("eddy", "v", "bob"), "superuser");
        assert!(a.may_select("bob", "v", "bob"), "owner");
        assert!(!a.may_select("alice", "v", "bob"));
        let grant = Grant {
            privilege: Privilege::Select,
            objects: vec!["v".into()],
            roles: vec!["alice".into()],
            grantor: "bob".into(),
        };
        a.grant(grant.clone());
        assert!(a.may_select("alice", "v", "bob"));
        assert!(!a.may_select("alice", "w", "bob"));
        assert_eq!(a.readers("v"), vec![("alice".into(), "bob".into())]);
        a.revoke(grant.clone());
        assert!(!a.may_select("alice", "v", "bob"));
        a.grant(grant);
        a.forget("v");
        assert!(
            !a.may_select("alice", "v", "bob"),
            "a dropped view's grants go"
        );
        assert!(!a.may_create("alice"));
        a.grant(Grant {
            privilege: Privilege::Create,
            objects: vec![],
            roles: vec!["alice".into()],
            grantor: "eddy".into(),
        });
        assert!(a.may_create("alice"));
        a.drop_role("alice");
        assert!(!a.may_create("alice") && a.role("alice").is_none());
        assert!(a.check_drop(BOOTSTRAP_ROLE, &[]).is_err());
        let demote = RoleChange {
            superuser: Some(false),
            ..RoleChange::default()
        };
        assert!(a.check_alter(BOOTSTRAP_ROLE, &demote).is_err());
        assert!(a.check_alter("nobody", &RoleChange::default()).is_err());
    }

    #[test]
    fn alter_role_changes_only_what_it_names() {
        let mut a = Access::default();
        a.create_role(role("alice", false), 1);
        a.alter_role(
            "alice",
            RoleChange {
                superuser: Some(true),
                ..RoleChange::default()
            },
        );
        let def = &a.role("alice").unwrap().def;
        assert!(def.superuser && def.login && def.verifier.is_none());
        a.alter_role(
            "alice",
            RoleChange {
                verifier: Some(Some("v".into())),
                login: Some(false),
                ..RoleChange::default()
            },
        );
        let def = &a.role("alice").unwrap().def;
        assert!(!def.login && def.verifier.as_deref() == Some("v"));
    }
}
