//! Memory and throughput of document transfers (issue 13, item 7). A benchmark, not a test:
//! `cargo bench --bench documents_http`, or `scripts/bench-documents.sh`, which also starts the
//! dev MongoDB-compatible server and Redis. Under `cargo test` (no `--bench` argument) it does
//! nothing.
//!
//! One run starts one release `dhara serve --no-worker` on loopback with a database of its own,
//! registers a therapist, warms the server up with one small upload and download and one
//! refused upload, then:
//! 1. refuses BENCH_REFUSED_MB (200) MB of over-limit uploads, one after the other (the target),
//!    then BENCH_REFUSED_AT_ONCE (4) at a time (reported per upload in flight, no target),
//!    each a chunked body (no declared length) larger than `documents.max_file_bytes`, so the
//!    server streams each into GridFS up to the limit and then refuses it (413);
//! 2. uploads one BENCH_FILE_MB (30) MB file (upload throughput);
//! 3. downloads it with BENCH_DOWNLOADERS (10) clients at once (download throughput, each copy's
//!    SHA-256 checked).
//!
//! Before phases 1 and 3 the server's peak RSS is reset (`/proc/<pid>/clear_refs`); after each,
//! its growth over the RSS before is printed with the target (< 10 MB) as PASS/MISS, next to the
//! ratio of each throughput to the server's loopback `/health` round trip for scale.
//! Exits 1 when a request failed or the run could not be made (a MISS is a finding).
//!
//! Settings: MONGODB_URI, REDIS_URL, DHARA_BIN (another binary), BENCH_* above; any DHARA_*
//! setting in the environment reaches the server.

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MB: usize = 1024 * 1024;
const MAX_GROWTH_MB: f64 = 10.0;
const BOUNDARY: &str = "benchBoundary9f8e7d6c";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| anyhow!("{name}={v} is not valid")),
        _ => Ok(default),
    }
}

