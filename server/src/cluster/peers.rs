//! Connections to the other nodes, over the Postgres protocol
//! (`tokio-postgres`): one multiplexed client per peer, made on first use
//! and made again when it breaks or stops answering. A peer that failed is
//! *suspect* for a while, so reads try other replicas first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// How long a peer may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a peer that failed a request stays suspect.
const SUSPECT_FOR: Duration = Duration::from_secs(2);

#[derive(Default)]
pub struct Peers {
    clients: Mutex<HashMap<String, Arc<Client>>>,
    failed: Mutex<HashMap<String, Instant>>,
}

/// Why a peer did not answer.
#[derive(Debug)]
pub enum PeerError {
    /// Could not connect, or the connection broke.
    Unreachable(String),
    /// The peer answered with an error: its SQLSTATE and message.
    Refused { code: String, message: String },
}

impl Peers {
    async fn client(&self, addr: &str) -> Result<Arc<Client>, PeerError> {
        if let Some(c) = self.clients.lock().expect("peers lock").get(addr) {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| PeerError::Unreachable(format!("bad address {addr}")))?;
        let mut config = tokio_postgres::Config::new();
        config
            .host(host)
            .port(
                port.parse()
                    .map_err(|_| PeerError::Unreachable(format!("bad port in {addr}")))?,
            )
            .user("eddy_internal")
            .application_name("eddy-peer")
            .connect_timeout(CONNECT_TIMEOUT);
        let (client, connection) = config
            .connect(NoTls)
            .await
            .map_err(|e| PeerError::Unreachable(e.to_string()))?;
        let peer = addr.to_owned();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "peer connection closed");
            }
        });
        let client = Arc::new(client);
        self.clients
            .lock()
            .expect("peers lock")
            .insert(addr.to_owned(), client.clone());
        Ok(client)
    }

    /// Whether the peer at `addr` failed a request lately.
    pub fn suspect(&self, addr: &str) -> bool {
        self.failed
            .lock()
            .expect("peers lock")
            .get(addr)
            .is_some_and(|at| at.elapsed() < SUSPECT_FOR)
    }

    /// Runs `request` on the peer at `addr`, waiting at most `timeout`; the
    /// first column of each row.
    pub async fn query(
        &self,
        addr: &str,
        request: &str,
        timeout: Duration,
    ) -> Result<Vec<String>, PeerError> {
        let result = tokio::time::timeout(timeout, async {
            let client = self.client(addr).await?;
            client
                .simple_query(request)
                .await
                .map_err(|e| match e.as_db_error() {
                    Some(db) => PeerError::Refused {
                        code: db.code().code().to_owned(),
                        message: db.message().to_owned(),
                    },
                    None => PeerError::Unreachable(e.to_string()),
                })
        })
        .await
        .unwrap_or_else(|_| {
            Err(PeerError::Unreachable(format!(
                "no answer within {} ms",
                timeout.as_millis()
            )))
        });
        if let Err(PeerError::Unreachable(_)) = &result {
            // Start over with a new connection: a request stuck on this
            // one would hold up every request behind it.
            self.clients.lock().expect("peers lock").remove(addr);
            self.failed
                .lock()
                .expect("peers lock")
                .insert(addr.to_owned(), Instant::now());
        }
        let messages = result?;
        Ok(messages
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
            .collect())
    }
}
