//! `CREATE ROLE`/`USER`, `ALTER ROLE`/`USER`, `DROP ROLE`/`USER`, `GRANT`
//! and `REVOKE`, and the privilege check every other statement passes
//! before it runs ([`authorize`]).
//!
//! Each statement becomes one command of the catalog log (see
//! [`crate::access`]), so a grant made on one node holds on every node as
//! soon as that node has applied it. Who may run the statement is checked
//! here, against this node's catalog, before the command is submitted.

use sqlparser::ast::{
    self, AlterRoleOperation, CreateRole, Expr, GrantObjects, GranteeName, GranteesType, Ident,
    ObjectName, ObjectType, Privileges, RoleOption,
};

use super::{command, Database, Planned};
use crate::access::{self, scram, Grant, Privilege, RoleChange, RoleDef};
use crate::catalog::command::Command;
use crate::catalog::CatalogState;
use crate::error::Error;
use crate::session::Outcome;
use common::SqlState;
use planner::{RelationRef, Statement};

/// A role or privilege statement, parsed.
#[derive(Debug)]
pub enum AccessStatement {
    CreateRole { def: RoleDef, if_not_exists: bool },
    AlterRole { name: String, change: RoleChange },
    DropRole { names: Vec<String>, if_exists: bool },
    Grant(Grant),
    Revoke(Grant),
}

/// The role or privilege statement `stmt` is, if it is one. (The parser
/// reads `CREATE USER` and `ALTER USER` as PostgreSQL does: `CREATE ROLE
/// ... LOGIN` and `ALTER ROLE`.)
pub fn parse(stmt: &ast::Statement) -> Result<Option<AccessStatement>, Error> {
    Ok(Some(match stmt {
        ast::Statement::CreateRole(role) => create_role(role)?,
        ast::Statement::AlterRole { name, operation } => alter_role(name, operation)?,
        ast::Statement::Drop {
            object_type: ObjectType::Role | ObjectType::User,
            names,
            if_exists,
            ..
        } => AccessStatement::DropRole {
            names: names.iter().map(object_name).collect(),
            if_exists: *if_exists,
        },
        ast::Statement::Grant(g) => {
            AccessStatement::Grant(grant(&g.privileges, g.objects.as_ref(), &g.grantees)?)
        }
        ast::Statement::Revoke(r) => {
            AccessStatement::Revoke(grant(&r.privileges, r.objects.as_ref(), &r.grantees)?)
        }
        _ => return Ok(None),
    }))
}

fn create_role(role: &CreateRole) -> Result<AccessStatement, Error> {
    let refused = [
        (role.inherit == Some(false), "NOINHERIT"),
        (role.bypassrls == Some(true), "BYPASSRLS"),
        (role.create_db == Some(true), "CREATEDB"),
        (role.create_role == Some(true), "CREATEROLE"),
        (role.replication == Some(true), "REPLICATION"),
        (role.connection_limit.is_some(), "CONNECTION LIMIT"),
        (role.valid_until.is_some(), "VALID UNTIL"),
        (
            !role.in_role.is_empty() || !role.in_group.is_empty(),
            "IN ROLE",
        ),
        (
            !role.role.is_empty() || !role.user.is_empty() || !role.admin.is_empty(),
            "role membership",
        ),
    ];
    if let Some((_, what)) = refused.iter().find(|(used, _)| *used) {
        return Err(unsupported(&format!("{what} in CREATE ROLE")));
    }
    let [name] = role.names.as_slice() else {
        return Err(unsupported("creating several roles in one statement"));
    };
    let verifier = match &role.password {
        None => None,
        Some(p) => password(p)?,
    };
    Ok(AccessStatement::CreateRole {
        def: RoleDef {
            name: object_name(name),
            superuser: role.superuser.unwrap_or(false),
            login: role.login.unwrap_or(false),
            verifier,
        },
        if_not_exists: role.if_not_exists,
    })
}

fn alter_role(name: &Ident, op: &AlterRoleOperation) -> Result<AccessStatement, Error> {
    let AlterRoleOperation::WithOptions { options } = op else {
        return Err(unsupported(
            "ALTER ROLE other than its LOGIN, SUPERUSER and PASSWORD",
        ));
    };
    let mut change = RoleChange::default();
    for option in options {
        match option {
            RoleOption::Login(b) => change.login = Some(*b),
            RoleOption::SuperUser(b) => change.superuser = Some(*b),
            RoleOption::Password(p) => change.verifier = Some(password(p)?),
            other => return Err(unsupported(&format!("{other} in ALTER ROLE"))),
        }
    }
    Ok(AccessStatement::AlterRole {
        name: ident(name),
        change,
    })
}

