//! Deployment files: systemd units verify, and NGINX with the repo's proxy rules balances two
//! real instances and survives losing one.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::helpers::*;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dhara-{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn systemd_units_verify_cleanly() {
    let dir = temp_dir("units");
    for unit in ["dhara@.service", "dhara-worker.service", "dhara-indexes.service"] {
        let text = std::fs::read_to_string(Path::new(REPO).join("deploy").join(unit)).unwrap();
        // Verification checks that ExecStart exists: point it at the binary under test.
        let text = text.replace("/opt/dhara/bin/dhara", env!("CARGO_BIN_EXE_dhara"));
        std::fs::write(dir.join(unit), text).unwrap();
    }
    let out = tokio::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.join("dhara@5001.service"))
        .arg(dir.join("dhara-worker.service"))
        .arg(dir.join("dhara-indexes.service"))
        .output()
        .await
        .expect("systemd-analyze (Debian package systemd) must be installed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let own: Vec<&str> = stderr.lines().filter(|l| l.contains("dhara")).collect();
    assert!(own.is_empty(), "warnings about our units: {own:?}");
}

struct Nginx {
    child: tokio::process::Child,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn free_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

async fn start_nginx(upstreams: &[String]) -> Nginx {
    let dir = temp_dir("nginx");
    let port = free_port().await;
    let servers: String = upstreams
        .iter()
        .map(|u| format!("        server {u} max_fails=1 fail_timeout=30s;\n"))
        .collect();
    let conf = format!(
        r#"
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream dhara_backend {{
        least_conn;
{servers}        keepalive 8;
    }}
    map $http_x_request_id $request_id_or_new {{
        default $http_x_request_id;
        ""      $request_id;
    }}
    server {{
        listen 127.0.0.1:{port};
        include {repo}/nginx/dhara-proxy.conf;
    }}
}}
"#,
        dir = dir.display(),
        repo = REPO,
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let test = std::process::Command::new("nginx")
        .args(["-t", "-p"])
        .arg(&dir)
        .arg("-c")
        .arg(&conf_path)
        .output()
        .expect("nginx (Debian package nginx-light) must be installed");
    assert!(
        test.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&test.stderr)
    );
    let child = tokio::process::Command::new("nginx")
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "nginx did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Nginx { child, port }
}

async fn health_count(app: &TestApp) -> u64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("http_request_duration_seconds_count{") && l.contains("route=\"/health\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn nginx_balances_two_instances_and_survives_losing_one() {
    let a = spawn_app().await;
    let shared = [
        ("MONGODB_DATABASE", a.config.mongodb.database.as_str()),
        ("DHARA_REDIS__PREFIX", a.config.redis.prefix.as_str()),
    ];
    let b = spawn_app_with(&shared).await;
    let nginx = start_nginx(&[a.socket_addr(), b.socket_addr()]).await;
    let front = format!("http://127.0.0.1:{}", nginx.port);
    let client = reqwest::Client::new();

    // Concurrent requests: least_conn spreads them over both instances.
    let requests = (0..40).map(|_| client.get(format!("{front}/health")).send());
    for r in futures_util::future::join_all(requests).await {
        assert_eq!(r.unwrap().status(), 200);
    }
    let (on_a, on_b) = (health_count(&a).await, health_count(&b).await);
    assert_eq!(on_a + on_b, 40);
    assert!(on_a > 0 && on_b > 0, "a={on_a} b={on_b}");

    // The dashboard's request id survives the proxy; one is made when absent.
    let r = client
        .get(format!("{front}/api/nope"))
        .header("X-Request-ID", "via-nginx-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "via-nginx-1");
    assert_eq!(r.status(), 404);
    let r = client.get(format!("{front}/health")).send().await.unwrap();
    assert!(r.headers()["x-request-id"].len() >= 32);

    // One instance goes away: traffic keeps flowing through the other.
    let mut a = a;
    a.shutdown.cancel();
    let server = a.server.take().unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    for _ in 0..10 {
        let r = client.get(format!("{front}/ready")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
}
