//! One client connection: the pgwire handler traits, implemented over a
//! [`Backend`] and this connection's [`SessionVars`].
//!
//! Per-connection state is the handler itself: `serve` builds a fresh
//! [`Connection`] for every accepted socket, so the session variables live in
//! it (behind an async mutex, because pgwire hands handlers `&self` while the
//! backend needs `&mut SessionVars` across an `.await`). Prepared statements
//! and portals live in pgwire's per-socket store, and the cancel handle in its
//! per-socket extensions (pgwire races each statement against it, so a
//! CancelRequest drops the backend's future and answers 57014).
//!
//! Invariants:
//! - Errors of extended-protocol messages are returned as `Err`, never as
//!   `Response::Error`: only an `Err` puts pgwire into "discard until Sync".
//! - Transactions hold no state (every read sees the views as they are),
//!   but their status is tracked as clients expect: BEGIN answers
//!   `TransactionStart`, COMMIT/ROLLBACK `TransactionEnd`, and pgwire
//!   reports the status (`I`, `T`, `E`) in every ReadyForQuery.

use super::buffered::HoldUntilSync;
use super::codec::{self, check_format_count, declared_type, decode_params, field_infos, pg_type};
use super::error::{error_info, notice, to_pg_error};
use crate::access::login::{Login, Refused};
use crate::session::cursors::{CursorError, CursorName};
use crate::session::vars::{SessionVars, VarDefaults};
use crate::session::{Backend, Batches, Outcome, RowStream, WireError};
use async_trait::async_trait;
use common::{Column, SqlState, SqlType};
use futures::{stream, Sink, SinkExt, StreamExt};
use pgwire::api::auth::mechanism::{AuthMechanism, AuthState};
use pgwire::api::auth::{
    protocol_negotiation, save_startup_parameters_to_metadata, StartupHandler,
};
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::portal::{Format, Portal, PortalExecutionState};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionGuard, ConnectionHandle, ConnectionManager,
    PgWireConnectionState, PidSecretKeyGenerator, RandomPidSecretKeyGenerator, Type, DEFAULT_NAME,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::{NoData, ParameterDescription, RowDescription};
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Describe, Execute, TARGET_TYPE_BYTE_PORTAL, TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::response::{ReadyForQuery, TransactionStatus};
use pgwire::messages::startup::{
    Authentication, BackendKeyData, ParameterStatus, PasswordMessageFamily, SASLInitialResponse,
    Startup,
};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use tokio::sync::Mutex;

/// What every connection shares.
pub(super) struct Shared {
    pub(super) backend: Arc<dyn Backend>,
    pub(super) defaults: VarDefaults,
    pub(super) pids: RandomPidSecretKeyGenerator,
    /// Open sessions by (pid, secret key), for CancelRequest.
    pub(super) sessions: Arc<ConnectionManager>,
    pub(super) cancel: Arc<DefaultCancelHandler>,
    /// Who may connect, and how they prove it.
    pub(super) login: Arc<Login>,
}

impl Shared {
    pub(super) fn new(
        backend: Arc<dyn Backend>,
        defaults: VarDefaults,
        login: Arc<Login>,
    ) -> Shared {
        let sessions = Arc::new(ConnectionManager::new());
        Shared {
            backend,
            defaults,
            login,
            pids: RandomPidSecretKeyGenerator::default(),
            cancel: Arc::new(DefaultCancelHandler::new(sessions.clone())),
            sessions,
        }
    }
}

type Vars = Arc<Mutex<SessionVars>>;

/// The handlers of one connection.
pub(super) struct Connection {
    backend: Arc<dyn Backend>,
    vars: Vars,
    /// The parameter values the client was last told about.
    reported: Mutex<BTreeMap<&'static str, String>>,
    parser: Arc<StatementParser>,
    shared: Arc<Shared>,
    /// This connection's place under the server's connection limit; `None`
    /// when the server was full as it connected.
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
    /// The startup packet, kept until the session opens.
    startup: Mutex<Option<Startup>>,
    /// The SCRAM exchange in progress, between its messages, and whether
    /// its first message (the SASLInitialResponse) has arrived.
    exchange: Mutex<Option<(Box<dyn AuthMechanism>, bool)>>,
}

