//! A client wrapper that holds replies until Sync.
//!
//! pgwire's default Execute flushes the socket after CommandComplete, so a
//! prepared query costs two writes (and two wake-ups of the client): one for
//! its rows, one for ReadyForQuery. In the extended protocol nothing needs to
//! reach the client before Sync or Flush, so Execute runs against this
//! wrapper, whose flush is a no-op; the Sync that follows flushes everything
//! at once. The framed writer still drains when its buffer fills, so large
//! results stream as before.

use futures::Sink;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireConnectionState};
use pgwire::messages::response::TransactionStatus;
use pgwire::messages::{PgWireBackendMessage, ProtocolVersion};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

pub(super) struct HoldUntilSync<'a, C>(pub &'a mut C);

impl<C: Sink<PgWireBackendMessage> + Unpin> Sink<PgWireBackendMessage> for HoldUntilSync<'_, C> {
    type Error = C::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut *self.0).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: PgWireBackendMessage) -> Result<(), Self::Error> {
        Pin::new(&mut *self.0).start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut *self.0).poll_close(cx)
    }
}

impl<C: ClientInfo> ClientInfo for HoldUntilSync<'_, C> {
    fn socket_addr(&self) -> SocketAddr {
        self.0.socket_addr()
    }
    fn is_secure(&self) -> bool {
        self.0.is_secure()
    }
    fn protocol_version(&self) -> ProtocolVersion {
        self.0.protocol_version()
    }
    fn set_protocol_version(&mut self, version: ProtocolVersion) {
        self.0.set_protocol_version(version)
    }
    fn pid_and_secret_key(&self) -> (i32, pgwire::messages::startup::SecretKey) {
        self.0.pid_and_secret_key()
    }
    fn set_pid_and_secret_key(
        &mut self,
        pid: i32,
        secret_key: pgwire::messages::startup::SecretKey,
    ) {
        self.0.set_pid_and_secret_key(pid, secret_key)
    }
    fn state(&self) -> PgWireConnectionState {
        self.0.state()
    }
    fn set_state(&mut self, new_state: PgWireConnectionState) {
        self.0.set_state(new_state)
    }
    fn transaction_status(&self) -> TransactionStatus {
        self.0.transaction_status()
    }
    fn set_transaction_status(&mut self, new_status: TransactionStatus) {
        self.0.set_transaction_status(new_status)
    }
    fn metadata(&self) -> &HashMap<String, String> {
        self.0.metadata()
    }
    fn metadata_mut(&mut self) -> &mut HashMap<String, String> {
        self.0.metadata_mut()
    }
    fn session_extensions(&self) -> &pgwire::api::SessionExtensions {
        self.0.session_extensions()
    }
    fn sni_server_name(&self) -> Option<&str> {
        self.0.sni_server_name()
    }
    fn client_certificates<'a>(&self) -> Option<&[rustls_pki_types::CertificateDer<'a>]> {
        self.0.client_certificates()
    }
}

impl<C: ClientPortalStore> ClientPortalStore for HoldUntilSync<'_, C> {
    type PortalStore = C::PortalStore;

    fn portal_store(&self) -> &Self::PortalStore {
        self.0.portal_store()
    }
}
