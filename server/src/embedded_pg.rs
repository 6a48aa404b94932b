//! A private, throwaway PostgreSQL cluster started from the installed binaries.
//!
//! Used when no `DATABASE_URL` is given: by the demo and, through `backstop with-postgres`, by
//! the test and benchmark commands. The cluster lives in a fresh temporary directory, listens on
//! a free loopback port with `trust` authentication (nothing else can reach it), and is stopped
//! and deleted when [`EmbeddedPostgres`] is dropped.
//!
//! `initdb` refuses to run as root, and CI runs as root, so when we are root the cluster is
//! created and run as the unprivileged `postgres` user (via `runuser`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};

/// Where Debian (and most distributions' versioned packages) put the server binaries.
const DEFAULT_BIN_DIRS: &[&str] =
    &["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"];

/// The unprivileged account used to own and run the cluster when we run as root.
const SERVICE_USER: &str = "postgres";

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedPgError {
    #[error(
        "no PostgreSQL server binaries found (looked in $PG_BIN and {DEFAULT_BIN_DIRS:?}); install them (Debian: apt-get install postgresql) or set DATABASE_URL"
    )]
    NoBinaries,
    #[error("{step} failed: {detail}")]
    Step { step: &'static str, detail: String },
}

/// How the cluster trades durability for speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fsync`, `synchronous_commit` and `full_page_writes` off: for tests, where a crash of
    /// the machine only loses a throwaway database.
    Throwaway,
    /// PostgreSQL's defaults (fsync on): what benchmarks and the demo use, so numbers mean
    /// something.
    Durable,
}

/// A running private cluster. Dropping it stops the server and deletes its files.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    root: PathBuf,
    bin_dir: PathBuf,
    port: u16,
    run_as_service_user: bool,
    server_options: String,
    stopped: bool,
}