impl Connection {
    pub(super) fn new(
        shared: Arc<Shared>,
        slot: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Connection {
        let vars = Arc::new(Mutex::new(SessionVars::new(shared.defaults)));
        let parser = Arc::new(StatementParser {
            backend: shared.backend.clone(),
            vars: vars.clone(),
        });
        Connection {
            backend: shared.backend.clone(),
            vars,
            reported: Mutex::new(BTreeMap::new()),
            parser,
            shared,
            slot,
            startup: Mutex::new(None),
            exchange: Mutex::new(None),
        }
    }

    /// After a statement that changed settings (`now` is set), tells the
    /// client every reported parameter whose value differs from what it was
    /// last told. Statements that changed nothing cost nothing here.
    async fn report<C>(
        &self,
        client: &mut C,
        now: Option<BTreeMap<&'static str, String>>,
    ) -> PgWireResult<()>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Some(now) = now else { return Ok(()) };
        let mut last = self.reported.lock().await;
        report_changes(client, &last, &now).await?;
        *last = now;
        Ok(())
    }
}

/// A parsed statement: the SQL and what Describe learned about it.
#[derive(Debug, Clone)]
pub(super) struct Prepared {
    sql: String,
    /// Effective parameter types: the client's declaration where it gave one,
    /// else the backend's inference (text when neither knows).
    params: Vec<SqlType>,
    columns: Option<Vec<Column>>,
}

/// In a transaction an error aborted, every statement but the one ending
/// it fails with 25P02, as in PostgreSQL (drivers rely on it to know the
/// transaction must be rolled back).
fn aborted(status: TransactionStatus, sql: &str) -> Option<WireError> {
    if status != TransactionStatus::Error {
        return None;
    }
    let first = sql
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    if matches!(first.as_str(), "ROLLBACK" | "COMMIT" | "END" | "ABORT") {
        return None;
    }
    Some(
        WireError::new(
            SqlState::InFailedTransaction,
            "current transaction is aborted, commands ignored until end of transaction block",
        )
        .with_hint("ROLLBACK ends the failed transaction."),
    )
}

/// Sends `ParameterStatus` for every reported variable a statement changed.
async fn report_changes<C>(
    client: &mut C,
    before: &BTreeMap<&'static str, String>,
    after: &BTreeMap<&'static str, String>,
) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    for (name, value) in after {
        if before.get(name) != Some(value) {
            let status = ParameterStatus::new((*name).to_owned(), value.clone());
            client
                .feed(PgWireBackendMessage::ParameterStatus(status))
                .await?;
        }
    }
    Ok(())
}

/// The pgwire response for one outcome. `described` are the columns the
/// client was given at Describe, which fix how fields are encoded.
fn outcome_response(
    outcome: Outcome,
    described: Option<&[Column]>,
    formats: &Format,
) -> Result<Response, WireError> {
    match outcome {
        Outcome::Command { tag, rows } => {
            let tag = Tag::new(&tag);
            Ok(Response::Execution(match rows {
                Some(n) => tag.with_rows(n),
                None => tag,
            }))
        }
        // pgwire keeps the status and reports it in every ReadyForQuery.
        Outcome::Transaction { tag, open: true } => Ok(Response::TransactionStart(Tag::new(&tag))),
        Outcome::Transaction { tag, open: false } => Ok(Response::TransactionEnd(Tag::new(&tag))),
        Outcome::CopyOut { columns, data } => {
            let stream = stream::iter(
                data.into_iter()
                    .map(|l| Ok(pgwire::messages::copy::CopyData::new(bytes::Bytes::from(l)))),
            );
            Ok(Response::CopyOut(pgwire::api::results::CopyResponse::new(
                0, columns, stream,
            )))
        }
        Outcome::Rows { columns, rows } => rows_response(columns, &rows, described, formats),
        Outcome::Stream { columns, rows } => {
            stream_response(columns, rows, None, described, formats)
        }
        Outcome::Fetch {
            columns,
            rows,
            binary,
        } => {
            // A BINARY cursor answers the simple protocol in binary; with
            // the extended one, Bind chose the formats.
            let formats = match (binary, formats) {
                (true, Format::UnifiedText) => &Format::UnifiedBinary,
                (_, formats) => formats,
            };
            let mut response = rows_response(columns, &rows, described, formats)?;
            if let Response::Query(query) = &mut response {
                query.set_command_tag("FETCH");
            }
            Ok(response)
        }
        Outcome::PortalFetch { .. } => Err(WireError::new(
            SqlState::Internal,
            "a protocol portal fetch reached the wrong layer",
        )),
    }
}

