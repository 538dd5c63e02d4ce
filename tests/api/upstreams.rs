//! Stand-in upstreams for NGINX in the fault tests, on loopback inside the test process: one
//! that answers every request, one that takes each request whole and then closes the connection
//! without answering (an instance dying mid-request), and a relay in front of a real instance
//! that can let the instance finish a write and lose its answer.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One request as read off the wire: method, path and the raw bytes (head and body).
struct Request {
    method: String,
    path: String,
    raw: Vec<u8>,
}

/// Reads one HTTP/1.1 request (a body only by `Content-Length`); `None` at end of stream.
async fn read_request<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Option<Request> {
    let mut raw = Vec::new();
    let mut line = String::new();
    let mut length = 0usize;
    let mut first = None;
    loop {
        line.clear();
        if r.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        raw.extend_from_slice(line.as_bytes());
        if first.is_none() {
            first = Some(line.clone());
        } else if line == "\r\n" {
            break;
        } else if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).await.ok()?;
    raw.extend_from_slice(&body);
    let first = first?;
    let mut words = first.split_whitespace();
    Some(Request {
        method: words.next()?.to_owned(),
        path: words.next()?.to_owned(),
        raw,
    })
}

/// A stand-in upstream; `seen` lists the method of every request it read, in order.
pub struct Fake {
    pub port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fake {
    /// Answers 200 to everything (keep-alive) when `answer`; else reads each request whole and
    /// closes the connection.
    pub async fn start(answer: bool) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut read = BufReader::new(read);
                    while let Some(req) = read_request(&mut read).await {
                        log.lock().unwrap().push(req.method.clone());
                        if !answer {
                            return;
                        }
                        let body = if req.method == "HEAD" { "" } else { "ok" };
                        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\n";
                        if write.write_all(format!("{head}{body}").as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Fake { port, seen, task }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// How many `method` requests it read.
    pub fn seen(&self, method: &str) -> usize {
        self.seen.lock().unwrap().iter().filter(|m| *m == method).count()
    }
}

/// A relay to a real instance, one request per connection (it asks the instance to close after
/// answering). While `lose` is above zero, a POST is passed to the instance, its whole answer
/// read (the write done and its idempotency record stored), and then the caller's connection
/// is closed without a byte of it: an instance that died after writing, before answering.
pub struct LossyRelay {
    pub port: u16,
    lose: Arc<AtomicUsize>,
    lost: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for LossyRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LossyRelay {
    pub async fn start(target: String, lose: usize) -> LossyRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let lose = Arc::new(AtomicUsize::new(lose));
        let lost = Arc::new(Mutex::new(Vec::new()));
        let (budget, log) = (lose.clone(), lost.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (budget, log, target) = (budget.clone(), log.clone(), target.clone());
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut read = BufReader::new(read);
                    let Some(req) = read_request(&mut read).await else {
                        return;
                    };
                    // The request again, asking the instance to close once it has answered.
                    let text = String::from_utf8_lossy(&req.raw).into_owned();
                    let (head, body) = text.split_once("\r\n\r\n").unwrap();
                    let head: Vec<&str> = head
                        .lines()
                        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
                        .collect();
                    let forward = format!("{}\r\nConnection: close\r\n\r\n{body}", head.join("\r\n"));
                    let Ok(mut up) = TcpStream::connect(&target).await else {
                        return;
                    };
                    if up.write_all(forward.as_bytes()).await.is_err() {
                        return;
                    }
                    let mut answer = Vec::new();
                    if up.read_to_end(&mut answer).await.is_err() {
                        return;
                    }
                    let lose = req.method == "POST"
                        && budget
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                            .is_ok();
                    if lose {
                        log.lock().unwrap().push(req.path);
                        return;
                    }
                    let _ = write.write_all(&answer).await;
                });
            }
        });
        LossyRelay {
            port,
            lose,
            lost,
            task,
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Paths of the POSTs whose answers it lost.
    pub fn lost(&self) -> Vec<String> {
        self.lost.lock().unwrap().clone()
    }
}
