//! The `dhara` command: serve | worker | indexes | seed | openapi.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use dhara::{db, telemetry, AppState, Config};

/// mimalloc, not glibc's malloc: each argon2id hash allocates a 19 MiB block, and glibc keeps
/// such blocks in per-thread arenas after the first is freed (hundreds of MB after a burst of
/// sign-ins); mimalloc returns them to the system (README, "Memory").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "dhara",
    version,
    about = "Booking and practice backend for therapists"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API (and the background worker unless `worker.enabled = false`).
    Serve {
        /// Do not run the background worker in this process.
        #[arg(long)]
        no_worker: bool,
    },
    /// Run the background worker alone.
    Worker,
    /// Apply indexes/ to the database and report what differs.
    Indexes {
        /// Drop and recreate indexes whose stored definition differs from the declaration.
        #[arg(long)]
        replace_changed: bool,
    },
    /// Load a demo practice into the database (therapists demo.therapistN@dhara.local).
    Seed {
        /// How many therapists.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
        therapists: u32,
        /// Clients per therapist.
        #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=200))]
        clients: u32,
        /// Months of history (plus one month ahead).
        #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=36))]
        months: u32,
        /// Random seed: the same seed gives the same practice.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Password of the demo therapists.
        #[arg(long, default_value = "demo-password")]
        password: String,
    },
    /// Print the OpenAPI 3.1 document of the API (what `/api/openapi.json` serves) and exit.
    Openapi,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Openapi = cli.command {
        println!("{}", dhara::openapi::document_json());
        return ExitCode::SUCCESS;
    }
    let mut config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dhara: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log);
    let result = match cli.command {
        Command::Serve { no_worker } => {
            config.worker.enabled &= !no_worker;
            serve(config).await
        }
        Command::Worker => worker(config).await,
        Command::Indexes { replace_changed } => return indexes(config, replace_changed).await,
        Command::Seed {
            therapists,
            clients,
            months,
            seed,
            password,
        } => {
            let opts = dhara::seed::SeedOptions {
                therapists,
                clients,
                months,
                seed,
                password,
            };
            seed_command(config, opts).await
        }
        Command::Openapi => unreachable!("answered before the configuration is loaded"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "fatal");
            eprintln!("dhara: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A token cancelled on SIGTERM or Ctrl-C.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    trigger.cancel();
                    return;
                }
            };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested; draining in-flight requests");
        trigger.cancel();
    });
    token
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let addr = format!("{}:{}", config.http.host, config.http.port);
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    tracing::info!(%addr, env = %config.env, "dhara listening");
    dhara::run(config, listener, shutdown_on_signal()).await
}

async fn worker(config: Config) -> anyhow::Result<()> {
    let shutdown = shutdown_on_signal();
    let declared = db::indexes::declared()?;
    let state = AppState::build(config, shutdown).await?;
    // Keeps checking the indexes for as long as the worker runs (the worker waits for them).
    tokio::spawn(dhara::sync_indexes_until_done(state.clone(), declared));
    let port = state.config.worker.metrics_port;
    if port != 0 {
        // Its own metrics (emails sent, reminder lag, queue depth) for Prometheus to scrape.
        let addr = format!("{}:{port}", state.config.http.host);
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|e| anyhow::anyhow!("worker.metrics_port: cannot listen on {addr}: {e}"))?;
        tracing::info!(%addr, "worker metrics listening");
        let routes = dhara::ops::routes().with_state(state.clone());
        let stop = state.shutdown.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, routes).with_graceful_shutdown(stop.cancelled_owned());
            if let Err(e) = served.await {
                tracing::warn!(error = %e, "worker metrics listener stopped");
            }
        });
    }
    dhara::worker::run(state).await;
    Ok(())
}

async fn indexes(config: Config, replace_changed: bool) -> ExitCode {
    let outcome = async {
        let declared = db::indexes::declared()?;
        let state = AppState::build(config, CancellationToken::new()).await?;
        db::indexes::sync(state.db.primary(), &declared, replace_changed).await
    }
    .await;
    match outcome {
        Ok(report) => {
            print!("{report}");
            if report.has_drift() {
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("dhara indexes: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn seed_command(config: Config, opts: dhara::seed::SeedOptions) -> anyhow::Result<()> {
    let declared = db::indexes::declared()?;
    let state = AppState::build(config, CancellationToken::new()).await?;
    // Unique indexes first: the demo data relies on them like live data does.
    db::indexes::sync(state.db.primary(), &declared, false).await?;
    let report = dhara::seed::seed(&state, &opts).await?;
    let left = state.cache.drain(std::time::Duration::from_secs(5)).await;
    if left > 0 {
        eprintln!("warning: {left} cache invalidations did not reach Redis; running instances show the seeded practices when their cache TTLs pass");
    }
    for email in &report.skipped {
        println!("skipped {email}: already present");
    }
    println!(
        "seeded {} therapist(s), {} clients, {} bookings, {} payments, {} reviews",
        report.therapists.len(),
        report.clients,
        report.bookings,
        report.payments,
        report.reviews
    );
    for email in &report.therapists {
        println!("  sign in as {email} / {}", opts.password);
    }
    Ok(())
}