/// The columns rows are encoded as: those the client was given at
/// Describe, when it was.
fn sent_columns(columns: Vec<Column>, described: Option<&[Column]>) -> Vec<Column> {
    match described {
        Some(d) if d.len() == columns.len() => d.to_vec(),
        _ => columns,
    }
}

fn rows_response(
    columns: Vec<Column>,
    rows: &[common::Row],
    described: Option<&[Column]>,
    formats: &Format,
) -> Result<Response, WireError> {
    let columns = sent_columns(columns, described);
    let encoded = rows
        .iter()
        .map(|row| codec::encode_row(row, &columns, formats).map(Ok::<_, PgWireError>))
        .collect::<Result<Vec<_>, WireError>>()?;
    let fields = Arc::new(field_infos(&columns, Some(formats)));
    Ok(Response::Query(QueryResponse::new(
        fields,
        stream::iter(encoded),
    )))
}

/// `FETCH` / `MOVE` forward through a protocol-level portal (one a Bind
/// made and an Execute with a row limit left suspended): SQL may name it
/// as PostgreSQL's cursors and portals share one namespace.
async fn portal_fetch<C>(
    client: &mut C,
    name: &str,
    count: Option<u64>,
    discard: bool,
) -> Result<Response, WireError>
where
    C: ClientPortalStore,
    C::PortalStore: PortalStore,
{
    let unknown = || {
        WireError::from(CursorError::Unknown {
            name: CursorName(name.to_owned()),
        })
    };
    // The unnamed portal is the one this very statement may be running in.
    if name.is_empty() {
        return Err(unknown());
    }
    // Only the state is kept: the portal's statement need not be Send.
    let state = match client.portal_store().get_portal(name) {
        Some(Entry::Value(portal)) => portal.state.clone(),
        _ => return Err(unknown()),
    };
    // `None` takes every row left; FETCH 0 re-reads the current row, which
    // a streaming portal no longer has, so nothing moves.
    let limit = count.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let mut rows = Vec::new();
    let schema = {
        let mut state = state.lock().await;
        match &mut *state {
            PortalExecutionState::Initial => {
                return Err(WireError::from(CursorError::PortalNotStarted {
                    name: name.to_owned(),
                }))
            }
            PortalExecutionState::Finished => Arc::new(Vec::new()),
            PortalExecutionState::Suspended(response) => {
                let schema = response.row_schema();
                let mut exhausted = false;
                while limit.is_none_or(|limit| rows.len() < limit) {
                    match response.data_rows().next().await {
                        Some(row) => rows.push(
                            row.map_err(|e| WireError::new(SqlState::Internal, e.to_string()))?,
                        ),
                        None => {
                            exhausted = true;
                            break;
                        }
                    }
                }
                if exhausted {
                    *state = PortalExecutionState::Finished;
                }
                schema
            }
        }
    };
    if discard {
        return Ok(Response::Execution(Tag::new("MOVE").with_rows(rows.len())));
    }
    let mut response = QueryResponse::new(schema, stream::iter(rows.into_iter().map(Ok)));
    response.set_command_tag("FETCH");
    Ok(Response::Query(response))
}

/// The pgwire response for one outcome, protocol portals included.
async fn respond<C>(
    client: &mut C,
    outcome: Outcome,
    described: Option<&[Column]>,
    formats: &Format,
) -> Result<Response, WireError>
where
    C: ClientPortalStore + ClientInfo,
    C::PortalStore: PortalStore,
{
    match outcome {
        Outcome::PortalFetch {
            name,
            count,
            discard,
        } => portal_fetch(client, &name, count, discard).await,
        Outcome::Stream { columns, rows } => {
            let cancel = client
                .session_extensions()
                .get::<Arc<ConnectionHandle>>()
                .map(|h| Arc::clone(&*h));
            stream_response(columns, rows, cancel, described, formats)
        }
        other => outcome_response(other, described, formats),
    }
}

