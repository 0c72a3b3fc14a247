//! A pass-through HTTP proxy on loopback that counts what goes through it: put in front of
//! moto, it tells how many AWS calls a process made. It can also hold every request until
//! released: an AWS service that hangs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

struct Inner {
    target: String,
    client: reqwest::Client,
    requests: AtomicUsize,
    /// True while requests are held.
    held: tokio::sync::watch::Sender<bool>,
    /// How long each request waits before it is forwarded.
    delay: std::sync::Mutex<std::time::Duration>,
    /// Each request's operation (`x-amz-target`, else the path), when it arrived and when its
    /// answer was ready.
    times: std::sync::Mutex<Vec<Timed>>,
}

pub struct CountingProxy {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    /// Forwards every request to `target` (scheme, host and port).
    pub async fn start(target: &str) -> Self {
        let inner = Arc::new(Inner {
            target: target.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            requests: AtomicUsize::new(0),
            held: tokio::sync::watch::Sender::new(false),
            delay: std::sync::Mutex::new(std::time::Duration::ZERO),
            times: std::sync::Mutex::default(),
        });
        let app = Router::new().fallback(forward).with_state(inner.clone());
        let (addr, task) = crate::serve_on_loopback(app).await;
        Self { addr, inner, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> usize {
        self.inner.requests.load(Ordering::SeqCst)
    }

    /// Holds every request (counted on arrival) until [`CountingProxy::release`].
    pub fn hold(&self) {
        self.inner.held.send_replace(true);
    }

    pub fn release(&self) {
        self.inner.held.send_replace(false);
    }

    /// Each request so far: its operation, when it arrived and when its answer was ready.
    pub fn request_times(&self) -> Vec<Timed> {
        self.inner.times.lock().unwrap().clone()
    }

    /// Every request waits this long before it is forwarded: a service across a network.
    pub fn set_delay(&self, delay: std::time::Duration) {
        *self.inner.delay.lock().unwrap() = delay;
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One request through the proxy.
#[derive(Debug, Clone)]
pub struct Timed {
    /// `x-amz-target` (`AmazonSSM.GetParameters`, `DynamoDB_20120810.GetItem`), else the path.
    pub operation: String,
    pub arrived: Instant,
    pub answered: Instant,
}

async fn forward(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let arrived = Instant::now();
    let operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| request.uri().path().to_owned(), str::to_owned);
    let response = forward_once(&inner, request).await;
    inner.times.lock().unwrap().push(Timed {
        operation,
        arrived,
        answered: Instant::now(),
    });
    response
}

async fn forward_once(inner: &Inner, request: Request) -> Response {
    inner.requests.fetch_add(1, Ordering::SeqCst);
    let _ = inner.held.subscribe().wait_for(|held| !held).await;
    let delay = *inner.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, 16 * 1024 * 1024).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut outgoing = inner
        .client
        .request(parts.method, format!("{}{path}", inner.target))
        .body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            outgoing = outgoing.header(name, value);
        }
    }
    match outgoing.send().await {
        Ok(answer) => {
            let mut response = Response::builder().status(answer.status().as_u16());
            for (name, value) in answer.headers() {
                if name != "content-length" && name != "transfer-encoding" {
                    response = response.header(name, value);
                }
            }
            let bytes = answer.bytes().await.unwrap_or_default();
            response.body(Body::from(bytes)).unwrap()
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}
