//! Read throughput with and without the response cache (issue 11, item 6). A benchmark, not a
//! test: `cargo bench --bench cache_http`, or `scripts/bench-cache.sh`, which also starts the dev
//! MongoDB-compatible server and Redis. Under `cargo test` (no `--bench` argument) it does nothing.
//!
//! One run: seeds a database of its own (`dhara seed`, one therapist), starts one
//! `dhara serve --no-worker` on loopback with the cache on, then another with
//! `DHARA_CACHE__ENABLED=false`, and for `/health`, `/api/auth/me`, `/api/bookings?limit=20`,
//! `/api/clients?limit=20` and `/api/dashboard` measures requests per second, p50 and p99 with
//! BENCH_CONCURRENCY closed-loop workers, then p99 of an open-loop (paced) run at 80 % of that
//! rate. The database work of the two uncached lists (same filters, sorts, limits and extra
//! lookups, the extractor's account read included) is also run straight through the driver, with
//! as many workers and with one, to measure what the HTTP path adds. Each server's memory (VmRSS,
//! VmHWM) is read before it is killed, and the targets are printed as PASS/MISS. Exits 1 when any
//! request failed or the run itself could not be made; a MISS is a finding, not a failure.
//!
//! Settings (environment): MONGODB_URI, REDIS_URL (default: the local ones of config/default.toml),
//! BENCH_CONCURRENCY (32), BENCH_SECS (5), BENCH_WARMUP_SECS (1), BENCH_SERIAL_SECS (3, the
//! one-worker comparison), BENCH_LOAD_FRACTION (0.8), BENCH_CLIENT_THREADS (threads of this load
//! generator, 1), BENCH_CLIENTS (40) and BENCH_MONTHS (6) for the seed, BENCH_ENDPOINTS
//! (comma-separated paths; `/health` is always run), BENCH_DB_PID (pid of the database server,
//! to report its CPU), DHARA_BIN (another binary). Any other DHARA_* setting in the environment
//! reaches the servers.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Document};
use mongodb::Collection;
use reqwest::header::{HeaderValue, AUTHORIZATION};

const DEMO_EMAIL: &str = "demo.therapist1@dhara.local";
const DEMO_PASSWORD: &str = "demo-password";
/// The server's `mongodb.max_pool_size` default; the driver comparison uses the same.
const POOL_SIZE: u32 = 20;
const ENDPOINTS: [&str; 5] = [
    "/health",
    "/api/auth/me",
    "/api/bookings?limit=20",
    "/api/clients?limit=20",
    "/api/dashboard",
];
/// Targets of issue 11.
const MIN_CACHED_RATIO: f64 = 0.5;
const MAX_P99_MS: f64 = 50.0;
const MAX_RSS_MB: f64 = 64.0;
const MAX_OVERHEAD: f64 = 0.10;

struct Settings {
    bin: PathBuf,
    mongo_uri: String,
    redis_url: String,
    concurrency: usize,
    secs: f64,
    warmup_secs: f64,
    serial_secs: f64,
    fraction: f64,
    client_threads: usize,
    clients: u32,
    months: u32,
    endpoints: Vec<String>,
    db_pid: Option<u32>,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| anyhow!("{name}={v} is not valid")),
        _ => Ok(default),
    }
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let mut endpoints: Vec<String> = match std::env::var("BENCH_ENDPOINTS") {
            Ok(list) if !list.trim().is_empty() => list
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            _ => ENDPOINTS.iter().map(|s| s.to_string()).collect(),
        };
        endpoints.retain(|e| e != "/health");
        endpoints.insert(0, "/health".into());
        let s = Self {
            bin: std::env::var_os("DHARA_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_dhara"))),
            mongo_uri: std::env::var("MONGODB_URI")
                .unwrap_or_else(|_| "mongodb://127.0.0.1:27017/?directConnection=true".into()),
            redis_url: std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
            concurrency: env_or("BENCH_CONCURRENCY", 32)?,
            secs: env_or("BENCH_SECS", 5.0)?,
            warmup_secs: env_or("BENCH_WARMUP_SECS", 1.0)?,
            serial_secs: env_or("BENCH_SERIAL_SECS", 3.0)?,
            fraction: env_or("BENCH_LOAD_FRACTION", 0.8)?,
            client_threads: env_or("BENCH_CLIENT_THREADS", 1)?,
            clients: env_or("BENCH_CLIENTS", 40)?,
            months: env_or("BENCH_MONTHS", 6)?,
            endpoints,
            db_pid: std::env::var("BENCH_DB_PID")
                .ok()
                .and_then(|p| p.trim().parse().ok()),
        };
        if s.concurrency == 0 || s.secs <= 0.0 || s.serial_secs <= 0.0 || s.client_threads == 0 {
            bail!(
                "BENCH_CONCURRENCY, BENCH_SECS, BENCH_SERIAL_SECS and BENCH_CLIENT_THREADS must be positive"
            );
        }
        if !(s.fraction > 0.0 && s.fraction <= 1.0) {
            bail!("BENCH_LOAD_FRACTION must be in (0, 1]");
        }
        Ok(s)
    }
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it.
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "cache_http: benchmark skipped (run `cargo bench --bench cache_http` or scripts/bench-cache.sh)"
        );
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bench: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.client_threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(bench_main(settings))
}

