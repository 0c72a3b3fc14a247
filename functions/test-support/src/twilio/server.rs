//! The stand-in's HTTP side: every request is checked by Prism against Twilio's spec, then
//! authenticated, then answered (or failed, or delayed, as a test asked) and recorded.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::Response;
use conversations_emulator::{Emulator, segments, twilio_error};

use super::fault::Fault;
use super::{Latency, Recorded};

pub(super) struct Inner {
    pub(super) emulator: Emulator,
    /// `None` only for benchmarks, where Prism's round trip would be measured as ours.
    pub(super) prism_url: Option<String>,
    pub(super) http: reqwest::Client,
    pub(super) faults: Mutex<Vec<Fault>>,
    pub(super) log: Mutex<Vec<Recorded>>,
    pub(super) violations: Mutex<Vec<String>>,
    pub(super) latency: Mutex<Latency>,
}

pub(super) async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let segments = segments(&uri);
    let below_service = segments.get(3..).map(|s| s.join("/")).unwrap_or_default();
    let query = uri.query().unwrap_or("").to_owned();

    let response = inner
        .answer(&method, &uri, &headers, &body, &segments)
        .await;
    inner.log.lock().unwrap().push(Recorded {
        method,
        path: below_service,
        query,
        body: String::from_utf8_lossy(&body).into_owned(),
        status: response.status().as_u16(),
        started,
        ended: Instant::now(),
    });
    response
}

impl Inner {
    async fn answer(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
        segments: &[String],
    ) -> Response {
        if let Some(violation) = self.check_with_prism(method, uri, headers, body).await {
            let message = format!("{method} {}: {violation}", uri.path());
            self.violations.lock().unwrap().push(message.clone());
            return twilio_error(
                400,
                0,
                &format!("not allowed by Twilio's OpenAPI spec: {message}"),
            );
        }
        let admitted = match self.emulator.admit(uri, headers, segments) {
            Ok(admitted) => admitted,
            Err(refused) => return refused,
        };
        let fault = self.take_fault(method, &admitted.path);
        if let Some(fault) = &fault {
            tokio::time::sleep(fault.delay).await;
        }
        if let Some(fault) = fault.filter(|f| f.status != 0) {
            let mut response = twilio_error(fault.status, fault.code, "injected by the test");
            if let Some(seconds) = fault.retry_after {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_str(&seconds.to_string()).unwrap(),
                );
            }
            return response;
        }
        let wait = match *self.latency.lock().unwrap() {
            Latency::None => Duration::ZERO,
            Latency::Fixed(latency) => latency,
            Latency::UpTo(latency) => latency.mul_f64(random_fraction()),
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        self.emulator
            .answer_admitted(method, &admitted, uri, headers, body)
            .await
    }

    async fn check_with_prism(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Option<String> {
        let prism_url = self.prism_url.as_ref()?;
        crate::prism::check(&self.http, prism_url, method, uri, headers, body).await
    }

    fn take_fault(&self, method: &Method, path: &str) -> Option<Fault> {
        let mut faults = self.faults.lock().unwrap();
        let index = faults.iter().position(|f| f.matches(method, path))?;
        faults[index].times -= 1;
        Some(faults[index].clone())
    }
}

fn random_fraction() -> f64 {
    let mut bytes = [0u8; 4];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX)
}
