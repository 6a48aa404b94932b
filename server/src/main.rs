//! The `backstop` binary: the console server, the live demo, and a private PostgreSQL for the
//! project's own test and benchmark commands.

mod embedded_pg;
mod with_postgres;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "backstop", version, about = "Durable PostgreSQL jobs, and a console to run them")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a command with `DATABASE_URL` pointing at a private, throwaway PostgreSQL cluster
    /// (or at the existing `DATABASE_URL`, if one is set). The cluster is stopped and deleted
    /// when the command exits; the command's exit code is passed through.
    WithPostgres(with_postgres::Args),
}

fn main() -> std::process::ExitCode {
    init_tracing();
    let cli = Cli::parse();
    match cli.command {
        Command::WithPostgres(args) => with_postgres::run(args),
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
}