/// Rows sent as the read computes them. pgwire watches for CancelRequest
/// only until the statement returns its response; from the first row on,
/// the stream watches for it (57014), so a cancel stops a read that is
/// still sending.
fn stream_response(
    columns: Vec<Column>,
    rows: RowStream,
    cancel: Option<Arc<ConnectionHandle>>,
    described: Option<&[Column]>,
    formats: &Format,
) -> Result<Response, WireError> {
    let columns = sent_columns(columns, described);
    let Some(rows) = rows.take() else {
        return Err(WireError::new(
            SqlState::Internal,
            "a result was sent twice",
        ));
    };
    let fields = Arc::new(field_infos(&columns, Some(formats)));
    let formats = formats.clone();
    let user_error = |e: WireError| to_pg_error(&e, pgwire::error::SEVERITY_ERROR);
    let rows = cancellable(rows, cancel).flat_map(move |batch| {
        let encoded: Vec<PgWireResult<_>> = match batch {
            Ok(batch) => batch
                .iter()
                .map(|row| codec::encode_row(row, &columns, &formats).map_err(user_error))
                .collect(),
            Err(e) => vec![Err(user_error(e))],
        };
        stream::iter(encoded)
    });
    Ok(Response::Query(QueryResponse::new(fields, rows)))
}

/// `rows`, ended with 57014 when the client cancels the statement.
fn cancellable(rows: Batches, cancel: Option<Arc<ConnectionHandle>>) -> Batches {
    struct Watch {
        rows: Batches,
        handle: Option<Arc<ConnectionHandle>>,
        cancelled: Option<futures::channel::oneshot::Receiver<()>>,
        done: bool,
    }
    let watch = Watch {
        rows,
        handle: cancel,
        cancelled: None,
        done: false,
    };
    stream::unfold(watch, |mut w| async move {
        if w.done {
            return None;
        }
        // Installed on the first row: pgwire's own watch has ended by then.
        if let Some(handle) = w.handle.take() {
            w.cancelled = Some(handle.start_query().await);
        }
        let next = match w.cancelled.as_mut() {
            Some(cancelled) => tokio::select! {
                biased;
                fired = cancelled => match fired {
                    Ok(()) => {
                        w.done = true;
                        Some(Err(WireError::new(
                            SqlState::QueryCanceled,
                            "canceling statement due to user request",
                        )))
                    }
                    // Another statement took the handle: stop watching.
                    Err(_) => {
                        w.cancelled = None;
                        w.rows.next().await
                    }
                },
                next = w.rows.next() => next,
            },
            None => w.rows.next().await,
        };
        next.map(|item| (item, w))
    })
    .boxed()
}

#[async_trait]
impl StartupHandler for Connection {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(startup) => self.start(client, startup).await,
            PgWireFrontendMessage::PasswordMessageFamily(m) => self.authenticate(client, m).await,
            _ => Err(fatal(
                WireError::new(
                    SqlState::ProtocolViolation,
                    "unexpected message before startup",
                )
                .with_hint("A session begins with a startup message."),
            )),
        }
    }
}

/// A SASLInitialResponse body: the mechanism's name, NUL, then an Int32
/// length and that many bytes (-1: none). `None` when the lengths do not
/// match the body.
fn initial_response(body: &[u8]) -> Option<SASLInitialResponse> {
    let nul = body.iter().position(|&b| b == 0)?;
    let method = std::str::from_utf8(&body[..nul]).ok()?.to_owned();
    let rest = &body[nul + 1..];
    let len = i32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
    let data = &rest[4..];
    let data = match len {
        -1 if data.is_empty() => None,
        n if usize::try_from(n).ok() == Some(data.len()) => {
            Some(bytes::Bytes::copy_from_slice(data))
        }
        _ => return None,
    };
    Some(SASLInitialResponse::new(method, data))
}

/// A FATAL error: pgwire sends it and closes the connection.
fn fatal(e: WireError) -> PgWireError {
    to_pg_error(&e, pgwire::error::SEVERITY_FATAL)
}

