//! Who may open a session: the authentication method of the Postgres port,
//! and the password lookup pgwire's SCRAM mechanism asks.
//!
//! The handshake itself is pgwire's (`ScramAuth`, a SASL mechanism); Eddy
//! gives it the role's verifier from the catalog. A user that does not
//! exist, or has no password, gets a mock verifier: the exchange fails at
//! the client's proof exactly as a wrong password does, so the answer (and
//! its timing) does not tell which user names exist.

use async_trait::async_trait;
use pgwire::api::auth::sasl::scram::{ScramAuth, ScramSecret};
use pgwire::api::auth::{AuthSource, LoginInfo, Password};
use pgwire::error::{PgWireError, PgWireResult};
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::Arc;

use super::scram::Verifier;
use super::RoleDef;
use crate::catalog::Catalog;

/// The roles login checks against: the catalog's (a trait, so the wire
/// layer can be tested without one).
pub trait Roles: Send + Sync + 'static {
    fn role(&self, name: &str) -> Option<RoleDef>;
}

impl Roles for Catalog {
    fn role(&self, name: &str) -> Option<RoleDef> {
        self.read().access.role(name).map(|r| r.def.clone())
    }
}

/// How the Postgres port authenticates clients (`eddy serve --auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// Any role that exists and may log in connects without a password.
    Trust,
    /// SCRAM-SHA-256 (the default).
    Scram,
    /// As PostgreSQL does for `md5` when passwords are stored as SCRAM
    /// verifiers (Eddy stores nothing else): SCRAM-SHA-256.
    Md5,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Trust => "trust",
            Method::Scram => "scram",
            Method::Md5 => "md5",
        }
    }

    pub fn needs_password(self) -> bool {
        self != Method::Trust
    }
}

/// The roles' verifiers, as pgwire's SCRAM mechanism asks for them.
pub struct Passwords {
    roles: Arc<dyn Roles>,
    /// Makes mock salts: the same per user name on this node, unguessable.
    mock_key: [u8; 32],
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

impl Passwords {
    pub fn new(roles: Arc<dyn Roles>) -> Passwords {
        let mut mock_key = [0u8; 32];
        let _ = SystemRandom::new().fill(&mut mock_key);
        Passwords { roles, mock_key }
    }

    /// pgwire's SCRAM-SHA-256 mechanism over these verifiers; with the
    /// Postgres port's certificate (PEM), also SCRAM-SHA-256-PLUS, which
    /// binds the exchange to the TLS session (`tls-server-end-point`), so a
    /// client with `channel_binding=require` knows no one sits between.
    pub fn scram(self, certificate: Option<&[u8]>) -> ScramAuth {
        let mut scram = ScramAuth::new(Arc::new(self));
        if let Some(pem) = certificate {
            if let Err(e) = scram.configure_certificate(pem) {
                tracing::warn!(
                    error = %e,
                    "no SCRAM channel binding with this certificate (its signature algorithm); \
                     clients asking for channel_binding=require will be refused"
                );
            }
        }
        scram
    }

    fn verifier(&self, user: &str) -> Verifier {
        self.roles
            .role(user)
            .and_then(|r| r.verifier.as_deref().and_then(Verifier::parse))
            .unwrap_or_else(|| Verifier::mock(user, &self.mock_key))
    }
}

#[async_trait]
impl AuthSource for Passwords {
    /// Never asked: the SCRAM mechanism asks for [`Self::get_scram_secret`],
    /// and Eddy keeps no password it could give.
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        Err(PgWireError::InvalidPassword(
            login.user().unwrap_or_default().to_owned(),
        ))
    }

    async fn get_scram_secret(&self, login: &LoginInfo) -> PgWireResult<(ScramSecret, Option<()>)> {
        let user = login.user().ok_or(PgWireError::UserNameRequired)?;
        Ok((self.verifier(user).secret(), None))
    }
}

/// What the Postgres port asks of a connecting client: the method, the
/// roles it checks against, and whether TLS is required.
pub struct Login {
    pub method: Method,
    pub tls_required: bool,
    scram: ScramAuth,
    roles: Arc<dyn Roles>,
}

/// Why a client may not open a session (FATAL, then the connection closes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// 28P01: a wrong password, or a user that does not exist.
    Password { user: String },
    /// 28000: the role exists but may not log in.
    NoLogin { user: String },
    /// 28000: under `trust`, no such role.
    UnknownRole { user: String },
}

impl Refused {
    pub fn error(&self) -> crate::session::WireError {
        use crate::session::WireError;
        use common::SqlState;
        match self {
            Refused::Password { user } => WireError::new(
                SqlState::InvalidPassword,
                format!("password authentication failed for user \"{user}\""),
            )
            .with_hint("Check the user name and password; a superuser can set one with ALTER ROLE name PASSWORD '...'."),
            Refused::NoLogin { user } => WireError::new(
                SqlState::InvalidAuthorization,
                format!("role \"{user}\" is not permitted to log in"),
            )
            .with_hint(format!("A superuser can allow it: ALTER ROLE {user} LOGIN.")),
            Refused::UnknownRole { user } => WireError::new(
                SqlState::InvalidAuthorization,
                format!("role \"{user}\" does not exist"),
            )
            .with_hint("Connect as an existing role (eddy is always one), or have a superuser CREATE ROLE it."),
        }
    }
}

impl Login {
    /// `certificate` is the Postgres port's TLS certificate (PEM), for
    /// channel binding.
    pub fn new(
        method: Method,
        tls_required: bool,
        roles: Arc<dyn Roles>,
        certificate: Option<&[u8]>,
    ) -> Login {
        Login {
            method,
            tls_required,
            scram: Passwords::new(roles.clone()).scram(certificate),
            roles,
        }
    }

    /// A fresh SCRAM-SHA-256 exchange, pgwire's.
    pub fn scram(&self) -> Box<dyn pgwire::api::auth::mechanism::AuthMechanism> {
        use pgwire::api::auth::mechanism::AuthMechanismFactory;
        self.scram.create()
    }

    /// The role of `user`, authenticated (or trusted), if it may open a
    /// session now.
    pub fn admit(&self, user: &str) -> Result<RoleDef, Refused> {
        match self.roles.role(user) {
            Some(role) if role.login => Ok(role),
            Some(_) => Err(Refused::NoLogin {
                user: user.to_owned(),
            }),
            None if self.method.needs_password() => Err(Refused::Password {
                user: user.to_owned(),
            }),
            None => Err(Refused::UnknownRole {
                user: user.to_owned(),
            }),
        }
    }
}