async fn bench_main(s: Settings) -> ExitCode {
    let id = format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff);
    let database = format!("bench_{id}");
    let prefix = format!("bench:{id}:");
    let work = std::env::temp_dir().join(format!("dhara-bench-cache-{id}"));
    let outcome = tokio::select! {
        r = run(&s, &id, &database, &prefix, &work) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    // Every server was dropped (killed) with the future above; now the data.
    cleanup(&s, &database, &prefix, &work).await;
    match outcome {
        Ok(0) => ExitCode::SUCCESS,
        Ok(errors) => {
            eprintln!("bench: {errors} request(s) failed (see the errors column); exit 1");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn cleanup(s: &Settings, database: &str, prefix: &str, work: &Path) {
    let dropped = async {
        let client = mongodb::Client::with_uri_str(&s.mongo_uri).await?;
        client.database(database).drop().await
    };
    match tokio::time::timeout(Duration::from_secs(60), dropped).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("bench: could not drop database {database}: {e}"),
        Err(_) => eprintln!("bench: dropping database {database} timed out; drop it by hand"),
    }
    if !s.redis_url.is_empty() {
        let deleted = async {
            let client = redis::Client::open(s.redis_url.as_str())?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(format!("{prefix}*"))
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await?;
                if !keys.is_empty() {
                    redis::cmd("DEL").arg(&keys).query_async::<()>(&mut conn).await?;
                }
                if next == 0 {
                    return Ok::<_, redis::RedisError>(());
                }
                cursor = next;
            }
        };
        match tokio::time::timeout(Duration::from_secs(30), deleted).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("bench: could not delete Redis keys {prefix}*: {e}"),
            Err(_) => eprintln!("bench: deleting Redis keys {prefix}* timed out"),
        }
    }
    let _ = std::fs::remove_dir_all(work);
}

/// Progress, on stderr (the report is on stdout).
macro_rules! progress {
    ($($arg:tt)*) => { eprintln!("bench: {}", format!($($arg)*)) };
}

/// The whole run; the number of failed requests.
async fn run(s: &Settings, id: &str, database: &str, prefix: &str, work: &Path) -> anyhow::Result<u64> {
    std::fs::create_dir_all(work).with_context(|| format!("cannot create {}", work.display()))?;
    print_machine(s).await;

    let mut base_env: Vec<(String, String)> = vec![
        ("DHARA_ENV".into(), "development".into()),
        ("MONGODB_URI".into(), s.mongo_uri.clone()),
        ("MONGODB_DATABASE".into(), database.into()),
        ("REDIS_URL".into(), s.redis_url.clone()),
        ("JWT_SECRET".into(), format!("bench-cache-secret-{id}-{id}-{id}")),
        (
            "DHARA_MAIL__FILE_DIR".into(),
            work.join("mail").display().to_string(),
        ),
        (
            "RUST_LOG".into(),
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        ),
    ];
    // What would throttle a benchmark, raised for this run only.
    let mut raised: Vec<(String, String, &str)> = vec![
        (
            "DHARA_RATE_LIMIT__LOGIN_IP__MAX".into(),
            "100000".into(),
            "30/min",
        ),
        (
            "DHARA_RATE_LIMIT__LOGIN_ACCOUNT__MAX".into(),
            "100000".into(),
            "10/15 min",
        ),
        (
            "DHARA_RATE_LIMIT__LOCKOUT__MAX".into(),
            "100000".into(),
            "5 failures",
        ),
    ];
    let in_flight = (s.concurrency * 4).max(500);
    if in_flight > 500 {
        raised.push(("DHARA_HTTP__MAX_IN_FLIGHT".into(), in_flight.to_string(), "500"));
    }
    println!("settings raised for the bench servers only (defaults in brackets):");
    for (k, v, default) in &raised {
        println!("  {k}={v} [{default}]");
        base_env.push((k.clone(), v.clone()));
    }
    println!(
        "  (the read routes measured have no per-user or per-IP limit; admission \
         http.max_in_flight={in_flight} >= 4 x concurrency, mongodb.max_pool_size={POOL_SIZE} kept)"
    );
    println!(
        "load: {} closed-loop workers, {:.1} s per run after {:.1} s warm-up, then an open-loop run at {:.0} % \
         of the measured rate; load generator on {} thread(s), one keep-alive HTTP/1.1 client",
        s.concurrency,
        s.secs,
        s.warmup_secs,
        s.fraction * 100.0,
        s.client_threads
    );
    println!();

    progress!(
        "seeding database {database} (1 therapist, {} clients, {} months)",
        s.clients,
        s.months
    );
    let seeded_in = Instant::now();
    let seed = tokio::process::Command::new(&s.bin)
        .args(["seed", "--therapists", "1"])
        .args([
            "--clients",
            &s.clients.to_string(),
            "--months",
            &s.months.to_string(),
        ])
        .envs(base_env.iter().cloned())
        .env("DHARA_REDIS__PREFIX", format!("{prefix}seed:"))
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run {} seed", s.bin.display()))?;
    let seed_out = String::from_utf8_lossy(&seed.stdout);
    if !seed.status.success() {
        bail!(
            "dhara seed failed ({}):\n{}{}",
            seed.status,
            seed_out,
            String::from_utf8_lossy(&seed.stderr)
        );
    }
    let summary = seed_out.lines().next().unwrap_or("").trim().to_owned();
    println!("data: {summary} ({:.1} s)", seeded_in.elapsed().as_secs_f64());

    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(usize::MAX)
        .timeout(Duration::from_secs(60))
        .build()
        .context("cannot build the HTTP client")?;

    // The driver comparison runs right after its uncached HTTP endpoint, so that both see the
    // same machine (other work on it moves the figures).
    let driver = DriverCtx::connect(&s.mongo_uri, database).await?;
    let driver_queries = [
        ("/api/bookings?limit=20", DriverQuery::Bookings),
        ("/api/clients?limit=20", DriverQuery::Clients),
    ];
    let mut rows: Vec<Row> = Vec::new();
    let mut memory: Vec<(Mode, Memory)> = Vec::new();
    let mut driver_rows: Vec<DriverRow> = Vec::new();
    for mode in [Mode::Cached, Mode::Uncached] {
        let mut env = base_env.clone();
        env.push(("DHARA_CACHE__ENABLED".into(), mode.enabled().into()));
        env.push(("DHARA_REDIS__PREFIX".into(), format!("{prefix}{}:", mode.name())));
        let mut server = Server::start(s, mode, &env, work)?;
        server.wait_ready(&http, !s.redis_url.is_empty()).await?;
        let ready_rss = server.memory_mb("VmRSS");
        let token = login(&http, &server.base).await?;
        let login_hwm = server.memory_mb("VmHWM");
        for path in &s.endpoints {
            let auth = path.starts_with("/api/").then(|| token.clone());
            let target = Target {
                client: http.clone(),
                url: Arc::from(format!("{}{path}", server.base)),
                auth,
            };
            progress!("{} {path}", mode.name());
            let row = measure_endpoint(s, &server, mode, path, target.clone()).await?;
            rows.push(row);
            let Some((_, query)) = driver_queries.iter().find(|(p, _)| p == path) else {
                continue;
            };
            if mode == Mode::Uncached {
                progress!("driver {path}");
                let saturated = measure_driver(s, &driver, *query).await?;
                progress!("{} {path} and driver, one worker, interleaved", mode.name());
                let (http_serial, serial) = compare_serial(s, &target, &driver, *query).await;
                driver_rows.push(DriverRow {
                    path: path.clone(),
                    saturated,
                    serial,
                    http_serial,
                });
            }
        }
        if mode == Mode::Cached {
            if let Ok(text) = scrape(&http, &server.base).await {
                let show = |name: &str| {
                    let parts: Vec<String> = metric_by_label(&text, name)
                        .into_iter()
                        .map(|(labels, v)| format!("{labels} {v}"))
                        .collect();
                    parts.join(", ")
                };
                println!(
                    "cache counters after the cached run: hits {}; misses {}",
                    show("cache_hits_total"),
                    show("cache_misses_total")
                );
            }
        }
        memory.push((
            mode,
            Memory {
                ready_rss,
                login_hwm,
                end_rss: server.memory_mb("VmRSS"),
                peak: server.memory_mb("VmHWM"),
            },
        ));
        server.stop().await;
    }

    Ok(report(s, &rows, &memory, &driver_rows))
}