impl Connection {
    /// The startup packet: checks TLS and the connection limit, then asks
    /// for a password, or (under `trust`) opens the session.
    async fn start<C>(&self, client: &mut C, startup: Startup) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let login = self.shared.login.clone();
        if login.tls_required && !client.is_secure() {
            tracing::info!("refused a connection without TLS");
            return Err(fatal(
                WireError::new(
                    SqlState::InvalidAuthorization,
                    "this server accepts only TLS connections",
                )
                .with_hint("Connect with sslmode=require (or verify-ca, verify-full)."),
            ));
        }
        if self.slot.is_none() {
            return Err(fatal(WireError::new(SqlState::TooManyConnections, "sorry, too many clients already")
                .with_hint("Close idle connections, use a connection pool, or raise eddy serve --max-connections.")));
        }
        protocol_negotiation(client, &startup).await?;
        save_startup_parameters_to_metadata(client, &startup);
        let user = startup.parameters.get("user").cloned().unwrap_or_default();
        if user.is_empty() {
            return Err(fatal(
                WireError::new(
                    SqlState::InvalidAuthorization,
                    "no PostgreSQL user name specified in startup packet",
                )
                .with_hint("Give a user name (psql -U NAME, or user= in the connection string)."),
            ));
        }
        tracing::Span::current().record("user", user.as_str());
        *self.startup.lock().await = Some(startup);
        if !login.method.needs_password() {
            return self.open(client, &user, None).await;
        }
        let mut exchange = login.scram();
        match exchange.begin(&*client).await? {
            AuthState::InProgress(request) => {
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                *self.exchange.lock().await = Some((exchange, false));
                client
                    .send(PgWireBackendMessage::Authentication(request))
                    .await?;
                Ok(())
            }
            _ => Err(fatal(WireError::new(
                SqlState::Internal,
                "the SCRAM exchange did not start",
            ))),
        }
    }

    /// One message of the SCRAM exchange; the last opens the session.
    async fn authenticate<C>(
        &self,
        client: &mut C,
        message: PasswordMessageFamily,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Some((mut exchange, started)) = self.exchange.lock().await.take() else {
            return Err(fatal(
                WireError::new(SqlState::ProtocolViolation, "unexpected password message")
                    .with_hint("The server did not ask for a password."),
            ));
        };
        let user = client.metadata().get("user").cloned().unwrap_or_default();
        // pgwire decodes a SASLInitialResponse without checking its
        // lengths (a short one panics); this one is decoded here.
        let message = match message {
            PasswordMessageFamily::Raw(body) if !started => match initial_response(&body) {
                Some(initial) => PasswordMessageFamily::SASLInitialResponse(initial),
                None => {
                    tracing::warn!(user, "authentication failed: malformed SASL message");
                    return Err(fatal(
                        WireError::new(
                            SqlState::ProtocolViolation,
                            "malformed SASLInitialResponse message",
                        )
                        .with_hint("The client sent a SASL message whose lengths do not add up."),
                    ));
                }
            },
            other => other,
        };
        match exchange.next(&*client, message).await {
            Ok(AuthState::InProgress(request)) => {
                *self.exchange.lock().await = Some((exchange, true));
                client
                    .send(PgWireBackendMessage::Authentication(request))
                    .await?;
                Ok(())
            }
            Ok(AuthState::Ok { final_message, .. }) => {
                self.open(client, &user, final_message).await
            }
            Ok(AuthState::Failed(e)) | Err(e) => {
                // The client's proof failed: the reason names no secret.
                tracing::warn!(
                    user,
                    method = self.shared.login.method.name(),
                    reason = %e,
                    "authentication failed"
                );
                Err(fatal(Refused::Password { user }.error()))
            }
        }
    }

    /// Opens the session of `user`, authenticated (or trusted): checks it may
    /// log in, then sends what PostgreSQL sends after authentication.
    async fn open<C>(
        &self,
        client: &mut C,
        user: &str,
        final_message: Option<Authentication>,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let role = match self.shared.login.admit(user) {
            Ok(role) => role,
            Err(refused) => {
                tracing::warn!(user, reason = %refused.error().message, "login refused");
                return Err(fatal(refused.error()));
            }
        };
        if let Some(message) = final_message {
            client
                .feed(PgWireBackendMessage::Authentication(message))
                .await?;
        }
        let Some(startup) = self.startup.lock().await.take() else {
            return Err(fatal(WireError::new(
                SqlState::Internal,
                "the startup parameters were lost",
            )));
        };
        let (pid, secret_key) = self.shared.pids.generate(&*client);
        client.set_pid_and_secret_key(pid, secret_key.clone());
        // pgwire races every query against this handle's cancel signal; the
        // guard unregisters the session when the connection drops.
        let (handle, guard) = self.shared.sessions.register(pid, secret_key.clone());
        client
            .session_extensions()
            .insert::<Arc<ConnectionHandle>>(handle);
        client.session_extensions().insert::<ConnectionGuard>(guard);

        let params = startup
            .parameters
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()));
        let (warnings, reported) = {
            let mut vars = self.vars.lock().await;
            vars.set_user(user);
            let warnings = vars
                .apply_startup(params)
                .map_err(|e| fatal(WireError::from(e)))?;
            (warnings, vars.reported())
        };
        tracing::Span::current().record(
            "application_name",
            reported.get("application_name").map_or("", String::as_str),
        );

        client
            .feed(PgWireBackendMessage::Authentication(Authentication::Ok))
            .await?;
        *self.reported.lock().await = reported.clone();
        for (name, value) in reported {
            let status = ParameterStatus::new(name.to_owned(), value);
            client
                .feed(PgWireBackendMessage::ParameterStatus(status))
                .await?;
        }
        for (name, value) in [
            ("is_superuser", if role.superuser { "on" } else { "off" }),
            ("session_authorization", user),
        ] {
            let status = ParameterStatus::new(name.to_owned(), value.to_owned());
            client
                .feed(PgWireBackendMessage::ParameterStatus(status))
                .await?;
        }
        client
            .feed(PgWireBackendMessage::BackendKeyData(BackendKeyData::new(
                pid, secret_key,
            )))
            .await?;
        for warning in warnings {
            tracing::info!(%warning, "startup parameter ignored");
            client
                .feed(PgWireBackendMessage::NoticeResponse(notice(
                    &WireError::from(warning),
                )))
                .await?;
        }
        client
            .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                TransactionStatus::Idle,
            )))
            .await?;
        client.set_state(PgWireConnectionState::ReadyForQuery);
        tracing::debug!("session started");
        Ok(())
    }
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        tracing::debug!(query, "simple query");
        if let Some(e) = aborted(client.transaction_status(), query) {
            return Ok(vec![Response::Error(Box::new(error_info(
                &e,
                pgwire::error::SEVERITY_ERROR,
            )))]);
        }
        let (results, changed) = {
            let mut vars = self.vars.lock().await;
            let generation = vars.generation();
            let results = self.backend.simple_query(&mut vars, query).await;
            (results, vars.reported_since(generation))
        };
        self.report(client, changed).await?;
        let mut responses = Vec::with_capacity(results.len());
        for result in results {
            let response = match result {
                Ok(outcome) => respond(client, outcome, None, &Format::UnifiedText).await,
                Err(e) => Err(e),
            };
            responses.push(response.unwrap_or_else(|e| {
                Response::Error(Box::new(error_info(&e, pgwire::error::SEVERITY_ERROR)))
            }));
        }
        Ok(responses)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Connection {
    type Statement = Prepared;
    type QueryParser = StatementParser;

    fn query_parser(&self) -> Arc<StatementParser> {
        self.parser.clone()
    }

    /// Like pgwire's default, but checks the format counts and decodes the
    /// parameters here, so a bad parameter fails the Bind as in Postgres.
    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement_name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal_name = message.portal_name.as_deref().unwrap_or(DEFAULT_NAME);
        let user_error = |e: WireError| to_pg_error(&e, pgwire::error::SEVERITY_ERROR);
        match client.portal_store().get_statement(statement_name) {
            Some(Entry::Value(statement)) => {
                let prepared = &statement.statement;
                let columns = prepared.columns.as_ref().map_or(0, Vec::len);
                check_format_count(
                    "parameter",
                    message.parameter_format_codes.len(),
                    message.parameters.len(),
                )
                .and_then(|()| {
                    check_format_count("result", message.result_column_format_codes.len(), columns)
                })
                .map_err(user_error)?;
                let portal = Portal::try_new(&message, statement.clone())?;
                decode_params(
                    &portal.parameters,
                    &portal.parameter_format,
                    &prepared.params,
                )
                .map_err(user_error)?;
                client.portal_store().put_portal(Arc::new(portal));
            }
            Some(Entry::Empty) if message.parameters.is_empty() => {
                client.portal_store().put_empty_portal(portal_name);
            }
            Some(Entry::Empty) => {
                return Err(user_error(WireError::new(
                    SqlState::ProtocolViolation,
                    format!(
                        "bind message supplies {} parameters, but prepared statement \"{}\" requires 0",
                        message.parameters.len(),
                        message.statement_name.as_deref().unwrap_or_default()
                    ),
                )));
            }
            None => return Err(PgWireError::StatementNotFound(statement_name.to_owned())),
        }
        client
            .feed(PgWireBackendMessage::BindComplete(BindComplete::new()))
            .await?;
        Ok(())
    }

    /// Runs pgwire's Execute with the replies held until Sync (see
    /// [`super::buffered`]): one write per query instead of two.
    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        if message.max_rows == 0 {
            if let Some(Entry::Value(portal)) = client.portal_store().get_portal(name) {
                let initial = matches!(*portal.state.lock().await, PortalExecutionState::Initial);
                if initial && portal.statement.statement.columns.is_some() {
                    return self
                        .execute_streaming(&mut HoldUntilSync(client), &portal)
                        .await;
                }
            }
        }
        self._on_execute(&mut HoldUntilSync(client), message).await
    }

    /// Answers Describe from what Parse learned; a statement that returns no
    /// rows gets NoData (pgwire's default sends an empty RowDescription when
    /// the statement has parameters).
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let (params, fields) = match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => match client.portal_store().get_statement(name) {
                Some(Entry::Value(stmt)) => {
                    let prepared = &stmt.statement;
                    let params = prepared.params.iter().map(|t| pg_type(*t).oid()).collect();
                    let fields = prepared.columns.as_deref().map(|c| field_infos(c, None));
                    (Some(params), fields)
                }
                Some(Entry::Empty) => (Some(vec![]), None),
                None => return Err(PgWireError::StatementNotFound(name.to_owned())),
            },
            TARGET_TYPE_BYTE_PORTAL => match client.portal_store().get_portal(name) {
                Some(Entry::Value(portal)) => {
                    let columns = portal.statement.statement.columns.as_deref();
                    (
                        None,
                        columns.map(|c| field_infos(c, Some(&portal.result_column_format))),
                    )
                }
                Some(Entry::Empty) => (None, None),
                // A SQL cursor is a portal too: psycopg describes the one
                // it declared by name.
                None => {
                    let vars = self.vars.lock().await;
                    let cursor = CursorName(name.to_owned());
                    let Some(columns) = vars.cursors().columns(&cursor) else {
                        return Err(PgWireError::PortalNotFound(name.to_owned()));
                    };
                    let formats = if vars.cursors().is_binary(&cursor) {
                        Format::UnifiedBinary
                    } else {
                        Format::UnifiedText
                    };
                    (None, Some(field_infos(columns, Some(&formats))))
                }
            },
            other => return Err(PgWireError::InvalidTargetType(other)),
        };
        if let Some(params) = params {
            client
                .feed(PgWireBackendMessage::ParameterDescription(
                    ParameterDescription::new(params),
                ))
                .await?;
        }
        match fields {
            Some(fields) => {
                let row = RowDescription::new(fields.iter().map(Into::into).collect());
                client
                    .feed(PgWireBackendMessage::RowDescription(row))
                    .await?;
            }
            None => {
                client
                    .feed(PgWireBackendMessage::NoData(NoData::new()))
                    .await?
            }
        }
        Ok(())
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = &portal.statement.statement;
        let user_error = |e: WireError| to_pg_error(&e, pgwire::error::SEVERITY_ERROR);
        if let Some(e) = aborted(client.transaction_status(), &prepared.sql) {
            return Err(user_error(e));
        }
        let params = decode_params(
            &portal.parameters,
            &portal.parameter_format,
            &prepared.params,
        )
        .map_err(user_error)?;
        tracing::debug!(query = %prepared.sql, ?params, "execute");
        let (result, changed) = {
            let mut vars = self.vars.lock().await;
            // Only a statement that changed a setting has anything to report.
            let generation = vars.generation();
            let result = self
                .backend
                .execute(&mut vars, &prepared.sql, &params)
                .await;
            (result, vars.reported_since(generation))
        };
        self.report(client, changed).await?;
        // max_rows is honoured by pgwire: it keeps the rows in the portal and
        // sends PortalSuspended between batches.
        match result {
            Ok(outcome) => {
                respond(
                    client,
                    outcome,
                    prepared.columns.as_deref(),
                    &portal.result_column_format,
                )
                .await
            }
            Err(e) => Err(e),
        }
        .map_err(user_error)
    }
}

