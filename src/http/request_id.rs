//! `X-Request-ID`: taken from the caller when well-formed, generated otherwise, echoed on the
//! response and recorded on every log line of the request (through the request span).

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The header name.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn acceptable(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Middleware: assigns the id, opens the request span, echoes the header.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    // At the highest level, so it is on whatever the configured level (a span at `info`
    // would be off under `RUST_LOG=warn`, and the warnings would lose their request id).
    let span =
        tracing::error_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    let mut response = next.run(req).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn every_log_line_of_a_request_carries_its_id() {
        assert_eq!(request_lines(tracing::Level::TRACE).await, 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn at_the_warn_level_too() {
        assert_eq!(request_lines(tracing::Level::WARN).await, 1);
    }

    /// Logs two lines (info, warn) in a request under a subscriber at `level`, checks each
    /// written line carries the request's id, and returns how many were written.
    async fn request_lines(level: tracing::Level) -> usize {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(level)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        async fn handler() -> &'static str {
            tracing::info!("first line");
            tokio::task::yield_now().await;
            tracing::warn!("second line");
            "ok"
        }
        let app = Router::new()
            .route("/x", get(handler))
            .layer(axum::middleware::from_fn(super::request_id));
        let req = axum::http::Request::get("/x")
            .header("x-request-id", "trace-me-123")
            .body(Body::empty())
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.headers()["x-request-id"], "trace-me-123");
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for line in &lines {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["span"]["request_id"], "trace-me-123", "{line}");
        }
        lines.len()
    }

    #[test]
    fn only_safe_ids_are_echoed() {
        assert!(super::acceptable("abc-123_x.y:z"));
        assert!(!super::acceptable(""));
        assert!(!super::acceptable("has space"));
        assert!(!super::acceptable(&"a".repeat(129)));
        assert!(!super::acceptable("evil\r\nheader"));
    }
}