/// The database work of an uncached list through the driver alone, like an endpoint's run.
async fn measure_driver(
    s: &Settings,
    driver: &Arc<DriverCtx>,
    query: DriverQuery,
) -> anyhow::Result<Measure> {
    driver
        .run(query)
        .await
        .map_err(|e| anyhow!("the driver's version of the query failed: {e}"))?;
    let op = driver_op(driver, query);
    closed_loop(s.concurrency, secs(s.warmup_secs), op.clone(), None).await;
    Ok(closed_loop(s.concurrency, secs(s.secs), op, Some((None, s.db_pid))).await)
}

/// A request's future, boxed (the driver's operation as a nameable type).
type BoxedRun = std::pin::Pin<Box<dyn Future<Output = Result<usize, String>> + Send>>;

fn driver_op(driver: &Arc<DriverCtx>, query: DriverQuery) -> Arc<impl Fn() -> BoxedRun + Send + Sync> {
    let ctx = driver.clone();
    Arc::new(move || {
        let ctx = ctx.clone();
        Box::pin(async move { ctx.run(query).await.map_err(|e| e.to_string()) }) as BoxedRun
    })
}

/// What one request costs without queueing: one worker through HTTP, then one through the
/// driver, alternating in short slices over BENCH_SERIAL_SECS each, so that both see the same
/// machine (other work on it moves single runs by tens of percent).
async fn compare_serial(
    s: &Settings,
    target: &Target,
    driver: &Arc<DriverCtx>,
    query: DriverQuery,
) -> (Measure, Measure) {
    const SLICES: u32 = 6;
    let slice = secs(s.serial_secs) / SLICES;
    let t = target.clone();
    let http = Arc::new(move || {
        let t = t.clone();
        async move { t.hit().await }
    });
    let db = driver_op(driver, query);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..SLICES {
        a.push(closed_loop(1, slice, http.clone(), None).await);
        b.push(closed_loop(1, slice, db.clone(), None).await);
    }
    (combine(a), combine(b))
}

/// Several runs as one.
fn combine(runs: Vec<Measure>) -> Measure {
    let elapsed = runs.iter().map(|m| m.elapsed).sum();
    let parts = runs
        .into_iter()
        .map(|m| (m.latencies, m.errors, m.first_error))
        .collect();
    merge(parts, elapsed, None)
}

/// An uncached list against the driver alone (the HTTP figures at full concurrency are in
/// its table row).
struct DriverRow {
    path: String,
    saturated: Measure,
    serial: Measure,
    http_serial: Measure,
}

/// A server's memory (MB, NaN when unreadable): after `/ready`, peak after the one sign-in
/// (an argon2id hash takes a 19 MiB block), at the end, and the peak of the whole run.
struct Memory {
    ready_rss: f64,
    login_hwm: f64,
    end_rss: f64,
    peak: f64,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Cached,
    Uncached,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Cached => "cached",
            Mode::Uncached => "uncached",
        }
    }
    fn enabled(self) -> &'static str {
        match self {
            Mode::Cached => "true",
            Mode::Uncached => "false",
        }
    }
}