impl Connection {
    /// Execute of a read's portal for all its rows, sent as the read
    /// computes them. (pgwire's own Execute gathers every row of a portal
    /// run without a row limit before sending the first.) A CancelRequest
    /// stops it while it runs and while it sends.
    async fn execute_streaming<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        let mut status = client.transaction_status();
        client.set_state(PgWireConnectionState::QueryInProgress);
        let handle = client
            .session_extensions()
            .get::<Arc<ConnectionHandle>>()
            .map(|h| Arc::clone(&*h));
        let response = match &handle {
            Some(handle) => {
                let cancelled = handle.start_query().await;
                tokio::select! {
                    response = ExtendedQueryHandler::do_query(self, client, portal, 0) => response,
                    Ok(()) = cancelled => Err(PgWireError::QueryCanceled),
                }
            }
            None => ExtendedQueryHandler::do_query(self, client, portal, 0).await,
        }?;
        *portal.state.lock().await = PortalExecutionState::Finished;
        match response {
            Response::Query(mut rows) => {
                let tag = rows.command_tag().to_owned();
                let mut count = 0;
                while let Some(row) = rows.data_rows().next().await {
                    client.feed(PgWireBackendMessage::DataRow(row?)).await?;
                    count += 1;
                }
                client
                    .feed(PgWireBackendMessage::CommandComplete(
                        Tag::new(&tag).with_rows(count).into(),
                    ))
                    .await?;
            }
            Response::Error(e) => {
                client
                    .feed(PgWireBackendMessage::ErrorResponse((*e).into()))
                    .await?;
                status = status.to_error_state();
            }
            Response::Execution(tag) => {
                client
                    .feed(PgWireBackendMessage::CommandComplete(tag.into()))
                    .await?;
            }
            _ => {
                return Err(to_pg_error(
                    &WireError::new(SqlState::Internal, "a read answered with no rows"),
                    pgwire::error::SEVERITY_ERROR,
                ))
            }
        }
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(status);
        Ok(())
    }
}

