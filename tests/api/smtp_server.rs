//! A real, minimal SMTP server (an RFC 5321 subset) for the integration tests.
//!
//! It listens on 127.0.0.1 inside the test process, on tokio, and receives the
//! service's emails for real over TCP: no TLS, no auth, no PIPELINING. Each
//! accepted message is recorded before the final `250`; `Mode` makes the server
//! refuse messages at the end of DATA, and `stop()` takes it down entirely
//! (listener and live sessions) so the port refuses connections.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

/// One message accepted by the server.
#[derive(Clone, Debug)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    /// Raw message, dot-unstuffed, CRLF line endings.
    pub data: String,
    /// Value of the Message-ID header, without the surrounding `<>`.
    pub message_id: Option<String>,
}

/// How the server answers at the end of DATA (after the final dot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Accept,
    /// `554 5.7.1`, nothing recorded.
    RefusePermanently,
    /// `451 4.3.0`, nothing recorded.
    RefuseTemporarily,
}

struct Shared {
    messages: Mutex<Vec<Received>>,
    mode: Mutex<Mode>,
    /// Wait between taking a message and answering 250 (a slow relay: the sender cannot know).
    reply_delay: Mutex<std::time::Duration>,
}

pub struct SmtpServer {
    port: u16,
    shared: Arc<Shared>,
    shutdown: oneshot::Sender<()>,
    accept_loop: JoinHandle<()>,
}

impl SmtpServer {
    /// Binds 127.0.0.1 on a random port and starts accepting.
    pub async fn start() -> SmtpServer {
        Self::start_on(0).await
    }

    /// Binds 127.0.0.1 on `port` (0 = random), e.g. to bring SMTP back after `stop()`.
    pub async fn start_on(port: u16) -> SmtpServer {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("test SMTP server: bind 127.0.0.1");
        let port = listener
            .local_addr()
            .expect("test SMTP server: local_addr")
            .port();
        let shared = Arc::new(Shared {
            messages: Mutex::new(Vec::new()),
            mode: Mutex::new(Mode::Accept),
            reply_delay: Mutex::new(std::time::Duration::ZERO),
        });
        let (shutdown, shutdown_rx) = oneshot::channel();
        let accept_loop = tokio::spawn(accept_loop(listener, Arc::clone(&shared), shutdown_rx));
        SmtpServer {
            port,
            shared,
            shutdown,
            accept_loop,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Plain SMTP URL as `AsyncSmtpTransport::from_url` accepts it.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().expect("mode lock") = mode;
    }

    /// Holds each accepted message's 250 reply for `delay` (the message is already recorded).
    pub fn set_reply_delay(&self, delay: std::time::Duration) {
        *self.shared.reply_delay.lock().expect("delay lock") = delay;
    }

    pub fn messages(&self) -> Vec<Received> {
        self.shared.messages.lock().expect("messages lock").clone()
    }

    /// How many accepted messages carry each Message-ID (to spot duplicates).
    pub fn count_by_message_id(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for id in self.messages().into_iter().filter_map(|m| m.message_id) {
            *counts.entry(id).or_insert(0) += 1;
        }
        counts
    }

    /// Polls every 20 ms until at least `n` messages arrived or `timeout` passed.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let messages = self.messages();
            if messages.len() >= n || started.elapsed() >= timeout {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Closes the listener and every live session; the port is free on return.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.accept_loop.await;
    }
}

/// Accepts until shut down (or the `SmtpServer` is dropped), then aborts and awaits every session.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut shutdown: oneshot::Receiver<()>) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            Some(_) = sessions.join_next() => {}
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    sessions.spawn(session(stream, Arc::clone(&shared)));
                }
            }
        }
    }
    drop(listener);
    sessions.shutdown().await;
}

/// One SMTP session; any I/O error just ends it.
async fn session(stream: TcpStream, shared: Arc<Shared>) {
    let _ = run_session(stream, &shared).await;
}