/// One `dhara serve --no-worker`; killed when dropped (also on panic or Ctrl-C).
struct Server {
    child: tokio::process::Child,
    pid: u32,
    base: String,
    log: PathBuf,
}

impl Server {
    fn start(s: &Settings, mode: Mode, env: &[(String, String)], work: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let log = work.join(format!("server-{}.log", mode.name()));
        let out = std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone()?;
        let child = tokio::process::Command::new(&s.bin)
            .args(["serve", "--no-worker"])
            .envs(env.iter().cloned())
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", s.bin.display()))?;
        let pid = child.id().ok_or_else(|| anyhow!("the server exited at once"))?;
        progress!("{} server pid {pid} on 127.0.0.1:{port}", mode.name());
        Ok(Self {
            child,
            pid,
            base: format!("http://127.0.0.1:{port}"),
            log,
        })
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Until `/ready` answers 200 (and Redis is up when configured), at most 60 s.
    async fn wait_ready(&mut self, http: &reqwest::Client, want_redis: bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last: String;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "the server exited ({status}) before it was ready; log:\n{}",
                    self.log_tail()
                );
            }
            match http
                .get(format!("{}/ready", self.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                Ok(r) => {
                    let status = r.status();
                    let body = r.text().await.unwrap_or_default();
                    if status.is_success() && (!want_redis || body.contains("\"redis\":\"up\"")) {
                        return Ok(());
                    }
                    last = format!("{status} {body}");
                }
                Err(e) => last = e.to_string(),
            }
            if Instant::now() > deadline {
                bail!(
                    "the server was not ready within 60 s (last: {last}); log:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `field` (VmRSS, VmHWM) of /proc/<pid>/status in MB; NaN when unreadable.
    fn memory_mb(&self, field: &str) -> f64 {
        let read = || {
            let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
            let line = status
                .lines()
                .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
            let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb / 1024.0)
        };
        read().unwrap_or(f64::NAN)
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

async fn login(http: &reqwest::Client, base: &str) -> anyhow::Result<HeaderValue> {
    let r = http
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({ "email": DEMO_EMAIL, "password": DEMO_PASSWORD }))
        .send()
        .await
        .context("login request failed")?;
    let status = r.status();
    let body: serde_json::Value = r.json().await.context("login answer is not JSON")?;
    let token = body
        .get("accessToken")
        .and_then(|t| t.as_str())
        .ok_or_else(|| anyhow!("login answered {status} without accessToken: {body}"))?;
    HeaderValue::from_str(&format!("Bearer {token}")).context("the access token is not a header value")
}

async fn scrape(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    Ok(http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

/// The sum of every series of `name`.
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The series of `name` by their label set.
fn metric_by_label(text: &str, name: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = rest.rsplit_once(' ')?;
            Some((labels.trim().to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// One GET with a shared keep-alive client.
#[derive(Clone)]
struct Target {
    client: reqwest::Client,
    url: Arc<str>,
    auth: Option<HeaderValue>,
}

impl Target {
    /// Any non-2xx answer is an error.
    async fn hit(&self) -> Result<usize, String> {
        let mut req = self.client.get(&*self.url);
        if let Some(a) = &self.auth {
            req = req.header(AUTHORIZATION, a.clone());
        }
        let resp = req.send().await.map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("reading the body failed: {e}"))?;
        if !status.is_success() {
            let excerpt = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(format!("{status}: {excerpt}"));
        }
        Ok(body.len())
    }
}

/// What one run measured.
struct Measure {
    requests: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: f64,
    /// Sorted latencies, microseconds.
    latencies: Vec<u32>,
    cpu: Option<CpuUse>,
}

impl Measure {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.max(1e-9)
    }
    /// Nearest-rank percentile, in ms.
    fn pct(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * self.latencies.len() as f64).ceil() as usize).clamp(1, self.latencies.len());
        f64::from(self.latencies[rank - 1]) / 1000.0
    }
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

type Outcome = (Vec<u32>, u64, Option<String>);

fn merge(parts: Vec<Outcome>, elapsed: f64, cpu: Option<CpuUse>) -> Measure {
    let mut latencies = Vec::new();
    let (mut errors, mut first_error) = (0, None);
    for (l, e, f) in parts {
        latencies.extend(l);
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
    }
    latencies.sort_unstable();
    Measure {
        requests: latencies.len() as u64,
        errors,
        first_error,
        elapsed,
        latencies,
        cpu,
    }
}

/// `concurrency` workers each sending the next request when the last one answered, for `dur`.
/// `cpu`: the server and database pids whose CPU to report (None: no CPU figures).
async fn closed_loop<F, Fut, T>(
    concurrency: usize,
    dur: Duration,
    op: Arc<F>,
    cpu: Option<(Option<u32>, Option<u32>)>,
) -> Measure
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, String>> + Send + 'static,
{
    let before = cpu.map(|(server, db)| CpuTicks::read(server, db));
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let op = op.clone();
        tasks.spawn(async move {
            let mut lat = Vec::with_capacity(4096);
            let (mut errors, mut first) = (0u64, None);
            while Instant::now() < deadline {
                let t = Instant::now();
                let r = op().await;
                lat.push(micros(t.elapsed()));
                if let Err(e) = r {
                    errors += 1;
                    first.get_or_insert(e);
                }
            }
            (lat, errors, first)
        });
    }
    let mut parts = Vec::with_capacity(concurrency);
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(part) => parts.push(part),
            Err(e) => parts.push((Vec::new(), 1, Some(format!("worker failed: {e}")))),
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = before.map(|b| b.until_now(elapsed));
    merge(parts, elapsed, cpu)
}

/// Requests due at a fixed `rate` for `dur`, whatever the answers (open loop), sent by a pool of
/// `senders` tasks; each latency counts from when its request was due, so a stall (or a pool
/// that is all busy) shows in the figures instead of silently sending less. Also the p99 of how
/// late requests were sent (ms) and the most requests outstanding at once: when the lag is most
/// of the latency, the generator was starved of CPU or, with `senders` outstanding, requests
/// queued in it because answers came too slowly.
async fn paced<F, Fut, T>(rate: f64, dur: Duration, senders: usize, op: Arc<F>) -> (Measure, f64, usize)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, String>> + Send + 'static,
{
    let n = (rate * dur.as_secs_f64()).round().max(1.0) as u64;
    let start = Instant::now() + Duration::from_millis(5);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let outstanding = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..senders {
        let (op, next) = (op.clone(), next.clone());
        let (outstanding, most) = (outstanding.clone(), most.clone());
        tasks.spawn(async move {
            let (mut lat, mut lags) = (Vec::with_capacity(1024), Vec::with_capacity(1024));
            let (mut errors, mut first) = (0u64, None);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let due = start + Duration::from_secs_f64(i as f64 / rate);
                if due > Instant::now() {
                    tokio::time::sleep_until(due.into()).await;
                }
                lags.push(micros(due.elapsed()));
                let now = outstanding.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                most.fetch_max(now, std::sync::atomic::Ordering::Relaxed);
                let r = op().await;
                outstanding.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                lat.push(micros(due.elapsed()));
                if let Err(e) = r {
                    errors += 1;
                    first.get_or_insert(e);
                }
            }
            ((lat, errors, first), lags)
        });
    }
    let mut parts = Vec::with_capacity(senders);
    let mut lags = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((part, l)) => {
                parts.push(part);
                lags.extend(l);
            }
            Err(e) => parts.push((Vec::new(), 1, Some(format!("sender failed: {e}")))),
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let lag = merge(vec![(lags, 0, None)], elapsed, None).pct(0.99);
    let most = most.load(std::sync::atomic::Ordering::Relaxed);
    (merge(parts, elapsed, None), lag, most)
}

/// CPU time of the server, this process, the database (if its pid is known) and the machine.
struct CpuTicks {
    server: Option<(u32, u64)>,
    me: u64,
    db: Option<(u32, u64)>,
    total: u64,
    idle: u64,
}

/// Percent of one core (machine: percent of all cores busy).
#[derive(Clone, Copy)]
struct CpuUse {
    server: Option<f64>,
    generator: f64,
    db: Option<f64>,
    /// Everything else on the machine (other processes; the database too without its pid).
    other: f64,
}

/// Clock ticks per second of /proc (USER_HZ, 100 on Linux).
const USER_HZ: f64 = 100.0;

fn proc_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is the 3rd field overall,
    // utime the 14th and stime the 15th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Busy-or-not ticks of all CPUs together (/proc/stat), and how many CPUs they add up.
fn machine_ticks() -> (u64, u64, usize) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpus = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    let Some(line) = stat.lines().next() else {
        return (0, 0, cpus);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total, idle, cpus)
}

impl CpuTicks {
    fn read(server: Option<u32>, db: Option<u32>) -> Self {
        let (total, idle, _) = machine_ticks();
        Self {
            server: server.and_then(|p| Some((p, proc_ticks(&p.to_string())?))),
            me: proc_ticks("self").unwrap_or(0),
            db: db.and_then(|p| Some((p, proc_ticks(&p.to_string())?))),
            total,
            idle,
        }
    }

    fn until_now(&self, elapsed: f64) -> CpuUse {
        let pct = |ticks: u64| ticks as f64 / USER_HZ / elapsed * 100.0;
        let of = |then: Option<(u32, u64)>| {
            then.and_then(|(pid, t)| Some(pct(proc_ticks(&pid.to_string())?.saturating_sub(t))))
        };
        let (total, idle, cpus) = machine_ticks();
        let (dt, di) = (total.saturating_sub(self.total), idle.saturating_sub(self.idle));
        let busy = if dt == 0 {
            0.0
        } else {
            (dt - di.min(dt)) as f64 / dt as f64
        };
        let (server, generator, db) = (
            of(self.server),
            pct(proc_ticks("self").unwrap_or(0).saturating_sub(self.me)),
            of(self.db),
        );
        let other = busy * cpus as f64 * 100.0 - server.unwrap_or(0.0) - generator - db.unwrap_or(0.0);
        CpuUse {
            server,
            generator,
            db,
            other: other.max(0.0),
        }
    }
}

/// One line of the table.
struct Row {
    path: String,
    mode: Mode,
    saturated: Measure,
    at_fraction: Measure,
    /// p99 of how late the open-loop run sent its requests, ms.
    send_lag_p99: f64,
    /// Whether every sender of the open-loop run was waiting for an answer at some point (the
    /// server fell behind, or the generator was starved of CPU: the lag is then a queue).
    senders_exhausted: bool,
    body_bytes: usize,
    /// MongoDB commands and cache hits per request, from /metrics around the closed-loop run.
    db_per_req: f64,
    hits_per_req: f64,
    /// Redis round trips reading cache generations per request.
    gens_per_req: f64,
}

async fn measure_endpoint(
    s: &Settings,
    server: &Server,
    mode: Mode,
    path: &str,
    target: Target,
) -> anyhow::Result<Row> {
    let body_bytes = target
        .hit()
        .await
        .map_err(|e| anyhow!("{} GET {path} (first request) failed: {e}", mode.name()))?;
    let t = target.clone();
    let op = Arc::new(move || {
        let t = t.clone();
        async move { t.hit().await }
    });
    closed_loop(s.concurrency, secs(s.warmup_secs), op.clone(), None).await;
    let before = scrape(&target.client, &server.base).await.unwrap_or_default();
    let saturated = closed_loop(
        s.concurrency,
        secs(s.secs),
        op.clone(),
        Some((Some(server.pid), s.db_pid)),
    )
    .await;
    let after = scrape(&target.client, &server.base).await.unwrap_or_default();
    let per_req = |name: &str| {
        (metric_sum(&after, name) - metric_sum(&before, name)) / (saturated.requests.max(1) as f64)
    };
    let (db_per_req, hits_per_req) = (per_req("mongodb_queries_total"), per_req("cache_hits_total"));
    let gens_per_req = per_req("cache_generation_reads_total");
    let rate = saturated.rps() * s.fraction;
    let senders = s.concurrency * 4;
    let (at_fraction, send_lag_p99, most) = paced(rate, secs(s.secs), senders, op).await;
    Ok(Row {
        path: path.to_owned(),
        mode,
        saturated,
        at_fraction,
        send_lag_p99,
        senders_exhausted: most >= senders,
        body_bytes,
        db_per_req,
        hits_per_req,
        gens_per_req,
    })
}

/// The database work of the uncached list routes, through the driver alone.
#[derive(Clone, Copy)]
enum DriverQuery {
    Bookings,
    Clients,
}

#[derive(Clone)]
struct DriverCtx {
    therapist: ObjectId,
    users: Collection<Document>,
    bookings: Collection<Document>,
    clients: Collection<Document>,
    reviews: Collection<Document>,
}

impl DriverCtx {
    async fn connect(uri: &str, database: &str) -> anyhow::Result<Arc<Self>> {
        let mut options = mongodb::options::ClientOptions::parse(uri)
            .await
            .context("MONGODB_URI could not be parsed")?;
        options.app_name = Some("dhara-bench".into());
        options.max_pool_size = Some(POOL_SIZE);
        let client = mongodb::Client::with_options(options)?;
        let db = client.database(database);
        let users: Collection<Document> = db.collection("users");
        let therapist = users
            .find_one(doc! { "email": DEMO_EMAIL })
            .await
            .context("driver: reading the demo therapist failed")?
            .and_then(|u| u.get_object_id("_id").ok())
            .ok_or_else(|| anyhow!("driver: no user {DEMO_EMAIL} in {database}"))?;
        Ok(Arc::new(Self {
            therapist,
            users,
            bookings: db.collection("bookings"),
            clients: db.collection("clients"),
            reviews: db.collection("reviews"),
        }))
    }

    async fn run(&self, q: DriverQuery) -> mongodb::error::Result<usize> {
        // `auth::extract`: the account's role and last password change, on every request.
        self.users
            .find_one(doc! { "_id": self.therapist })
            .projection(doc! { "role": 1, "passwordChangedAt": 1 })
            .await?;
        match q {
            DriverQuery::Bookings => self.bookings_page().await,
            DriverQuery::Clients => self.clients_page().await,
        }
    }

    /// `bookings::list::list_page` for `?limit=20`: total, 21 newest by (startsAt, _id), and
    /// the clients of the 20 shown in one `$in` read (`ClientStore::summaries`).
    async fn bookings_page(&self) -> mongodb::error::Result<usize> {
        let filter = doc! { "therapistId": self.therapist };
        let _total = self.bookings.count_documents(filter.clone()).await?;
        let items: Vec<Document> = self
            .bookings
            .find(filter)
            .sort(doc! { "startsAt": -1, "_id": -1 })
            .skip(0)
            .limit(21)
            .await?
            .try_collect()
            .await?;
        let mut ids: Vec<ObjectId> = items
            .iter()
            .take(20)
            .filter_map(|b| b.get_object_id("clientId").ok())
            .collect();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return Ok(items.len());
        }
        let clients: Vec<Document> = self
            .clients
            .find(doc! { "_id": { "$in": ids } })
            .projection(doc! { "name": 1, "email": 1, "phone": 1, "avatar": 1 })
            .await?
            .try_collect()
            .await?;
        Ok(items.len() + clients.len())
    }

    /// `dashboard::clients::list_page` for `?limit=20`: total, 21 newest by (createdAt, _id),
    /// then each shown client's completed sessions and average rating, two aggregations at once.
    async fn clients_page(&self) -> mongodb::error::Result<usize> {
        let filter = doc! { "therapistId": self.therapist };
        let _total = self.clients.count_documents(filter.clone()).await?;
        let items: Vec<Document> = self
            .clients
            .find(filter)
            .sort(doc! { "createdAt": -1, "_id": -1 })
            .skip(0)
            .limit(21)
            .await?
            .try_collect()
            .await?;
        let ids: Vec<ObjectId> = items
            .iter()
            .take(20)
            .filter_map(|c| c.get_object_id("_id").ok())
            .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let sessions = async {
            let pipeline = vec![
                doc! { "$match": { "clientId": { "$in": ids.clone() }, "status": "completed" } },
                doc! { "$group": { "_id": "$clientId", "last": { "$max": "$startsAt" }, "n": { "$sum": 1 } } },
            ];
            self.bookings
                .aggregate(pipeline)
                .await?
                .try_collect::<Vec<Document>>()
                .await
        };
        let ratings = async {
            let pipeline = vec![
                doc! { "$match": { "clientId": { "$in": ids.clone() } } },
                doc! { "$group": { "_id": "$clientId", "avg": { "$avg": "$rating" } } },
            ];
            self.reviews
                .aggregate(pipeline)
                .await?
                .try_collect::<Vec<Document>>()
                .await
        };
        let (a, b) = tokio::try_join!(sessions, ratings)?;
        Ok(items.len() + a.len() + b.len())
    }
}

async fn print_machine(s: &Settings) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown", |(_, m)| m.trim());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mem_gb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(f64::NAN, |kb| kb / 1024.0 / 1024.0);
    println!("== dhara cache benchmark (issue 11) ==");
    println!(
        "machine: {cores} cores ({model}), {mem_gb:.1} GiB, kernel {}",
        kernel.trim()
    );
    println!("binary: {}", s.bin.display());
    let version = async {
        let client = mongodb::Client::with_uri_str(&s.mongo_uri).await?;
        client
            .database("admin")
            .run_command(doc! { "buildInfo": 1 })
            .await
    };
    let db = match tokio::time::timeout(Duration::from_secs(10), version).await {
        Ok(Ok(info)) => format!("version {}", info.get_str("version").unwrap_or("?")),
        Ok(Err(e)) => format!("buildInfo failed: {e}"),
        Err(_) => "no answer to buildInfo".into(),
    };
    println!("database: {} ({db})", redact(&s.mongo_uri));
    println!(
        "redis: {}",
        if s.redis_url.is_empty() {
            "none".to_owned()
        } else {
            redact(&s.redis_url)
        }
    );
}

