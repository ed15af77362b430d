//! Connections to the other nodes, over the Postgres protocol
//! (`tokio-postgres`): one multiplexed client per peer, made on first use
//! and made again when it breaks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// How long a peer may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Default)]
pub struct Peers {
    clients: Mutex<HashMap<String, Arc<Client>>>,
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
        let mut clients = self.clients.lock().await;
        if let Some(c) = clients.get(addr) {
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
        clients.insert(addr.to_owned(), client.clone());
        Ok(client)
    }

    /// Runs `request` on the peer at `addr`; the first column of each row.
    pub async fn query(&self, addr: &str, request: &str) -> Result<Vec<String>, PeerError> {
        let client = self.client(addr).await?;
        let messages = client
            .simple_query(request)
            .await
            .map_err(|e| match e.as_db_error() {
                Some(db) => PeerError::Refused {
                    code: db.code().code().to_owned(),
                    message: db.message().to_owned(),
                },
                None => PeerError::Unreachable(e.to_string()),
            })?;
        Ok(messages
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
            .collect())
    }
}
