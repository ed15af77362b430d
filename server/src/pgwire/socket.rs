//! One client socket from accept to close, with the limits a server needs.
//!
//! pgwire's own `process_socket` reads any message up to 1 GiB into memory,
//! keeps a silent socket for a minute, and passes messages that make no sense
//! in the connection's state to handlers that ignore them. This is the same
//! loop (pgwire's TLS negotiation, `process_message` and `process_error`)
//! with Eddy's limits around it:
//!
//! - **Startup timeout**: a client that has not finished its startup in
//!   [`Limits::startup_timeout`] gets a FATAL 08P01 and is closed.
//! - **Maximum message size**: [`Frames`] reads every message's length as the
//!   bytes arrive, before pgwire buffers the body; a message longer than
//!   [`Limits::max_message_bytes`] gets a FATAL 54000 at once, so a client
//!   announcing 256 MB costs the node nothing.
//! - **Messages out of their state** (COPY data outside COPY, a password
//!   after authentication) get an 08P01 error, never silence.

use super::connection::{Connection, Prepared};
use super::error::{error_info, to_pg_error};
use crate::session::WireError;
use common::SqlState;
use futures::{SinkExt, StreamExt};
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::{ClientInfo, NoopHandler, PgWireConnectionState};
use pgwire::error::{SEVERITY_ERROR, SEVERITY_FATAL};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::{negotiate_tls, process_error, process_message, MaybeTls};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, FramedParts};

/// What one connection may ask of the node.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From accept to the end of startup (PostgreSQL's `authentication_timeout`).
    pub startup_timeout: Duration,
    /// The longest frontend message, header included.
    pub max_message_bytes: usize,
    /// Open connections at most; the next one gets FATAL 53300 at startup.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            startup_timeout: Duration::from_secs(15),
            max_message_bytes: 16 << 20,
            max_connections: 1000,
        }
    }
}

/// Serves one socket with `conn`'s handlers until the client leaves, a FATAL
/// error, or a limit ends it.
pub(super) async fn process(
    socket: TcpStream,
    conn: Arc<Connection>,
    cancel: Arc<DefaultCancelHandler>,
    limits: Limits,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> io::Result<()> {
    let deadline = tokio::time::Instant::now() + limits.startup_timeout;
    let negotiated =
        tokio::time::timeout_at(deadline, negotiate_tls::<Prepared>(socket, tls)).await;
    let Ok(negotiated) = negotiated else {
        tracing::debug!("no startup before the startup timeout");
        return Ok(());
    };
    let Some(framed) = negotiated? else {
        return Ok(());
    };
    // Put the message-size guard between the socket and pgwire's buffer,
    // telling it about the bytes negotiation already buffered.
    let parts = framed.into_parts();
    let mut frames = Frames::new(limits.max_message_bytes);
    let early = frames.feed(&parts.read_buf);
    let mut guarded = FramedParts::new(
        Guarded {
            io: parts.io,
            frames,
        },
        parts.codec,
    );
    guarded.read_buf = parts.read_buf;
    guarded.write_buf = parts.write_buf;
    let mut socket = Framed::from_parts(guarded);
    if let Err(len) = early {
        return refuse(&mut socket, too_large(len, limits.max_message_bytes)).await;
    }

    let copy = Arc::new(NoopHandler);
    loop {
        let starting = matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup
                | PgWireConnectionState::AuthenticationInProgress
        );
        let next = if starting {
            match tokio::time::timeout_at(deadline, socket.next()).await {
                Ok(next) => next,
                Err(_) => {
                    let e = WireError::new(
                        SqlState::ProtocolViolation,
                        "canceling startup due to timeout",
                    )
                    .with_hint(format!(
                        "Send the startup message within {} s of connecting.",
                        limits.startup_timeout.as_secs()
                    ));
                    return refuse(&mut socket, e).await;
                }
            }
        } else {
            socket.next().await
        };
        let msg = match next {
            Some(Ok(msg)) => msg,
            Some(Err(e)) => {
                if let Some(len) = socket.get_ref().frames.too_large {
                    return refuse(&mut socket, too_large(len, limits.max_message_bytes)).await;
                }
                tracing::debug!(error = %e, "unreadable message");
                return Ok(());
            }
            None => return Ok(()),
        };
        if matches!(msg, PgWireFrontendMessage::Terminate(_)) {
            return Ok(());
        }
        let is_extended = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => msg.is_extended_query(),
        };
        if let Some(e) = out_of_context(&msg, socket.state()) {
            process_error(&mut socket, to_pg_error(&e, SEVERITY_ERROR), is_extended).await?;
            continue;
        }
        let is_cancel = matches!(msg, PgWireFrontendMessage::CancelRequest(_));
        let result = process_message(
            msg,
            &mut socket,
            conn.clone(),
            conn.clone(),
            conn.clone(),
            copy.clone(),
            cancel.clone(),
        )
        .await;
        if let Err(e) = result {
            let fatal = e.is_fatal();
            process_error(&mut socket, e, is_extended).await?;
            if fatal {
                return Ok(());
            }
        }
        if is_cancel {
            return Ok(());
        }
    }
}

