//! Calls to the other nodes' internal services ([`super::service`]): one
//! HTTP/2 channel per peer, multiplexing every call to it, made on first
//! use and re-established by itself when it breaks. A peer that failed is
//! *suspect* for a while, so reads try other replicas first.

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::Ticket;
use datafusion::arrow::record_batch::RecordBatch;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

use super::credentials::Credentials;
use super::internal::{Refusal, Request};
use super::service::MAX_MESSAGE_BYTES;

/// How long a peer may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How often an idle channel checks its peer is there, and how long the
/// peer has to answer: a peer killed mid-answer is noticed this fast.
const KEEPALIVE: Duration = Duration::from_secs(1);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a peer that failed a request stays suspect.
const SUSPECT_FOR: Duration = Duration::from_secs(2);

#[derive(Default)]
pub struct Peers {
    channels: Mutex<HashMap<String, Channel>>,
    failed: Mutex<HashMap<String, Instant>>,
}

/// Why a peer did not answer.
#[derive(Debug)]
pub enum PeerError {
    /// Could not connect, or the connection broke.
    Unreachable(String),
    /// The peer refused, saying why.
    Refused(Refusal),
}

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerError::Unreachable(why) => write!(f, "unreachable: {why}"),
            PeerError::Refused(refusal) => write!(f, "{refusal}"),
        }
    }
}

impl From<FlightError> for PeerError {
    fn from(e: FlightError) -> PeerError {
        match e {
            FlightError::Tonic(status) => match Refusal::from_status(&status) {
                Some(refusal) => PeerError::Refused(refusal),
                None => PeerError::Unreachable(format!("{}: {}", status.code(), status.message())),
            },
            other => PeerError::Unreachable(other.to_string()),
        }
    }
}

impl Peers {
    fn channel(&self, addr: &str, credentials: &Credentials) -> Result<Channel, PeerError> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = channels.get(addr) {
            return Ok(c.clone());
        }
        let channel = Endpoint::from_shared(format!("https://{addr}"))
            .map_err(|e| PeerError::Unreachable(format!("bad address {addr}: {e}")))?
            .tls_config(credentials.client_tls())
            .map_err(|e| PeerError::Unreachable(format!("TLS to {addr}: {e}")))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(KEEPALIVE)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true)
            .connect_lazy();
        channels.insert(addr.to_owned(), channel.clone());
        Ok(channel)
    }

    /// Whether the peer at `addr` failed a request lately.
    pub fn suspect(&self, addr: &str) -> bool {
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(addr)
            .is_some_and(|at| at.elapsed() < SUSPECT_FOR)
    }

    fn mark_failed(&self, addr: &str) {
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(addr.to_owned(), Instant::now());
    }

    /// Sends `request` to the peer at `addr` over mutual TLS with the
    /// cluster's `credentials`; once the peer has accepted it (within
    /// `timeout`), the stream of its answer's batches.
    pub async fn request(
        &self,
        addr: &str,
        credentials: &Credentials,
        request: &Request,
        timeout: Duration,
    ) -> Result<BoxStream<'static, Result<RecordBatch, PeerError>>, PeerError> {
        let call = tonic::Request::new(Ticket::new(request.encode()));
        let mut client = FlightServiceClient::new(self.channel(addr, credentials)?)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let answer = match tokio::time::timeout(timeout, client.do_get(call)).await {
            Ok(Ok(answer)) => answer.into_inner(),
            Ok(Err(status)) => {
                let e = PeerError::from(FlightError::Tonic(Box::new(status)));
                if let PeerError::Unreachable(_) = e {
                    self.mark_failed(addr);
                }
                return Err(e);
            }
            Err(_) => {
                self.mark_failed(addr);
                return Err(PeerError::Unreachable(format!(
                    "no answer within {} ms",
                    timeout.as_millis()
                )));
            }
        };
        let batches = FlightRecordBatchStream::new_from_flight_data(
            answer.map_err(|status| FlightError::Tonic(Box::new(status))),
        );
        Ok(batches.map_err(PeerError::from).boxed())
    }
}
