//! A program in a terminal (`script` gives it one), for what psql does only
//! on a terminal: tab completion, password prompts. Input is typed once the
//! screen shows what a user would wait for.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// How long the screen may take to show what is waited for.
const SCREEN_DEADLINE: Duration = Duration::from_secs(20);

pub struct Terminal {
    child: Child,
    stdin: Option<ChildStdin>,
    output: Receiver<Vec<u8>>,
    seen: String,
}

impl Terminal {
    /// Runs the shell command `command` in a terminal, with `env`.
    pub fn spawn(command: &str, env: &[(&str, &str)]) -> Result<Terminal> {
        let mut cmd = Command::new("script");
        cmd.args(["-qec", command, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().context("running script (package bsdutils)")?;
        let stdin = child.stdin.take().context("script's stdin")?;
        let mut stdout = child.stdout.take().context("script's stdout")?;
        let (tx, output) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Ok(Terminal {
            child,
            stdin: Some(stdin),
            output,
            seen: String::new(),
        })
    }

    /// Everything the screen showed, once it shows `what`.
    pub fn wait_for(&mut self, what: &str) -> Result<String> {
        let deadline = Instant::now() + SCREEN_DEADLINE;
        while !self.seen.contains(what) {
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = self
                .output
                .recv_timeout(left)
                .with_context(|| format!("the terminal never showed {what:?}: {:?}", self.seen))?;
            self.seen
                .push_str(&String::from_utf8_lossy(&chunk).replace('\r', ""));
        }
        Ok(self.seen.clone())
    }

    /// Types `keys` (no newline added).
    pub fn type_keys(&mut self, keys: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().context("the terminal was closed")?;
        stdin.write_all(keys.as_bytes())?;
        stdin.flush()?;
        Ok(())
    }

    /// Closes the input and waits for the program: whether it succeeded.
    pub fn finish(mut self) -> Result<bool> {
        drop(self.stdin.take());
        Ok(self.child.wait()?.success())
    }
}
