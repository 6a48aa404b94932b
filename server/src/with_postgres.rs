//! `backstop with-postgres -- CMD...`: run a command against a private PostgreSQL cluster.

use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use signal_hook::consts::{SIGINT, SIGTERM};

use crate::embedded_pg::{Durability, EmbeddedPostgres};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep PostgreSQL's default durability (fsync on). Benchmarks use this; tests do not need it.
    #[arg(long)]
    durable: bool,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn run(args: Args) -> ExitCode {
    let (program, rest) = args.command.split_first().expect("clap requires a command");
    if let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) {
        eprintln!("backstop: using DATABASE_URL from the environment");
        return run_child(program, rest, &url, &[]);
    }
    let durability = if args.durable { Durability::Durable } else { Durability::Throwaway };
    let mut pg = match EmbeddedPostgres::start(durability) {
        Ok(pg) => pg,
        Err(e) => {
            eprintln!("backstop: could not start a private PostgreSQL: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Keep running through Ctrl-C / SIGTERM (the child gets them too, being in our process
    // group) so the cluster is always stopped and deleted after the child exits.
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        let _ = signal_hook::flag::register(signal, Arc::clone(&interrupted));
    }
    let url = pg.url("postgres");
    eprintln!("backstop: private PostgreSQL ({durability:?}) at {url}");
    let code = run_child(program, rest, &url, &pg.control_env());
    pg.stop();
    code
}

/// Runs the child with `DATABASE_URL` set and passes its exit code through.
fn run_child(program: &str, args: &[String], url: &str, env: &[(&str, String)]) -> ExitCode {
    let status = Command::new(program).args(args).env("DATABASE_URL", url).envs(env.iter().cloned()).status();
    match status {
        Ok(status) => match status.code() {
            Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            None => {
                eprintln!("backstop: {program} was killed by a signal");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("backstop: could not run {program}: {e}");
            ExitCode::FAILURE
        }
    }
}