async fn run_session(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, read);
    let mut line = Vec::new();
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    reply(&mut write, "220 localhost ESMTP test").await?;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(trim_eol(&line)).into_owned();
        let (verb, arg) = text.split_once(' ').unwrap_or((text.as_str(), ""));
        let verb = verb.to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" | "HELO" | "RSET" => {
                (from, to) = (None, Vec::new());
                reply(&mut write, reset_reply(&verb)).await?
            }
            "MAIL" => {
                from = Some(path_of(arg));
                to.clear();
                reply(&mut write, "250 2.1.0 OK").await?
            }
            "RCPT" if from.is_none() => reply(&mut write, "503 5.5.1 MAIL first").await?,
            "RCPT" => {
                to.push(path_of(arg));
                reply(&mut write, "250 2.1.5 OK").await?
            }
            "DATA" if to.is_empty() => reply(&mut write, "503 5.5.1 RCPT first").await?,
            "DATA" => {
                reply(&mut write, "354 End data with <CR><LF>.<CR><LF>").await?;
                let data = read_data(&mut reader).await?;
                let envelope = (from.take().unwrap_or_default(), std::mem::take(&mut to));
                let answer = finish_message(shared, envelope, data);
                let delay = *shared.reply_delay.lock().expect("delay lock");
                if !delay.is_zero() && answer.starts_with("250") {
                    tokio::time::sleep(delay).await;
                }
                reply(&mut write, answer).await?
            }
            "NOOP" => reply(&mut write, "250 2.0.0 OK").await?,
            "VRFY" => reply(&mut write, "252 2.0.0 Cannot VRFY user").await?,
            "QUIT" => {
                reply(&mut write, "221 2.0.0 Bye").await?;
                return Ok(());
            }
            _ => reply(&mut write, "500 5.5.2 Command not recognized").await?,
        }
    }
}

/// Reads DATA lines up to the lone "."; undoes dot-stuffing and normalises to CRLF.
async fn read_data<R: AsyncBufReadExt + Unpin>(reader: &mut R) -> std::io::Result<String> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let content = trim_eol(&line);
        if content == b"." {
            return Ok(String::from_utf8_lossy(&data).into_owned());
        }
        data.extend_from_slice(content.strip_prefix(b".").unwrap_or(content));
        data.extend_from_slice(b"\r\n");
    }
}

/// Applies the current mode: records the message (before the reply) or refuses it.
fn finish_message(shared: &Shared, (from, to): (String, Vec<String>), data: String) -> &'static str {
    let mode = *shared.mode.lock().expect("mode lock");
    match mode {
        Mode::RefusePermanently => "554 5.7.1 Message refused",
        Mode::RefuseTemporarily => "451 4.3.0 Try again later",
        Mode::Accept => {
            let message_id = message_id_of(&data);
            let received = Received {
                from,
                to,
                data,
                message_id,
            };
            shared.messages.lock().expect("messages lock").push(received);
            "250 2.0.0 OK queued"
        }
    }
}

/// EHLO, HELO and RSET all start a fresh transaction; only their replies differ.
fn reset_reply(verb: &str) -> &'static str {
    match verb {
        "EHLO" => "250-localhost\r\n250-8BITMIME\r\n250 SIZE 52428800",
        "HELO" => "250 localhost",
        _ => "250 2.0.0 OK",
    }
}

async fn reply(write: &mut OwnedWriteHalf, text: &str) -> std::io::Result<()> {
    write.write_all(format!("{text}\r\n").as_bytes()).await
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// "FROM:<a@b> BODY=8BITMIME" -> "a@b" (also "TO:<a@b>", "FROM:<>", "FROM: a@b").
fn path_of(arg: &str) -> String {
    let after_colon = arg.split_once(':').map_or(arg, |(_, rest)| rest).trim_start();
    match after_colon.strip_prefix('<') {
        Some(rest) => rest.split('>').next().unwrap_or("").to_string(),
        None => after_colon.split_whitespace().next().unwrap_or("").to_string(),
    }
}

/// Message-ID from the header block (case-insensitive name, folded lines joined), without `<>`.
fn message_id_of(data: &str) -> Option<String> {
    let mut headers: Vec<String> = Vec::new();
    for line in data.split("\r\n").take_while(|l| !l.is_empty()) {
        match headers.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
            _ => headers.push(line.to_string()),
        }
    }
    headers.iter().find_map(|header| {
        let (name, value) = header.split_once(':')?;
        if !name.trim().eq_ignore_ascii_case("message-id") {
            return None;
        }
        let value = value.trim();
        let value = value.strip_prefix('<').unwrap_or(value);
        Some(value.strip_suffix('>').unwrap_or(value).trim().to_string())
    })
}
