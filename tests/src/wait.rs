//! Condition waits with deadlines (DESIGN §4.3): the only place the harness pauses.

use std::time::{Duration, Instant};

/// The longest any single wait in a test may take.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Marks an error that retrying cannot fix (a child process exited, say): [`eventually`]
/// returns it at once instead of waiting for the deadline.
#[derive(Debug)]
pub struct Permanent;

impl std::fmt::Display for Permanent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("permanent failure")
    }
}

/// Wraps `err` so that [`eventually`] stops retrying.
pub fn permanent(err: anyhow::Error) -> anyhow::Error {
    err.context(Permanent)
}

/// Calls `check` until it returns `Ok`, or fails with the last error once `deadline`
/// has passed (or at once for a [`permanent`] error). Between attempts it backs off
/// from 20 ms up to 500 ms: this is a poll of a condition, never a fixed sleep
/// standing in for one.
pub async fn eventually<T>(
    deadline: Duration,
    mut check: impl AsyncFnMut() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let start = Instant::now();
    let mut backoff = Duration::from_millis(20);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match check().await {
            Ok(value) => return Ok(value),
            Err(err) if err.downcast_ref::<Permanent>().is_some() => return Err(err),
            Err(err) => {
                let elapsed = start.elapsed();
                if elapsed >= deadline {
                    return Err(err.context(format!(
                        "condition still false after {elapsed:.1?} ({attempts} attempts)"
                    )));
                }
                let pause = backoff.min(deadline - elapsed);
                tokio::time::sleep(pause).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
        }
    }
}
