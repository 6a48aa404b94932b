//! The `backstop` binary: the console server, the live demo, and a private PostgreSQL for the
//! project's own test and benchmark commands.

use backstop_console::{alerts, database, demo, group_errors, shutdown, web, with_postgres};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "backstop", version, about = "Durable PostgreSQL jobs, and a console to run them")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the web console for the jobs in `--database-url` (server-rendered Leptos pages,
    /// hydrated in the browser). The site (wasm, JS, CSS) comes from `--site-root`, built by
    /// `scripts/build-site.sh`. Applies Backstop's migrations first.
    Serve {
        #[command(flatten)]
        args: web::ServeArgs,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Run a command with `DATABASE_URL` pointing at a private, throwaway PostgreSQL cluster
    /// (or at the existing `DATABASE_URL`, if one is set). The cluster is stopped and deleted
    /// when the command exits; the command's exit code is passed through.
    WithPostgres(with_postgres::Args),
    /// Group error messages read from stdin, one per line, with the console's error grouper
    /// (learning as it goes, in input order); print each line's group key.
    GroupErrors(group_errors::Args),
    /// After an upgrade: bring error groups from before learned templates into template learning
    /// (each takes its latest error's template, or merges into the older group that already
    /// has it; ids, statuses and dead jobs kept). Idempotent; prints progress. Applies
    /// Backstop's migrations first.
    Regroup {
        /// Groups per transaction.
        #[arg(long, default_value_t = 500)]
        batch: i64,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// A live demo: workers processing welcome emails, card charges and a flaky webhook, with
    /// retries and dead letters, printing progress, and the console serving it. Uses
    /// `--database-url` (or `DATABASE_URL`), else a private PostgreSQL started for the demo.
    Demo {
        #[command(flatten)]
        args: demo::Args,
        #[command(flatten)]
        console: web::ServeArgs,
        /// Run the workload only, without the console.
        #[arg(long)]
        no_console: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Debug, clap::Args)]
struct DatabaseArgs {
    /// PostgreSQL URL. Without it, a private cluster is started and deleted on exit.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The demo prints its own progress; of the log it shows only dead letters and faults.
    let default_log = if matches!(cli.command, Command::Demo { .. }) { "error" } else { "info" };
    init_tracing(default_log);
    alerts::install_tls_provider();
    match cli.command {
        Command::Serve { args, db } => run_async(async move {
            let database = database::connect_or_start(db.database_url, 10).await?;
            web::serve(args, database.pool.clone(), shutdown::on_signal()).await?;
            drop(database); // stops the private cluster, if we started one
            Ok(())
        }),
        Command::WithPostgres(args) => with_postgres::run(args),
        Command::Regroup { batch, db } => run_async(async move {
            let Some(url) = db.database_url else {
                anyhow::bail!("regroup needs --database-url (or DATABASE_URL): the database to regroup");
            };
            let database = database::connect_or_start(Some(url), 2).await?;
            backstop::MIGRATOR.run(&database.pool).await?;
            let done = backstop::triage::regroup(&database.pool, batch, |so_far| {
                eprintln!(
                    "backstop regroup: {} given a template, {} merged, {} left",
                    so_far.given_a_template, so_far.merged, so_far.remaining
                );
            })
            .await?;
            println!(
                "regrouped: {} groups given a template, {} merged into an older group",
                done.given_a_template, done.merged
            );
            Ok(())
        }),
        Command::GroupErrors(args) => match group_errors::run(args) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("backstop: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
        Command::Demo { args, console, no_console, db } => run_async(async move {
            let database = database::connect_or_start(db.database_url, 30).await?;
            let shutdown = shutdown::on_signal();
            let demo = demo::run(args, database.pool.clone(), shutdown.clone());
            if no_console {
                demo.await?;
            } else {
                // The demo migrates first; the console applies the same migrations (a no-op).
                let web = web::serve(console, database.pool.clone(), shutdown.clone());
                let (demo, web) = tokio::join!(demo, async {
                    let result = web.await;
                    shutdown.cancel(); // a console that cannot start stops the demo too
                    result
                });
                demo?;
                web?;
            }
            drop(database); // stops the private cluster, if we started one
            Ok(())
        }),
    }
}

/// Runs an async command on a multi-threaded runtime and turns its error into an exit code.
fn run_async(command: impl std::future::Future<Output = anyhow::Result<()>>) -> std::process::ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("start the Tokio runtime");
    match runtime.block_on(command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("backstop: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing(default: &str) {
    use tracing_subscriber::EnvFilter;
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)))
        .compact()
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    /// clap checks a command's definition only when it parses one: check them all here, so a
    /// clash (two flags of one name in `demo`, which flattens `serve`'s) fails a test, not a run.
    #[test]
    fn every_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
