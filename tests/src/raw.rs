//! A raw Postgres connection, for messages and states no driver shows: a
//! protocol violation, a message of any size, the transaction status each
//! ReadyForQuery carries.

use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Raw(pub TcpStream);

impl Raw {
    /// A socket to `addr` (`host:port`), before any message.
    pub async fn connect(addr: &str) -> Result<Raw> {
        Ok(Raw(TcpStream::connect(addr).await?))
    }

    /// A session of `user` (database `eddy` or the user's own), after the
    /// server's first ReadyForQuery.
    pub async fn startup(addr: &str, user: &str) -> Result<Raw> {
        let mut raw = Raw::connect(addr).await?;
        let mut body = 196_608u32.to_be_bytes().to_vec();
        body.extend_from_slice(format!("user\0{user}\0database\0{user}\0\0").as_bytes());
        let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        msg.extend(body);
        raw.0.write_all(&msg).await?;
        raw.until(b'Z').await?;
        Ok(raw)
    }

    pub async fn send(&mut self, kind: u8, body: &[u8]) -> Result<()> {
        let mut msg = vec![kind];
        msg.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        msg.extend_from_slice(body);
        self.0.write_all(&msg).await?;
        Ok(())
    }

    /// Reads messages until one of type `kind`; returns every (type, body) read.
    pub async fn until(&mut self, kind: u8) -> Result<Vec<(u8, Vec<u8>)>> {
        let mut seen = Vec::new();
        loop {
            let t = tokio::time::timeout(Duration::from_secs(10), self.0.read_u8())
                .await
                .context("the server answered within 10 s")??;
            let len = self.0.read_u32().await? as usize;
            let mut body = vec![0; len.saturating_sub(4)];
            self.0.read_exact(&mut body).await?;
            seen.push((t, body));
            if t == kind {
                return Ok(seen);
            }
        }
    }

    /// Runs `sql` as a simple query: the transaction status of the
    /// ReadyForQuery that ends it (`I`, `T` or `E`) and the SQLSTATE of any
    /// error.
    pub async fn status_after(&mut self, sql: &str) -> Result<(char, Option<String>)> {
        let mut body = sql.as_bytes().to_vec();
        body.push(0);
        self.send(b'Q', &body).await?;
        let got = self.until(b'Z').await?;
        let error = got
            .iter()
            .find(|(t, _)| *t == b'E')
            .map(|(_, b)| sqlstate(b));
        let status = got
            .last()
            .and_then(|(_, b)| b.first())
            .map_or('?', |b| *b as char);
        Ok((status, error))
    }

    /// True once the server closed the socket (within 10 s).
    pub async fn closed(&mut self) -> Result<bool> {
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.0.read(&mut buf)).await {
                Err(_) => return Ok(false),
                Ok(Ok(0)) | Ok(Err(_)) => return Ok(true),
                Ok(Ok(_)) => continue,
            }
        }
    }
}

/// The SQLSTATE of an ErrorResponse body.
pub fn sqlstate(body: &[u8]) -> String {
    body.split(|b| *b == 0)
        .find_map(|f| f.strip_prefix(b"C"))
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .unwrap_or_default()
}