/// An 08P01 for a message that makes no sense in the connection's state.
fn out_of_context(msg: &PgWireFrontendMessage, state: PgWireConnectionState) -> Option<WireError> {
    use PgWireFrontendMessage as M;
    let in_copy = matches!(state, PgWireConnectionState::CopyInProgress(_));
    let authenticating = matches!(
        state,
        PgWireConnectionState::AwaitingStartup | PgWireConnectionState::AuthenticationInProgress
    );
    let what = match msg {
        M::CopyData(_) | M::CopyDone(_) | M::CopyFail(_) if !in_copy => "COPY data outside COPY",
        M::PasswordMessageFamily(_) if !authenticating => "a password message after startup",
        _ => return None,
    };
    Some(
        WireError::new(
            SqlState::ProtocolViolation,
            format!("unexpected message: {what}"),
        )
        .with_hint("The client sent a message the protocol does not allow at this point."),
    )
}

fn too_large(len: usize, limit: usize) -> WireError {
    WireError::new(
        SqlState::ProgramLimitExceeded,
        format!("message of {len} bytes is larger than the server accepts ({limit} bytes)"),
    )
    .with_hint("Send smaller statements or parameters, or raise eddy serve --max-message-bytes.")
}

/// Sends `e` as FATAL and closes.
async fn refuse<S>(socket: &mut S, e: WireError) -> io::Result<()>
where
    S: futures::Sink<PgWireBackendMessage> + Unpin,
{
    tracing::debug!(code = %e.code, message = %e.message, "closing the connection");
    let info = error_info(&e, SEVERITY_FATAL);
    let _ = socket
        .send(PgWireBackendMessage::ErrorResponse(info.into()))
        .await;
    Ok(())
}

/// The socket with the message-size guard on its read side.
struct Guarded {
    io: MaybeTls,
    frames: Frames,
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.io).poll_read(cx, buf))?;
        let this = &mut *self;
        match this.frames.feed(&buf.filled()[before..]) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(len) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("message of {len} bytes is too large"),
            ))),
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Finds message boundaries in the frontend byte stream: untyped messages
/// (`length, code, ...`: startup, SSL/GSS requests, cancel) until the first
/// that is not an SSL or GSS request, then typed ones (`type, length, ...`).
#[derive(Debug)]
struct Frames {
    max: usize,
    typed: bool,
    header: [u8; 8],
    have: usize,
    /// Body bytes of the current message still to pass.
    skip: u64,
    /// The length of the message that broke the limit.
    too_large: Option<usize>,
}

/// SSLRequest and GSSENCRequest codes: another untyped message follows them.
const NEGOTIATION_CODES: [u32; 2] = [80_877_103, 80_877_104];

impl Frames {
    fn new(max: usize) -> Frames {
        Frames {
            max,
            typed: false,
            header: [0; 8],
            have: 0,
            skip: 0,
            too_large: None,
        }
    }

    /// Follows `bytes`; `Err(length)` when a message is longer than allowed.
    fn feed(&mut self, mut bytes: &[u8]) -> Result<(), usize> {
        if let Some(len) = self.too_large {
            return Err(len);
        }
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = (self.skip.min(bytes.len() as u64)) as usize;
                self.skip -= n as u64;
                bytes = &bytes[n..];
                continue;
            }
            // Typed: type byte + length (5). Untyped: length + code (8).
            let need = if self.typed { 5 } else { 8 };
            let n = (need - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have < need {
                break;
            }
            self.have = 0;
            let at = usize::from(self.typed);
            let word =
                |i: usize| u32::from_be_bytes(self.header[i..i + 4].try_into().unwrap_or_default());
            let len = word(at) as usize;
            // The length counts itself; pgwire rejects nonsense lengths.
            let total = len + at;
            if total > self.max {
                self.too_large = Some(total);
                return Err(total);
            }
            let consumed = need;
            self.skip = total.saturating_sub(consumed) as u64;
            if !self.typed && !NEGOTIATION_CODES.contains(&word(4)) {
                self.typed = true;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(kind: u8, body: usize) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&((body + 4) as u32).to_be_bytes());
        m.extend(std::iter::repeat_n(b'x', body));
        m
    }

    fn startup() -> Vec<u8> {
        let mut m = 16u32.to_be_bytes().to_vec();
        m.extend_from_slice(&196_608u32.to_be_bytes());
        m.extend_from_slice(b"user\0a\0\0\0");
        m.truncate(16);
        m
    }

    #[test]
    fn messages_within_the_limit_pass_in_any_split() {
        let mut stream = 8u32.to_be_bytes().to_vec();
        stream.extend_from_slice(&80_877_103u32.to_be_bytes());
        stream.extend(startup());
        stream.extend(typed(b'Q', 100));
        stream.extend(typed(b'P', 995));
        for chunk in [1, 3, 7, 64, 4096] {
            let mut f = Frames::new(1000);
            for part in stream.chunks(chunk) {
                assert_eq!(f.feed(part), Ok(()), "chunk {chunk}");
            }
        }
    }

    #[test]
    fn a_message_over_the_limit_is_caught_at_its_header() {
        let mut f = Frames::new(1000);
        f.feed(&startup()).unwrap();
        // Only the header of a 256 MB Query has arrived.
        let mut header = vec![b'Q'];
        header.extend_from_slice(&(256u32 << 20).to_be_bytes());
        assert_eq!(f.feed(&header), Err((256 << 20) + 1));
        assert!(f.feed(b"more").is_err(), "stays refused");
    }

    #[test]
    fn an_oversized_startup_packet_is_caught() {
        let mut f = Frames::new(1000);
        let mut m = 5000u32.to_be_bytes().to_vec();
        m.extend_from_slice(&196_608u32.to_be_bytes());
        assert_eq!(f.feed(&m), Err(5000));
    }
}