/// Turns Parse into a [`Prepared`] by asking the backend to describe it.
pub(super) struct StatementParser {
    backend: Arc<dyn Backend>,
    vars: Vars,
}

#[async_trait]
impl QueryParser for StatementParser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let user_error = |e: WireError| to_pg_error(&e, pgwire::error::SEVERITY_ERROR);
        let declared = types
            .iter()
            .enumerate()
            .map(|(idx, ty)| declared_type(idx, ty.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(user_error)?;
        let description = {
            let vars = self.vars.lock().await;
            self.backend
                .describe(&vars, sql, &declared)
                .await
                .map_err(user_error)?
        };
        let count = declared.len().max(description.params.len());
        let params = (0..count)
            .map(|i| {
                declared
                    .get(i)
                    .copied()
                    .flatten()
                    .or_else(|| description.params.get(i).copied())
                    .unwrap_or(SqlType::Text)
            })
            .collect();
        Ok(Some(Prepared {
            sql: sql.to_owned(),
            params,
            columns: description.columns,
        }))
    }

    // Describe is answered by `Connection::on_describe`; these serve pgwire's
    // defaults should anything else call them.
    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        Ok(stmt.params.iter().map(|t| pg_type(*t)).collect())
    }

    fn get_result_schema(
        &self,
        stmt: &Prepared,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<pgwire::api::results::FieldInfo>> {
        Ok(field_infos(
            stmt.columns.as_deref().unwrap_or_default(),
            column_format,
        ))
    }
}