/// A URL without its credentials.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}***{}", &url[..scheme + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

fn fmt_cpu(c: Option<CpuUse>) -> String {
    let Some(c) = c else {
        return "-".into();
    };
    let opt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
    format!(
        "{}/{:.0}/{}/{:.0}",
        opt(c.server),
        c.generator,
        opt(c.db),
        c.other
    )
}

fn pass(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

/// Prints the report; the number of failed requests.
fn report(s: &Settings, rows: &[Row], memory: &[(Mode, Memory)], driver: &[DriverRow]) -> u64 {
    let health = |mode: Mode| {
        rows.iter()
            .find(|r| r.mode == mode && r.path == "/health")
            .map_or(f64::NAN, |r| r.saturated.rps())
    };
    println!();
    println!(
        "closed loop: {} workers for {:.1} s; @{:.0}%: open loop at {:.0} % of that rps for {:.1} s, \
         latency from when each request was due; lag99: p99 of how late the generator sent them (ms; \
         * when all {} senders were waiting for answers at once, so requests queued in the generator: the \
         server fell behind, or with the generator's cpu high, the two starved each other)",
        s.concurrency,
        s.secs,
        s.fraction * 100.0,
        s.fraction * 100.0,
        s.secs,
        s.concurrency * 4
    );
    println!(
        "cpu: % of one core used by server/generator/db/other during the closed-loop run (db '-' without \
         BENCH_DB_PID, then in other; other: anything else on the machine)"
    );
    println!(
        "{:<24} {:<8} {:>8} {:>7} {:>7} {:>8} {:>9} {:>7} {:>7} {:>6} {:>6} {:>6} {:>7} {:>6}  cpu",
        "endpoint",
        "mode",
        "rps",
        "p50 ms",
        "p99 ms",
        format!("@{:.0}% rps", s.fraction * 100.0),
        format!("p99@{:.0} ms", s.fraction * 100.0),
        "lag99",
        "/health",
        "errors",
        "db q/r",
        "gen/r",
        "hits/r",
        "bytes"
    );
    let mut errors = 0;
    for r in rows {
        let e = r.saturated.errors + r.at_fraction.errors;
        errors += e;
        println!(
            "{:<24} {:<8} {:>8.0} {:>7.2} {:>7.2} {:>8.0} {:>9.2} {:>7} {:>7.3} {:>6} {:>6.2} {:>6.2} {:>7.2} {:>6}  {}",
            r.path,
            r.mode.name(),
            r.saturated.rps(),
            r.saturated.pct(0.5),
            r.saturated.pct(0.99),
            r.at_fraction.rps(),
            r.at_fraction.pct(0.99),
            format!(
                "{:.2}{}",
                r.send_lag_p99,
                if r.senders_exhausted { "*" } else { "" }
            ),
            r.saturated.rps() / health(r.mode),
            e,
            r.db_per_req,
            r.gens_per_req,
            r.hits_per_req,
            r.body_bytes,
            fmt_cpu(r.saturated.cpu)
        );
    }
    for r in rows {
        for m in [&r.saturated, &r.at_fraction] {
            if let Some(first) = &m.first_error {
                println!("  error on {} {}: {first}", r.path, r.mode.name());
            }
        }
    }

    let row = |path: &str, mode: Mode| rows.iter().find(|r| r.path == path && r.mode == mode);
    // (path, workers, http / driver throughput - 1, http p50 / driver p50 - 1)
    let mut overheads: Vec<(String, usize, f64, f64)> = Vec::new();
    if !driver.is_empty() {
        println!();
        println!(
            "raw driver vs uncached HTTP (the same database work, the account check included; driver pool \
             {POOL_SIZE} like the server's):"
        );
        println!(
            "{:<24} {:>7} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} | {:>8} {:>8}  driver cpu",
            "query",
            "workers",
            "drv rps",
            "p50 ms",
            "p99 ms",
            "http rps",
            "p50 ms",
            "p99 ms",
            "rps cost",
            "p50 cost"
        );
        for d in driver {
            let Some(h) = row(&d.path, Mode::Uncached) else {
                continue;
            };
            for (workers, m, http) in [
                (s.concurrency, &d.saturated, &h.saturated),
                (1, &d.serial, &d.http_serial),
            ] {
                errors += m.errors;
                if workers == 1 {
                    errors += http.errors;
                }
                let rps_cost = m.rps() / http.rps() - 1.0;
                let p50_cost = http.pct(0.5) / m.pct(0.5) - 1.0;
                overheads.push((d.path.clone(), workers, rps_cost, p50_cost));
                println!(
                    "{:<24} {:>7} | {:>8.1} {:>8.2} {:>8.2} | {:>8.1} {:>8.2} {:>8.2} | {:>+7.1}% {:>+7.1}%  {}",
                    d.path,
                    workers,
                    m.rps(),
                    m.pct(0.5),
                    m.pct(0.99),
                    http.rps(),
                    http.pct(0.5),
                    http.pct(0.99),
                    rps_cost * 100.0,
                    p50_cost * 100.0,
                    fmt_cpu(m.cpu)
                );
                for (who, x) in [("driver", m), ("http", http)] {
                    if let Some(first) = &x.first_error {
                        println!(
                            "  error on {who} {} ({workers} workers): {first} ({} errors)",
                            d.path, x.errors
                        );
                    }
                }
            }
        }
        println!(
            "  rps cost: driver rps / http rps - 1; p50 cost: http p50 / driver p50 - 1 (what the HTTP path adds)"
        );
        let db_bound = driver
            .iter()
            .any(|d| d.saturated.cpu.and_then(|c| c.db).is_some_and(|db| db >= 90.0));
        if db_bound {
            println!(
                "  with {} workers both runs keep the database busy (its cpu >= 90 %): they measure the database \
                 twice, one after the other, so the difference there is mostly how the machine changed; the \
                 one-worker rows alternate HTTP and driver in short slices",
                s.concurrency
            );
        }
    }

    println!();
    println!("memory of each server (MB): RSS once ready, peak after its one sign-in, RSS at the end, peak (VmHWM)");
    for (mode, m) in memory {
        println!(
            "  {:<8} ready {:.1}, after sign-in peak {:.1}, end {:.1}, peak {:.1}",
            mode.name(),
            m.ready_rss,
            m.login_hwm,
            m.end_rss,
            m.peak
        );
    }

    println!();
    println!("targets (one instance):");
    let cached: Vec<&Row> = rows
        .iter()
        .filter(|r| r.mode == Mode::Cached && r.path != "/health")
        .collect();
    for r in &cached {
        let ratio = r.saturated.rps() / health(Mode::Cached);
        println!(
            "  {} cached {} >= {:.0} % of /health rps: {:.1} %{}",
            pass(ratio >= MIN_CACHED_RATIO),
            r.path,
            MIN_CACHED_RATIO * 100.0,
            ratio * 100.0,
            if r.hits_per_req < 0.5 {
                " (not served from the cache: hits/r ~ 0)"
            } else {
                ""
            }
        );
    }
    for mode in [Mode::Cached, Mode::Uncached] {
        let over: Vec<String> = rows
            .iter()
            .filter(|r| {
                let p99 = r.at_fraction.pct(0.99);
                r.mode == mode && (p99.is_nan() || p99 >= MAX_P99_MS)
            })
            .map(|r| {
                let p99 = r.at_fraction.pct(0.99);
                // Most of it spent before the request was even sent: the generator was behind.
                let late = if r.senders_exhausted {
                    format!(
                        " (all senders were busy, lag {:.1}: see the * of the table)",
                        r.send_lag_p99
                    )
                } else if r.send_lag_p99 > p99 / 2.0 {
                    format!(" of which generator lag {:.1}", r.send_lag_p99)
                } else {
                    String::new()
                };
                format!("{} {p99:.1} ms{late}", r.path)
            })
            .collect();
        let worst = rows
            .iter()
            .filter(|r| r.mode == mode)
            .map(|r| r.at_fraction.pct(0.99))
            .fold(0.0_f64, f64::max);
        println!(
            "  {} p99 at {:.0} % of saturation < {MAX_P99_MS:.0} ms, {} run: worst {worst:.1} ms{}",
            pass(over.is_empty()),
            s.fraction * 100.0,
            mode.name(),
            if over.is_empty() {
                String::new()
            } else {
                format!(" (over: {})", over.join(", "))
            }
        );
    }
    for (mode, m) in memory {
        println!(
            "  {} peak RSS < {MAX_RSS_MB:.0} MB, {} server: {:.1} MB (peak before the load, after the sign-in: {:.1} MB)",
            pass(m.peak < MAX_RSS_MB),
            mode.name(),
            m.peak,
            m.login_hwm
        );
    }
    for (path, workers, rps_cost, p50_cost) in &overheads {
        let (what, cost) = if *workers == 1 {
            ("p50 with one worker", p50_cost)
        } else {
            ("throughput", rps_cost)
        };
        println!(
            "  {} uncached {path} adds < {:.0} % over the driver alone ({what}, {workers} workers): {:+.1} %",
            pass(*cost < MAX_OVERHEAD),
            MAX_OVERHEAD * 100.0,
            cost * 100.0
        );
    }
    println!();
    println!(
        "note: against the dev database (mongoeco, an in-memory MongoDB emulator in Python, one core at \
         most) every route that reads the database is bound by it, so absolute figures say little about \
         a real MongoDB; compare ratios (to /health, cached to uncached, HTTP to driver). The load \
         generator shares the machine with the server and the database: see the cpu column."
    );
    errors
}