/// The verifier a `PASSWORD` clause stores; `None` for `PASSWORD NULL`.
fn password(p: &ast::Password) -> Result<Option<String>, Error> {
    match p {
        ast::Password::NullPassword => Ok(None),
        ast::Password::Password(Expr::Value(v)) => match &v.value {
            ast::Value::SingleQuotedString(s) | ast::Value::EscapedStringLiteral(s) => {
                if s.is_empty() {
                    // PostgreSQL: an empty password is no password.
                    Ok(None)
                } else {
                    Ok(Some(scram::verifier_of(s)))
                }
            }
            ast::Value::Null => Ok(None),
            _ => Err(bad_password()),
        },
        ast::Password::Password(_) => Err(bad_password()),
    }
}

fn bad_password() -> Error {
    Error::Query {
        code: SqlState::SyntaxError,
        message: "a password must be a string literal".into(),
        hint: Some("Write PASSWORD 'secret' (or PASSWORD NULL).".into()),
    }
}

fn grant(
    privileges: &Privileges,
    objects: Option<&GrantObjects>,
    grantees: &[ast::Grantee],
) -> Result<Grant, Error> {
    let actions = match privileges {
        Privileges::All { .. } => None,
        Privileges::Actions(actions) => Some(actions),
    };
    let privilege = match (actions.map(Vec::as_slice), objects) {
        (
            None | Some([ast::Action::Create { obj_type: None }]),
            Some(GrantObjects::Schemas(_) | GrantObjects::Databases(_)),
        ) => Privilege::Create,
        (None | Some([ast::Action::Select { columns: None }]), _) => Privilege::Select,
        _ => {
            return Err(unsupported(
                "privileges other than SELECT on relations and CREATE on schema public",
            ))
        }
    };
    let objects = match objects {
        Some(GrantObjects::Tables(names) | GrantObjects::Views(names)) => {
            names.iter().map(object_name).collect()
        }
        Some(
            GrantObjects::AllTablesInSchema { schemas }
            | GrantObjects::AllViewsInSchema { schemas }
            | GrantObjects::AllMaterializedViewsInSchema { schemas },
        ) => {
            public_only(schemas)?;
            // Filled with every source and view when it runs.
            vec![ALL.to_owned()]
        }
        Some(GrantObjects::Schemas(schemas)) => {
            public_only(schemas)?;
            Vec::new()
        }
        Some(GrantObjects::Databases(dbs)) => {
            if dbs.iter().any(|d| object_name(d) != crate::query::DATABASE) {
                return Err(Error::Query {
                    code: SqlState::UndefinedObject,
                    message: "Eddy has one database, eddy".into(),
                    hint: Some("GRANT CREATE ON DATABASE eddy, or ON SCHEMA public.".into()),
                });
            }
            Vec::new()
        }
        _ => {
            return Err(unsupported(
                "GRANT on objects other than sources, views and schema public",
            ))
        }
    };
    let roles = grantees
        .iter()
        .map(|g| match (&g.grantee_type, &g.name) {
            (GranteesType::Public, _) => {
                Err(unsupported("GRANT to PUBLIC (grant to each role instead)"))
            }
            (_, Some(GranteeName::ObjectName(name))) => Ok(object_name(name)),
            _ => Err(unsupported("this kind of grantee")),
        })
        .collect::<Result<_, _>>()?;
    Ok(Grant {
        privilege,
        objects,
        roles,
        grantor: String::new(),
    })
}

/// Stands for "every source and view" until the grant runs.
const ALL: &str = "\0all";

fn public_only(schemas: &[ObjectName]) -> Result<(), Error> {
    match schemas.iter().find(|s| object_name(s) != "public") {
        Some(s) => Err(Error::Query {
            code: SqlState::InvalidParameterValue,
            message: format!("schema {} holds no sources or views", object_name(s)),
            hint: Some("Eddy's sources and views are in schema public.".into()),
        }),
        None => Ok(()),
    }
}

fn ident(id: &Ident) -> String {
    if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_lowercase()
    }
}

/// The last part of a (possibly schema-qualified) name.
fn object_name(name: &ObjectName) -> String {
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .map(ident)
        .unwrap_or_default()
}

fn unsupported(what: &str) -> Error {
    Error::Query {
        code: SqlState::FeatureNotSupported,
        message: format!("{what} is not supported"),
        hint: Some(
            "Eddy's roles have LOGIN, SUPERUSER and PASSWORD; its privileges are SELECT on \
             sources and views and CREATE on schema public."
                .into(),
        ),
    }
}