#[cfg(test)]
mod sasl_tests {
    use super::initial_response;

    fn message(method: &str, len: i32, data: &[u8]) -> Vec<u8> {
        let mut m = format!("{method}\0").into_bytes();
        m.extend_from_slice(&len.to_be_bytes());
        m.extend_from_slice(data);
        m
    }

    #[test]
    fn sasl_initial_responses_are_read_only_when_their_lengths_add_up() {
        let ok = initial_response(&message("SCRAM-SHA-256", 3, b"n,,")).unwrap();
        assert_eq!(ok.auth_method, "SCRAM-SHA-256");
        assert_eq!(ok.data.as_deref(), Some(&b"n,,"[..]));
        assert!(initial_response(&message("SCRAM-SHA-256", -1, b""))
            .unwrap()
            .data
            .is_none());
        for bad in [
            Vec::new(),
            b"SCRAM-SHA-256".to_vec(),
            b"SCRAM-SHA-256\0\0\0".to_vec(),
            message("SCRAM-SHA-256", 4, b"n,,"),
            message("SCRAM-SHA-256", 2, b"n,,"),
            message("SCRAM-SHA-256", -2, b""),
            message("SCRAM-SHA-256", i32::MAX, b"x"),
            vec![0xff, 0xfe, 0, 0, 0, 0, 0],
        ] {
            assert!(initial_response(&bad).is_none(), "{bad:?}");
        }
    }
}
