//! A real local HTTP receiver for webhook and Novu deliveries: records
//! every request and can fail the first N of them.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
    pub raw: Bytes,
    pub status: u16,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Received>>>,
}

struct Inner {
    requests: Arc<Mutex<Vec<Received>>>,
    fail_first: usize,
    seen: AtomicUsize,
}

async fn record(
    State(inner): State<Arc<Inner>>,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> StatusCode {
    let n = inner.seen.fetch_add(1, Ordering::SeqCst);
    let status = if n < inner.fail_first {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    inner.requests.lock().unwrap().push(Received {
        path: uri.path().to_owned(),
        headers,
        body: serde_json::from_slice(&raw).unwrap_or_default(),
        raw,
        status: status.as_u16(),
    });
    status
}

impl Receiver {
    /// Answers 500 to the first `fail_first` requests, 200 after.
    pub async fn start(fail_first: usize) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let inner = Arc::new(Inner {
            requests: requests.clone(),
            fail_first,
            seen: AtomicUsize::new(0),
        });
        let app = axum::Router::new().fallback(record).with_state(inner);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, requests }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn all(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until `n` requests matching `pred` arrived (10 s at most).
    pub async fn wait_for(&self, n: usize, pred: impl Fn(&Received) -> bool) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let hits: Vec<_> = self.all().into_iter().filter(|r| pred(r)).collect();
            if hits.len() >= n {
                return hits;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {n} requests: {:#?}",
                hits.len(),
                self.all()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
