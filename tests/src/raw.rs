//! A raw Postgres connection, for messages and states no driver shows: a
//! protocol violation, a message of any size, the transaction status each
//! ReadyForQuery carries.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Raw(pub TcpStream);

impl Raw {
    /// A socket to `addr` (`host:port`), before any message.
    pub async fn connect(addr: &str) -> Result<Raw> {
        Ok(Raw(TcpStream::connect(addr).await?))
    }

    /// A session of `user` (database `eddy` or the user's own), after the
    /// server's first ReadyForQuery. With a `password`, answers the
    /// server's SCRAM-SHA-256 request (a client of the tests' own, written
    /// from RFC 5802, so the server is checked against an independent one).
    pub async fn startup(addr: &str, user: &str, password: Option<&str>) -> Result<Raw> {
        let mut raw = Raw::connect(addr).await?;
        raw.send_startup(user).await?;
        let (kind, body) = raw.next().await?;
        let asks_sasl = kind == b'R' && body.get(..4) == Some(&10u32.to_be_bytes()[..]);
        match password {
            Some(password) if asks_sasl => raw.scram(password).await?,
            _ if kind == b'E' => bail!("startup refused: {}", sqlstate(&body)),
            _ => {}
        }
        if kind != b'Z' {
            let got = raw.until(b'Z').await?;
            if let Some((_, e)) = got.iter().find(|(t, _)| *t == b'E') {
                bail!("startup refused: {}", sqlstate(e));
            }
        }
        Ok(raw)
    }

    /// The startup message of `user` (database `eddy` or the user's own).
    pub async fn send_startup(&mut self, user: &str) -> Result<()> {
        let mut body = 196_608u32.to_be_bytes().to_vec();
        body.extend_from_slice(format!("user\0{user}\0database\0{user}\0\0").as_bytes());
        let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        msg.extend(body);
        self.0.write_all(&msg).await?;
        Ok(())
    }

    /// One message: its type and body.
    pub async fn next(&mut self) -> Result<(u8, Vec<u8>)> {
        let t = tokio::time::timeout(Duration::from_secs(10), self.0.read_u8())
            .await
            .context("the server answered within 10 s")??;
        let len = self.0.read_u32().await? as usize;
        let mut body = vec![0; len.saturating_sub(4)];
        self.0.read_exact(&mut body).await?;
        Ok((t, body))
    }

    /// SCRAM-SHA-256 after AuthenticationSASL, up to AuthenticationOk.
    async fn scram(&mut self, password: &str) -> Result<()> {
        use base64::engine::general_purpose::STANDARD;
        use base64::Engine;
        use ring::{digest, hmac, pbkdf2};
        let mac = |key: &[u8], data: &[u8]| {
            hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
                .as_ref()
                .to_vec()
        };
        let nonce = STANDARD.encode(crate::test_password());
        let first_bare = format!("n=,r={nonce}");
        let first = format!("n,,{first_bare}");
        let mut body = b"SCRAM-SHA-256\0".to_vec();
        body.extend_from_slice(&(first.len() as i32).to_be_bytes());
        body.extend_from_slice(first.as_bytes());
        self.send(b'p', &body).await?;
        let (kind, body) = self.next().await?;
        ensure!(
            kind == b'R' && body.get(..4) == Some(&11u32.to_be_bytes()[..]),
            "no SASLContinue: {}",
            sqlstate(&body)
        );
        let server_first = String::from_utf8(body[4..].to_vec())?;
        let field = |k: &str| {
            server_first
                .split(',')
                .find_map(|f| f.strip_prefix(k))
                .map(str::to_owned)
                .with_context(|| format!("{k} in {server_first}"))
        };
        let (r, salt, iterations) = (
            field("r=")?,
            STANDARD.decode(field("s=")?)?,
            field("i=")?.parse::<u32>()?,
        );
        ensure!(r.starts_with(&nonce), "the server's nonce extends ours");
        let mut salted = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            std::num::NonZeroU32::new(iterations).context("iterations")?,
            &salt,
            password.as_bytes(),
            &mut salted,
        );
        let client_key = mac(&salted, b"Client Key");
        let stored_key = digest::digest(&digest::SHA256, &client_key);
        let without_proof = format!("c=biws,r={r}");
        let auth_message = format!("{first_bare},{server_first},{without_proof}");
        let signature = mac(stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let last = format!("{without_proof},p={}", STANDARD.encode(proof));
        self.send(b'p', last.as_bytes()).await?;
        let (kind, body) = self.next().await?;
        if kind == b'E' {
            bail!("authentication failed: {}", sqlstate(&body));
        }
        ensure!(
            kind == b'R' && body.get(..4) == Some(&12u32.to_be_bytes()[..]),
            "no SASLFinal"
        );
        let server_signature = mac(&mac(&salted, b"Server Key"), auth_message.as_bytes());
        ensure!(
            body[4..] == *format!("v={}", STANDARD.encode(server_signature)).as_bytes(),
            "the server proved it knows the verifier"
        );
        Ok(())
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
            let (t, body) = self.next().await?;
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
