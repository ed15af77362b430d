//! # pgwire: the Postgres wire protocol in front of the session interface
//!
//! The last stage of the flow (… → router → **pgwire**): it accepts client
//! connections, speaks the Postgres protocol (startup, simple and extended
//! query) and hands every statement to a [`Backend`]. It must never touch
//! RocksDB or Kafka, and it never parses SQL: `SET`/`SHOW` and `BEGIN` go to
//! the backend like any statement; this layer only announces the variables the
//! backend changed.
//!
//! ## Layout
//! - [`serve`]: the accept loop, one task (and span) per connection, shutdown.
//! - `connection`: the pgwire handler traits for one connection; holds that
//!   connection's [`SessionVars`](crate::session::vars::SessionVars).
//! - `codec`: values in the text and binary formats (Bind in, DataRow out).
//! - `error`: the one mapping of [`WireError`](crate::session::WireError) to
//!   ErrorResponse.

mod buffered;
mod codec;
mod connection;
mod error;
mod socket;

use crate::session::vars::VarDefaults;
use crate::session::Backend;
use connection::{Connection, Shared};
pub use socket::Limits;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How clients prove who they are: the login rules, and TLS when the node
/// has a certificate.
pub struct Security {
    pub login: Arc<crate::access::login::Login>,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Serves Postgres clients on `listener` until `shutdown` completes.
///
/// Shutdown order: stop accepting, then close every open connection (an
/// in-flight statement is dropped), then return once every connection task
/// has ended. Bind the listener yourself (port 0 in tests) and read its
/// address before calling: the server is ready as soon as this is polled.
pub async fn serve(
    listener: TcpListener,
    backend: Arc<dyn Backend>,
    defaults: VarDefaults,
    limits: Limits,
    security: Security,
    shutdown: impl Future<Output = ()>,
) {
    let shared = Arc::new(Shared::new(backend, defaults, security.login));
    let tls = security.tls;
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let closing = CancellationToken::new();
    let mut connections = JoinSet::new();
    let mut next_id: u64 = 0;
    tokio::pin!(shutdown);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "accepting Postgres connections");
    }

    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(ended) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = ended {
                    if e.is_panic() {
                        tracing::error!(error = %e, "connection task panicked");
                    }
                }
            }
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Usually out of file descriptors: back off rather
                        // than spin, but keep listening for shutdown.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                        }
                    }
                };
                next_id += 1;
                let _ = socket.set_nodelay(true);
                let span = tracing::info_span!(
                    "pg_connection",
                    conn = next_id,
                    %peer,
                    user = tracing::field::Empty,
                    application_name = tracing::field::Empty,
                );
                // Over the limit, the connection still starts, to be told
                // why it is refused (53300) once it says who it is.
                let slot = slots.clone().try_acquire_owned().ok();
                let conn = Arc::new(Connection::new(shared.clone(), slot));
                let cancel = shared.cancel.clone();
                let closing = closing.clone();
                let tls = tls.clone();
                connections.spawn(
                    async move {
                        tracing::debug!("connection opened");
                        tokio::select! {
                            result = socket::process(socket, conn, cancel, limits, tls) => match result {
                                Ok(()) => tracing::debug!("connection closed"),
                                Err(e) => tracing::debug!(error = %e, "connection ended"),
                            },
                            () = closing.cancelled() => tracing::debug!("connection closed for shutdown"),
                        }
                    }
                    .instrument(span),
                );
            }
        }
    }

    tracing::info!(
        open = connections.len(),
        "stopped accepting Postgres connections; closing open ones"
    );
    drop(listener);
    closing.cancel();
    while connections.join_next().await.is_some() {}
}