fn main() -> ExitCode {
    if !std::env::args().any(|a| a == "--bench") {
        println!("documents_http: benchmark skipped (run `cargo bench --bench documents_http` or scripts/bench-documents.sh)");
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("documents_http: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("documents_http: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `len` bytes that read as a PDF (the signature, then noise).
fn pdf(len: usize, seed: u64) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n".to_vec();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

struct Server {
    child: tokio::process::Child,
    pid: u32,
    addr: String,
}

impl Server {
    fn memory_mb(&self, field: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with(&format!("{field}:")))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }

    /// Resets the peak RSS (VmHWM) to the current RSS.
    fn reset_peak(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5");
    }
}

async fn run() -> anyhow::Result<()> {
    let refused_mb: usize = env_or("BENCH_REFUSED_MB", 200)?;
    let refused_uploads: usize = env_or("BENCH_REFUSED_AT_ONCE", 4)?;
    let file_mb: usize = env_or("BENCH_FILE_MB", 30)?;
    let downloaders: usize = env_or("BENCH_DOWNLOADERS", 10)?;
    if refused_uploads == 0 || downloaders == 0 || file_mb == 0 {
        bail!("BENCH_REFUSED_AT_ONCE, BENCH_DOWNLOADERS and BENCH_FILE_MB must be positive");
    }
    let bin = std::env::var_os("DHARA_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_dhara")));
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let database = format!(
        "dhara_bench_docs_{}",
        uuid::Uuid::new_v4().simple().to_string().get(..12).unwrap_or("x")
    );
    let mongo = std::env::var("MONGODB_URI")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27017/?directConnection=true".into());
    let child = tokio::process::Command::new(&bin)
        .args(["serve", "--no-worker"])
        .env("PORT", port.to_string())
        .env("MONGODB_URI", &mongo)
        .env("MONGODB_DATABASE", &database)
        .env("DHARA_REDIS__PREFIX", format!("{database}:"))
        .env("DHARA_RATE_LIMIT__ENABLED", "false")
        .env("DHARA_HTTP__TIMEOUTS__UPLOAD_SECONDS", "300")
        .env("DHARA_LOG__LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let pid = child.id().ok_or_else(|| anyhow!("the server exited at once"))?;
    let server = Server {
        child,
        pid,
        addr: format!("127.0.0.1:{port}"),
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;
    let base = format!("http://{}", server.addr);
    let ready = Instant::now() + Duration::from_secs(60);
    while http
        .get(format!("{base}/ready"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
        != 200
    {
        if Instant::now() > ready {
            bail!("the server was not ready within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let result = phases(
        &server,
        &http,
        &base,
        (refused_mb, refused_uploads, file_mb, downloaders),
    )
    .await;
    let cleanup = mongodb::Client::with_uri_str(&mongo).await?;
    let _ = cleanup.database(&database).drop().await;
    let mut child = server.child;
    let _ = child.start_kill();
    result
}

async fn phases(
    server: &Server,
    http: &reqwest::Client,
    base: &str,
    (refused_mb, refused_uploads, file_mb, downloaders): (usize, usize, usize, usize),
) -> anyhow::Result<()> {
    let email = format!("bench-{}@dhara.local", uuid::Uuid::new_v4().simple());
    let body = serde_json::json!({ "name": "Bench", "email": email, "password": "bench-password", "confirmPassword": "bench-password" });
    let session: serde_json::Value = http
        .post(format!("{base}/api/auth/register"))
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    let token = format!(
        "Bearer {}",
        session["accessToken"]
            .as_str()
            .ok_or_else(|| anyhow!("no token: {session}"))?
    );

    // /health round trip, for scale.
    let t = Instant::now();
    for _ in 0..200 {
        http.get(format!("{base}/health")).send().await?.bytes().await?;
    }
    let health_ms = t.elapsed().as_secs_f64() * 1000.0 / 200.0;

    // Warm-up: one small upload and download (allocator pools, connection pool, indexes).
    let warm = upload(http, base, &token, pdf(512 * 1024, 1)).await?;
    download(http, base, &token, &warm).await?;
    let limit = max_file_bytes(http, base, &token).await?;

    // 1. Over-limit uploads, refused: each a bit over the limit, one at a time until
    // `refused_mb` were sent (the target), then the same `refused_uploads` at a time (reported).
    let per = limit + MB;
    let count = (refused_mb * MB).div_ceil(per).max(1);
    // One refused upload first: what the first one costs (pool connections, allocator pages)
    // is start-up, not growth.
    refuse(server, &token, per, 1, 1).await?;
    let (refused_secs, refused_peak, streamed_mb) = refuse(server, &token, per, count, 1).await?;
    let (together_secs, together_peak, _) = refuse(server, &token, per, count, refused_uploads).await?;

    // 2. One upload of the file.
    let file = pdf(file_mb * MB, 7);
    let digest = hex::encode(Sha256::digest(&file));
    let t = Instant::now();
    let id = upload(http, base, &token, file).await?;
    let upload_secs = t.elapsed().as_secs_f64();

    // 3. Downloaded by many at once.
    server.reset_peak();
    let before_dl = server.memory_mb("VmRSS");
    let t = Instant::now();
    let gets = (0..downloaders).map(|_| download(http, base, &token, &id));
    let digests = futures_util::future::try_join_all(gets).await?;
    let download_secs = t.elapsed().as_secs_f64();
    let download_peak = server.memory_mb("VmHWM") - before_dl;
    if digests.iter().any(|d| *d != digest) {
        bail!("a download differed from the upload");
    }

    let verdict = |mb: f64| if mb < MAX_GROWTH_MB { "PASS" } else { "MISS" };
    println!(
        "documents_http on {} (server and database on this machine)",
        machine()
    );
    println!("/health round trip: {health_ms:.2} ms");
    println!(
        "refused: {count} uploads of {:.0} MB one after the other, {streamed_mb:.0} MB sent before the 413s, {:.1} s; peak RSS growth {refused_peak:.1} MB (target < {MAX_GROWTH_MB} MB: {})",
        per as f64 / MB as f64,
        refused_secs,
        verdict(refused_peak)
    );
    println!(
        "refused, {refused_uploads} at a time: {together_secs:.1} s; peak RSS growth {together_peak:.1} MB ({:.1} MB per upload in flight; no target)",
        together_peak / refused_uploads as f64
    );
    println!(
        "upload: {file_mb} MB in {upload_secs:.2} s = {:.1} MB/s ({:.0}x a /health round trip per MB)",
        file_mb as f64 / upload_secs,
        upload_secs * 1000.0 / file_mb as f64 / health_ms
    );
    println!(
        "download: {downloaders} x {file_mb} MB at once in {download_secs:.2} s = {:.1} MB/s in all; peak RSS growth {download_peak:.1} MB (target < {MAX_GROWTH_MB} MB: {})",
        (downloaders * file_mb) as f64 / download_secs,
        verdict(download_peak)
    );
    println!(
        "server RSS at the end: {:.1} MB (peak since the last reset {:.1} MB)",
        server.memory_mb("VmRSS"),
        server.memory_mb("VmHWM")
    );
    Ok(())
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    format!("{cpus} cpus ({model})")
}

async fn max_file_bytes(http: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<usize> {
    let usage: serde_json::Value = http
        .get(format!("{base}/api/documents/usage"))
        .header("Authorization", token)
        .send()
        .await?
        .json()
        .await?;
    usage["data"]["maxFileSize"]
        .as_u64()
        .map(|n| n as usize)
        .ok_or_else(|| anyhow!("no maxFileSize in {usage}"))
}

async fn upload(http: &reqwest::Client, base: &str, token: &str, bytes: Vec<u8>) -> anyhow::Result<String> {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name("bench.pdf"),
    );
    let r = http
        .post(format!("{base}/api/documents/upload"))
        .header("Authorization", token)
        .multipart(form)
        .send()
        .await?;
    let status = r.status();
    let body: serde_json::Value = r.json().await?;
    if status != 201 {
        bail!("upload answered {status}: {body}");
    }
    body["data"]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no id in {body}"))
}

/// Downloads document `id`, hashing as it arrives (nothing kept); the SHA-256.
async fn download(http: &reqwest::Client, base: &str, token: &str, id: &str) -> anyhow::Result<String> {
    let mut r = http
        .get(format!("{base}/api/documents/{id}/download"))
        .header("Authorization", token)
        .send()
        .await?;
    if r.status() != 200 {
        bail!("download answered {}", r.status());
    }
    let mut hasher = Sha256::new();
    while let Some(chunk) = r.chunk().await? {
        hasher.update(&chunk);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Sends `count` refused uploads of `per` bytes, `at_once` at a time: (seconds, peak RSS growth
/// in MB, MB sent).
async fn refuse(
    server: &Server,
    token: &str,
    per: usize,
    count: usize,
    at_once: usize,
) -> anyhow::Result<(f64, f64, f64)> {
    server.reset_peak();
    let before = server.memory_mb("VmRSS");
    let t = Instant::now();
    let sends = (0..count).map(|i| refused_upload(&server.addr, token, per, i as u64));
    let streamed: Vec<usize> = futures_util::stream::iter(sends)
        .buffer_unordered(at_once)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let peak = server.memory_mb("VmHWM") - before;
    Ok((
        t.elapsed().as_secs_f64(),
        peak,
        streamed.iter().sum::<usize>() as f64 / MB as f64,
    ))
}

/// Sends a chunked upload of `len` bytes until the server answers; the bytes sent by then.
async fn refused_upload(addr: &str, token: &str, len: usize, seed: u64) -> anyhow::Result<usize> {
    let mut s = TcpStream::connect(addr).await?;
    let head = format!(
        "POST /api/documents/upload HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {token}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await?;
    let part = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.pdf\"\r\n\r\n"
    );
    let block = pdf(256 * 1024, seed);
    let (mut read, mut write) = s.into_split();
    let answer = tokio::spawn(async move {
        let mut buf = vec![0u8; 1024];
        let n = read.read(&mut buf).await.unwrap_or(0);
        String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    });
    let mut sent = 0;
    let frame = |b: &[u8]| [format!("{:x}\r\n", b.len()).as_bytes(), b, b"\r\n"].concat();
    write.write_all(&frame(part.as_bytes())).await?;
    while sent < len && !answer.is_finished() {
        if write.write_all(&frame(&block)).await.is_err() {
            break;
        }
        sent += block.len();
    }
    let line = tokio::time::timeout(Duration::from_secs(60), answer).await??;
    if !line.starts_with("HTTP/1.1 413") {
        bail!("an over-limit upload answered `{line}`");
    }
    Ok(sent)
}
