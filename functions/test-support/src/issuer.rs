//! A platform's JWKS endpoint on loopback, over real HTTP, whose behaviour a test can
//! change while it runs: rotate keys, answer slowly, go down, redirect, grow too large.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

/// How the issuer answers.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// 200 with the current document.
    Serve,
    /// This status, no keys.
    Status(u16),
    /// A redirect to this absolute URL.
    RedirectTo(String),
    /// Any body, as is.
    Body(String),
}

struct Inner {
    jwks: Mutex<Value>,
    behaviour: Mutex<Behaviour>,
    delay: Mutex<Duration>,
    fetches: AtomicUsize,
    /// When each fetch arrived and when its answer was ready.
    times: Mutex<Vec<(Instant, Instant)>>,
}

/// The running issuer. It stops when dropped.
pub struct Issuer {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Issuer {
    /// An issuer publishing `key` alone, and the key to sign with.
    pub async fn with(key: crate::TestKey) -> (crate::TestKey, Issuer) {
        let issuer = Issuer::start(crate::jwks(&[&key])).await;
        (key, issuer)
    }

    pub async fn start(jwks: Value) -> Self {
        let inner = Arc::new(Inner {
            jwks: Mutex::new(jwks),
            behaviour: Mutex::new(Behaviour::Serve),
            delay: Mutex::new(Duration::ZERO),
            fetches: AtomicUsize::new(0),
            times: Mutex::default(),
        });
        let app = Router::new()
            .route("/.well-known/jwks.json", get(serve_jwks))
            .with_state(inner.clone());
        let (addr, task) = crate::serve_on_loopback(app).await;
        Self { addr, inner, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Publishes another document (a key rotation).
    pub fn set_jwks(&self, jwks: Value) {
        *self.inner.jwks.lock().unwrap() = jwks;
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self.inner.behaviour.lock().unwrap() = behaviour;
    }

    pub fn set_delay(&self, delay: Duration) {
        *self.inner.delay.lock().unwrap() = delay;
    }

    /// How many requests reached the JWKS endpoint.
    pub fn fetches(&self) -> usize {
        self.inner.fetches.load(Ordering::SeqCst)
    }

    /// When each fetch so far arrived and when its answer was ready.
    pub fn fetch_times(&self) -> Vec<(Instant, Instant)> {
        self.inner.times.lock().unwrap().clone()
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_jwks(State(inner): State<Arc<Inner>>) -> Response {
    let arrived = Instant::now();
    let response = answer(&inner).await;
    inner.times.lock().unwrap().push((arrived, Instant::now()));
    response
}

async fn answer(inner: &Inner) -> Response {
    inner.fetches.fetch_add(1, Ordering::SeqCst);
    let delay = *inner.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let behaviour = inner.behaviour.lock().unwrap().clone();
    match behaviour {
        Behaviour::Serve => {
            let body = inner.jwks.lock().unwrap().to_string();
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Behaviour::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Behaviour::RedirectTo(url) => {
            let mut response = StatusCode::FOUND.into_response();
            response
                .headers_mut()
                .insert(header::LOCATION, HeaderValue::from_str(&url).unwrap());
            response
        }
        Behaviour::Body(body) => body.into_response(),
    }
}

/// A current-thread runtime and an issuer of one ES256 key, `kid`: the benches' start.
pub fn runtime_and_issuer(kid: &str) -> (tokio::runtime::Runtime, crate::TestKey, Issuer) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let key = crate::TestKey::es256(kid);
    let issuer = rt.block_on(Issuer::start(crate::jwks(&[&key])));
    (rt, key, issuer)
}