impl EmbeddedPostgres {
    /// Creates and starts a cluster in a new temporary directory.
    pub fn start(durability: Durability) -> Result<Self, EmbeddedPgError> {
        let bin_dir = find_bin_dir()?;
        let run_as_service_user = is_root();
        let root = make_temp_dir()?;
        let mut pg = Self {
            root,
            bin_dir,
            port: 0,
            run_as_service_user,
            server_options: String::new(),
            stopped: true,
        };
        if run_as_service_user {
            run_checked("chown", Command::new("chown").arg("-R").arg(SERVICE_USER).arg(&pg.root))?;
        }
        pg.initdb()?;
        let mut tries = 1;
        loop {
            pg.port = free_loopback_port()?;
            pg.server_options = pg.options(durability);
            match pg.pg_ctl_start() {
                Ok(()) => break,
                // Another listener may have taken the port between the check and the start.
                Err(e) if tries < START_TRIES => {
                    eprintln!("backstop: PostgreSQL did not start on port {} ({e}); another port", pg.port);
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        }
        pg.stopped = false;
        Ok(pg)
    }

    /// A connection URL for database `db` (the cluster starts with only `postgres`).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Environment that lets a test stop and start this cluster (the database-restart test):
    /// `BACKSTOP_PG_CTL` is a `pg_ctl` command line for this cluster, `BACKSTOP_PG_OPTIONS` the
    /// server options to start it with again.
    pub fn control_env(&self) -> Vec<(&'static str, String)> {
        let prefix =
            if self.run_as_service_user { format!("runuser -u {SERVICE_USER} -- ") } else { String::new() };
        vec![
            (
                "BACKSTOP_PG_CTL",
                format!(
                    "{prefix}{} -D {} -l {}",
                    self.bin_dir.join("pg_ctl").display(),
                    self.data_dir().display(),
                    self.root.join("server.log").display()
                ),
            ),
            ("BACKSTOP_PG_OPTIONS", self.server_options.clone()),
        ]
    }

    /// Stops the server (fast shutdown) and deletes its files. Idempotent.
    pub fn stop(&mut self) {
        if !self.stopped {
            let mut cmd = self.command("pg_ctl");
            cmd.arg("stop").arg("-D").arg(self.data_dir()).args(["-m", "fast", "-w"]);
            if let Err(e) = run_checked("pg_ctl stop", &mut cmd) {
                eprintln!("backstop: could not stop the embedded PostgreSQL cleanly: {e}");
            }
            self.stopped = true;
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn initdb(&self) -> Result<(), EmbeddedPgError> {
        let mut cmd = self.command("initdb");
        cmd.arg("-D").arg(self.data_dir()).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "--encoding=UTF8",
            "--locale=C",
        ]);
        run_checked("initdb", &mut cmd).map(drop)
    }

    fn options(&self, durability: Durability) -> String {
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={} -c max_connections=200",
            self.port,
            self.root.display()
        );
        if durability == Durability::Throwaway {
            options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        options
    }

    fn pg_ctl_start(&self) -> Result<(), EmbeddedPgError> {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("start")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.root.join("server.log"))
            .arg("-o")
            .arg(&self.server_options)
            .arg("-w");
        run_checked("pg_ctl start", &mut cmd).map(drop).map_err(|e| {
            let log = std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default();
            EmbeddedPgError::Step { step: "pg_ctl start", detail: format!("{e}\n{log}") }
        })
    }

    /// A command for one of the server binaries, run as the service user when we are root.
    fn command(&self, binary: &str) -> Command {
        let program = self.bin_dir.join(binary);
        if self.run_as_service_user {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", SERVICE_USER, "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn find_bin_dir() -> Result<PathBuf, EmbeddedPgError> {
    let from_env = std::env::var_os("PG_BIN").map(PathBuf::from);
    from_env
        .into_iter()
        .chain(DEFAULT_BIN_DIRS.iter().map(PathBuf::from))
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
        .ok_or(EmbeddedPgError::NoBinaries)
}

fn is_root() -> bool {
    // `id -u` avoids an unsafe libc call for a question asked once per process.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn make_temp_dir() -> Result<PathBuf, EmbeddedPgError> {
    let base = std::env::temp_dir();
    for attempt in 0..100u32 {
        let dir = base.join(format!("backstop-pg-{}-{attempt}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(step_error("create temp dir", e)),
        }
    }
    Err(EmbeddedPgError::Step { step: "create temp dir", detail: "no free name".into() })
}

/// How many ports `start` tries before giving up.
const START_TRIES: u32 = 3;

/// A loopback port nothing listens on, below the kernel's ephemeral range (32768 and up): a
/// kernel-picked port can be taken meanwhile as the local end of any outgoing connection (that
/// is how the browser tests once lost a port in CI), one below it only by another listener, and
/// then `start` tries another.
fn free_loopback_port() -> Result<u16, EmbeddedPgError> {
    for _ in 0..100 {
        let port = rand::random_range(20_000..32_000);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(EmbeddedPgError::Step { step: "find a free port", detail: "100 ports tried, all taken".into() })
}

fn run_checked(step: &'static str, cmd: &mut Command) -> Result<Output, EmbeddedPgError> {
    let output = cmd.output().map_err(|e| step_error(step, e))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(EmbeddedPgError::Step {
            step,
            detail: format!(
                "{}\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }
}

fn step_error(step: &'static str, e: impl std::fmt::Display) -> EmbeddedPgError {
    EmbeddedPgError::Step { step, detail: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_accepts_connections_and_cleans_up() {
        let mut pg = EmbeddedPostgres::start(Durability::Throwaway).expect("start");
        let root = pg.root.clone();
        let out = Command::new("psql")
            .arg(pg.url("postgres"))
            .args(["-tAc", "select 40 + 2"])
            .output()
            .expect("psql runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42", "{out:?}");
        pg.stop();
        assert!(!root.exists(), "cluster directory removed");
    }
}
