//! Real processes for the deployment and fault tests: `dhara serve` / `dhara worker` started
//! from the binary under test, NGINX with the repo's proxy rules in front of test ports, and
//! signals (SIGKILL, SIGTERM, SIGSTOP and SIGCONT) sent to them.

#![allow(dead_code)] // shared by several test modules; not each uses every helper

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::helpers::mongodb_uri;

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A fresh folder under the system's temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dhara-{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A loopback port free right now (the OS's pick).
pub async fn free_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// Sends `sig` (`-KILL`, `-TERM`, ...) to a running child.
pub async fn signal(child: &Child, sig: &str) {
    let pid = child.id().expect("running").to_string();
    let ok = Command::new("kill")
        .args([sig, &pid])
        .status()
        .await
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

/// `dhara <args>` with the test environment on `database` (Redis as the tests use it; `extra`
/// overrides any of it, e.g. `REDIS_URL` empty).
pub fn dhara(args: &[&str], database: &str, extra: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dhara"));
    cmd.args(args)
        .env("DHARA_ENV", "test")
        .env("DHARA_CONFIG_DIR", Path::new(REPO).join("config"))
        .env("MONGODB_URI", mongodb_uri())
        .env("MONGODB_DATABASE", database)
        .env(
            "REDIS_URL",
            std::env::var("REDIS_URL").unwrap_or_else(|_| crate::helpers::DEV_REDIS_URL.to_owned()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd
}

/// `dhara worker` as its own process on `database`, without Redis, sending to `smtp`.
pub fn worker_process(database: &str, smtp: &str, extra: &[(&str, &str)]) -> Child {
    let mut cmd = dhara(&["worker"], database, &[("REDIS_URL", ""), ("SMTP_URL", smtp)]);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start dhara worker")
}

/// One `dhara serve --no-worker` process on a fixed port, which can be killed and started
/// again on the same port; its log is `log`.
pub struct Instance {
    pub port: u16,
    pub log: PathBuf,
    database: String,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Instance {
    /// Starts the process (not waiting for it to be ready).
    pub async fn start(database: &str, env: &[(&str, &str)], logs: &Path) -> Instance {
        let port = free_port().await;
        let mut me = Instance {
            port,
            log: logs.join(format!("api-{port}.log")),
            database: database.to_owned(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            child: None,
        };
        me.restart();
        me
    }

    /// Starts the process again on its port (after [`Instance::kill`]).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let port = self.port.to_string();
        let mut env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        env.push(("PORT", &port));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = dhara(&["serve", "--no-worker"], &self.database, &env);
        cmd.stderr(log.try_clone().unwrap()).stdout(log);
        self.child = Some(cmd.spawn().expect("start dhara serve"));
    }

    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    /// Polls `/ready` until it answers 200.
    pub async fn wait_ready(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = client.get(self.url("/ready")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!(
                    "instance on {} exited ({status}); see {}",
                    self.port,
                    self.log.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "instance on {} not ready within 60 s; see {}",
                self.port,
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, and waits until the process is gone (its port refuses connections).
    pub async fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        signal(&child, "-KILL").await;
        child.wait().await.unwrap();
    }

    /// SIGSTOP: the process stalls where it is (no task of it runs, nothing is renewed).
    pub async fn freeze(&self) {
        signal(self.child.as_ref().expect("running"), "-STOP").await;
    }

    /// SIGCONT after [`Instance::freeze`].
    pub async fn thaw(&self) {
        signal(self.child.as_ref().expect("running"), "-CONT").await;
    }

    /// Requests this process has answered on routes under `/api/`, from its own metrics.
    pub async fn api_requests(&self) -> u64 {
        let text = reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with("http_request_duration_seconds_count{") && l.contains("route=\"/api/"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

/// NGINX (Debian's) in the foreground with a generated `nginx.conf`; killed on drop. One
/// process (`master_process off`): killing a master would leave its worker serving the port.
pub struct Nginx {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl Nginx {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// NGINX on a free port proxying to `upstreams` (`host:port`, each with `server_params`, e.g.
/// `max_fails=3 fail_timeout=30s` as in nginx/dhara.conf) with the repo's nginx/dhara-proxy.conf,
/// as nginx/dhara.conf lays it out; `server_extra` is added to the server block.
pub async fn start_nginx(upstreams: &[String], server_params: &str, server_extra: &str) -> Nginx {
    let dir = temp_dir("nginx");
    let port = free_port().await;
    let servers: String = upstreams
        .iter()
        .map(|u| format!("        server {u} {server_params};\n"))
        .collect();
    let conf = format!(
        r#"
daemon off;
master_process off;
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
        {server_extra}
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
    let child = Command::new("nginx")
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
    Nginx { child, port, dir }
}
