//! A throwaway PostgreSQL 15 server: the reference engine that tests compare
//! Eddy's answers with (casts, result types, text formats), and the baseline
//! of the benchmark. Installed by `scripts/setup.sh --psql` (tests) or
//! `--bench`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::free_port;

/// A throwaway PostgreSQL 15 cluster: initdb in a tempdir, loopback only, trust auth.
/// As root, the server runs as the `postgres` user (it refuses to run as root).
pub struct Postgres {
    pub port: u16,
    pub dir: TempDir,
    bin: PathBuf,
    as_postgres: bool,
}

impl Postgres {
    pub fn start() -> Result<Postgres> {
        let bin = PathBuf::from("/usr/lib/postgresql/15/bin");
        if !bin.join("initdb").exists() {
            bail!("PostgreSQL 15 is not installed (scripts/setup.sh --psql installs it)");
        }
        let dir = tempfile::Builder::new()
            .prefix("eddy-bench-pg-")
            .tempdir()?;
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path()))?;
        }
        let port = free_port();
        let pg = Postgres {
            port,
            dir,
            bin,
            as_postgres,
        };
        let data = pg.dir.path().join("data");
        run(&mut pg.command(
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        ))?;
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            pg.dir.path().display()
        );
        run(&mut pg.command(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-l",
                &pg.dir.path().join("postgres.log").to_string_lossy(),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        ))?;
        Ok(pg)
    }

    fn command(&self, tool: &str, args: &[&str]) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path).args(args);
            c
        } else {
            let mut c = Command::new(path);
            c.args(args);
            c
        }
    }

    pub fn conn_str(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = self
            .command(
                "pg_ctl",
                &["-D", &data.to_string_lossy(), "-m", "immediate", "stop"],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a command to completion; an error carries its output.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