/// Runs a role or privilege statement as `user`.
pub async fn run(db: &Database, user: &str, stmt: &AccessStatement) -> Result<Outcome, Error> {
    let (commands, tag) = commands(&db.catalog.read(), user, stmt)?;
    for cmd in commands {
        match db.catalog.submit(cmd).await {
            Ok(_) => {}
            // DROP ROLE IF EXISTS of a role that does not exist.
            Err(Error::Query {
                code: SqlState::UndefinedObject,
                ..
            }) if matches!(
                stmt,
                AccessStatement::DropRole {
                    if_exists: true,
                    ..
                }
            ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(command(tag))
}

/// The catalog commands `stmt` makes when `user` runs it, checked against
/// what `user` may do, and its command tag.
fn commands(
    state: &CatalogState,
    user: &str,
    stmt: &AccessStatement,
) -> Result<(Vec<Command>, &'static str), Error> {
    let access = &state.access;
    let superuser = access.is_superuser(user);
    Ok(match stmt {
        AccessStatement::CreateRole { def, if_not_exists } => {
            if !superuser {
                return Err(access::superuser_only("create role"));
            }
            if *if_not_exists && access.role(&def.name).is_some() {
                return Ok((Vec::new(), "CREATE ROLE"));
            }
            (vec![Command::CreateRole(def.clone())], "CREATE ROLE")
        }
        AccessStatement::AlterRole { name, change } => {
            let own_password = name == user && change.superuser.is_none() && change.login.is_none();
            if !superuser && !own_password {
                return Err(access::superuser_only("alter role"));
            }
            let cmd = Command::AlterRole {
                name: name.clone(),
                change: change.clone(),
            };
            (vec![cmd], "ALTER ROLE")
        }
        AccessStatement::DropRole { names, .. } => {
            if !superuser {
                return Err(access::superuser_only("drop role"));
            }
            if names.iter().any(|n| n == user) {
                return Err(Error::Query {
                    code: SqlState::ObjectInUse,
                    message: "current user cannot be dropped".into(),
                    hint: Some("Connect as another superuser to drop this role.".into()),
                });
            }
            let cmds = names
                .iter()
                .map(|name| Command::DropRole { name: name.clone() })
                .collect();
            (cmds, "DROP ROLE")
        }
        AccessStatement::Grant(g) => (vec![Command::Grant(resolve(state, user, g)?)], "GRANT"),
        AccessStatement::Revoke(g) => (vec![Command::Revoke(resolve(state, user, g)?)], "REVOKE"),
    })
}

/// The grant with its objects named and checked: `user` must own each (or
/// be a superuser); `CREATE` only a superuser grants.
fn resolve(state: &CatalogState, user: &str, g: &Grant) -> Result<Grant, Error> {
    let access = &state.access;
    let mut g = g.clone();
    g.grantor = user.to_owned();
    if g.privilege == Privilege::Create {
        if !access.is_superuser(user) {
            return Err(access::superuser_only("grant CREATE on schema public"));
        }
        return Ok(g);
    }
    if g.objects.iter().any(|o| o == ALL) {
        g.objects = state
            .sources
            .keys()
            .chain(state.views.keys())
            .filter(|o| {
                state
                    .owner_of(o)
                    .is_some_and(|owner| access.may_drop(user, owner))
            })
            .cloned()
            .collect();
    }
    for object in &g.objects {
        let Some(owner) = state.owner_of(object) else {
            return Err(Error::UnknownObject {
                kind: "relation",
                name: object.clone(),
            });
        };
        if !access.may_drop(user, owner) {
            return Err(access::denied(
                relation_kind(state, object),
                object,
                Privilege::Select,
                user,
            ));
        }
    }
    Ok(g)
}

fn relation_kind(state: &CatalogState, name: &str) -> &'static str {
    state.kind_of(name).unwrap_or("relation")
}

/// Checks that `user` may run `planned`: reads need SELECT on every source
/// and view they read, DDL needs CREATE (and SELECT on a view's source),
/// DROP needs ownership. Role statements check themselves when they run.
pub fn authorize(db: &Database, user: &str, planned: &Planned) -> Result<(), Error> {
    let state = db.catalog.read();
    match planned {
        Planned::Copy { read, .. } => {
            drop(state);
            authorize(db, user, read)
        }
        Planned::Query(query) => crate::query::relations_read(query)
            .iter()
            .try_for_each(|name| may_select(&state, user, name)),
        Planned::Eddy(stmt) => statement(&state, user, stmt),
        Planned::Access(_) => Ok(()),
    }
}

fn statement(state: &CatalogState, user: &str, stmt: &Statement) -> Result<(), Error> {
    let access = &state.access;
    match stmt {
        Statement::Select(plan) => match &plan.relation {
            RelationRef::View(name) => may_select(state, user, name),
            _ => Ok(()),
        },
        Statement::Explain(inner) => statement(state, user, inner),
        Statement::CreateSource(_) if !access.may_create(user) => {
            Err(access::denied("schema", "public", Privilege::Create, user))
        }
        Statement::CreateView(def) => {
            if !access.may_create(user) {
                return Err(access::denied("schema", "public", Privilege::Create, user));
            }
            may_select(state, user, &def.source)
        }
        Statement::DropView { name, .. } | Statement::DropSource { name, .. } => {
            match state.owner_of(name) {
                Some(owner) if !access.may_drop(user, owner) => {
                    Err(access::not_owner(relation_kind(state, name), name))
                }
                _ => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// SELECT on a source or view; names that are neither (system tables) are
/// everyone's.
fn may_select(state: &CatalogState, user: &str, name: &str) -> Result<(), Error> {
    match state.owner_of(name) {
        Some(owner) if !state.access.may_select(user, name, owner) => Err(access::denied(
            relation_kind(state, name),
            name,
            Privilege::Select,
            user,
        )),
        _ => Ok(()),
    }
}
