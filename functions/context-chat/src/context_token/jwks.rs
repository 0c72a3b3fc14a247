//! The issuer's keys, fetched over HTTP and cached. The policy is `adr/002-jwks-fetch-and-cache.md`:
//! fresh for 10 minutes; an unknown kid refetches at most once per 30 s; one fetch in
//! flight, shared by every waiting request; keys up to an hour old keep working while the
//! issuer is down.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_LENGTH};
use url::Url;

use super::keys::{KeySet, VerifyKey, parse_jwks};
use crate::error::{ChatError, Result};
use crate::http_client::is_allowed_remote_url;

#[derive(Debug, Clone, Copy)]
pub struct JwksPolicy {
    /// How long fetched keys are used without asking the issuer again.
    pub max_age: Duration,
    /// The least time between two fetches caused by unknown kids or a failing issuer.
    pub cooldown: Duration,
    /// How long fetched keys keep working while the issuer cannot be reached.
    pub stale_for: Duration,
    /// The whole fetch: connect, headers and body.
    pub timeout: Duration,
    pub max_bytes: usize,
}

impl Default for JwksPolicy {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(600),
            cooldown: Duration::from_secs(30),
            stale_for: Duration::from_secs(3600),
            timeout: Duration::from_secs(5),
            max_bytes: 256 * 1024,
        }
    }
}

/// An HTTP client fit for fetching key sets: it follows at most three redirects, and only
/// to the same host over an allowed scheme.
pub fn http_client() -> reqwest::Client {
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        let first_host = attempt
            .previous()
            .first()
            .and_then(|u| u.host_str().map(str::to_owned));
        if attempt.previous().len() > 3 {
            attempt.error("too many redirects")
        } else if attempt.url().host_str().map(str::to_owned) != first_host {
            attempt.error("redirect to another host")
        } else if !is_allowed_remote_url(attempt.url()) {
            attempt.error("redirect to a disallowed scheme")
        } else {
            attempt.follow()
        }
    });
    crate::http_client::builder()
        .redirect(redirects)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

#[derive(Default)]
struct CacheState {
    keys: Arc<KeySet>,
    /// When `keys` were fetched; `None` until the first success.
    fetched_at: Option<Instant>,
    /// When the last fetch, successful or not, ended.
    attempted_at: Option<Instant>,
    /// Whether that last fetch failed.
    last_failed: bool,
    /// Bumped by every fetch, so a request that waited for one knows it happened.
    generation: u64,
}

pub struct JwksCache {
    url: Url,
    client: reqwest::Client,
    policy: JwksPolicy,
    state: RwLock<Arc<CacheState>>,
    fetch_lock: tokio::sync::Mutex<()>,
}

impl JwksCache {
    pub fn new(url: Url, client: reqwest::Client, policy: JwksPolicy) -> Self {
        Self {
            url,
            client,
            policy,
            state: RwLock::default(),
            fetch_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// A cache that holds `keys` and never fetches: a key set known up front (the fuzz
    /// targets verify against one).
    pub fn fixed(keys: KeySet) -> Self {
        // About 136 years: never old, never cooled down.
        let forever = Duration::from_secs(u64::from(u32::MAX));
        let policy = JwksPolicy {
            max_age: forever,
            cooldown: forever,
            stale_for: forever,
            ..JwksPolicy::default()
        };
        let now = Instant::now();
        let cache = Self::new(
            Url::parse("http://127.0.0.1/fixed-key-set").expect("a valid URL"),
            reqwest::Client::new(),
            policy,
        );
        if let Ok(mut state) = cache.state.write() {
            *state = Arc::new(CacheState {
                keys: Arc::new(keys),
                fetched_at: Some(now),
                attempted_at: Some(now),
                last_failed: false,
                generation: 1,
            });
        }
        cache
    }

    fn snapshot(&self) -> Arc<CacheState> {
        self.state.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// Fetches the key set if it has never been fetched.
    pub async fn prefetch(&self) -> Result<()> {
        let state = self.snapshot();
        if state.fetched_at.is_some() {
            return Ok(());
        }
        self.refresh(state.generation).await
    }

    /// The key for `kid`, fetching the key set when it is missing, old, or lacks that kid.
    pub async fn key(&self, kid: &str) -> Result<Arc<VerifyKey>> {
        let state = self.snapshot();
        let now = Instant::now();
        let age = |at: Option<Instant>| at.map(|t| now.saturating_duration_since(t));
        let fresh = age(state.fetched_at).is_some_and(|a| a < self.policy.max_age);
        let usable_stale = age(state.fetched_at).is_some_and(|a| a < self.policy.stale_for);
        let cooling = age(state.attempted_at).is_some_and(|a| a < self.policy.cooldown);

        if fresh {
            if let Some(key) = state.keys.get(kid) {
                return Ok(key.clone());
            }
            if !cooling {
                // A kid we do not know may be a key the issuer just rotated in.
                let _ = self.refresh(state.generation).await;
                if let Some(key) = self.snapshot().keys.get(kid) {
                    return Ok(key.clone());
                }
            }
            return Err(unknown_kid());
        }

        // Old or never fetched. While a recent fetch failed, serve the stale keys
        // instead of asking a down issuer again on every request; with none usable,
        // answer at once rather than start another long fetch.
        if state.last_failed && cooling {
            if usable_stale {
                return state.keys.get(kid).cloned().ok_or_else(unknown_kid);
            }
            return Err(issuer_unreachable());
        }
        match self.refresh(state.generation).await {
            Ok(()) => self
                .snapshot()
                .keys
                .get(kid)
                .cloned()
                .ok_or_else(unknown_kid),
            Err(err) => {
                let state = self.snapshot();
                let stale_ok = state
                    .fetched_at
                    .is_some_and(|t| t.elapsed() < self.policy.stale_for);
                if stale_ok {
                    tracing::warn!(
                        jwks_host = self.url.host_str(),
                        "using cached keys while the issuer cannot be reached"
                    );
                    state.keys.get(kid).cloned().ok_or_else(unknown_kid)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Fetches the key set unless another request fetched it since `seen_generation`, in
    /// which case it waits for that fetch and reports its outcome.
    async fn refresh(&self, seen_generation: u64) -> Result<()> {
        let _one_at_a_time = self.fetch_lock.lock().await;
        let state = self.snapshot();
        if state.generation != seen_generation {
            return if state.last_failed {
                Err(issuer_unreachable())
            } else {
                Ok(())
            };
        }
        let started = Instant::now();
        let outcome = self.fetch().await;
        let now = Instant::now();
        let next = match outcome {
            Ok(keys) => {
                tracing::info!(
                    jwks_host = self.url.host_str(),
                    keys = keys.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "fetched the issuer's keys"
                );
                CacheState {
                    keys: Arc::new(keys),
                    fetched_at: Some(now),
                    attempted_at: Some(now),
                    last_failed: false,
                    generation: state.generation + 1,
                }
            }
            Err(reason) => {
                tracing::error!(
                    jwks_host = self.url.host_str(),
                    jwks_path = self.url.path(),
                    reason = %reason,
                    "fetching the issuer's keys failed"
                );
                CacheState {
                    keys: state.keys.clone(),
                    fetched_at: state.fetched_at,
                    attempted_at: Some(now),
                    last_failed: true,
                    generation: state.generation + 1,
                }
            }
        };
        let failed = next.last_failed;
        if let Ok(mut slot) = self.state.write() {
            *slot = Arc::new(next);
        }
        if failed {
            Err(issuer_unreachable())
        } else {
            Ok(())
        }
    }

    /// One GET of the JWKS URL. The error is a reason for the log, free of key material.
    async fn fetch(&self) -> std::result::Result<KeySet, String> {
        let mut response = self
            .client
            .get(self.url.clone())
            .header(ACCEPT, "application/json")
            .timeout(self.policy.timeout)
            .send()
            .await
            .map_err(describe_reqwest_error)?;
        if !response.status().is_success() {
            return Err(format!(
                "the issuer answered HTTP {}",
                response.status().as_u16()
            ));
        }
        let too_big = || format!("the JWKS is larger than {} bytes", self.policy.max_bytes);
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > self.policy.max_bytes) {
            return Err(too_big());
        }
        let mut body = Vec::with_capacity(declared.unwrap_or(4096).min(self.policy.max_bytes));
        while let Some(chunk) = response.chunk().await.map_err(describe_reqwest_error)? {
            if body.len() + chunk.len() > self.policy.max_bytes {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        let (keys, skipped) = parse_jwks(&body)?;
        for reason in &skipped {
            tracing::warn!(jwks_host = self.url.host_str(), reason = %reason, "skipped a key of the JWKS");
        }
        if keys.is_empty() {
            return Err("the JWKS holds no usable key".into());
        }
        Ok(keys)
    }
}

fn describe_reqwest_error(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "the issuer did not answer in time".into()
    } else if e.is_redirect() {
        "the issuer redirected somewhere not allowed".into()
    } else if e.is_connect() {
        "the issuer could not be reached".into()
    } else {
        format!("the request failed ({})", e.without_url())
    }
}

fn unknown_kid() -> ChatError {
    ChatError::access_denied("The token was signed with a key the issuer does not publish.")
}

fn issuer_unreachable() -> ChatError {
    ChatError::internal("The token issuer's keys could not be fetched; try again shortly.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fixed_key_set_answers_its_kids_and_never_fetches() {
        let doc = br#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","alg":"EdDSA",
            "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        let (keys, skipped) = parse_jwks(doc).unwrap();
        assert!(skipped.is_empty(), "{skipped:?}");
        let cache = JwksCache::fixed(keys);
        assert!(cache.key("k1").await.is_ok());
        // An unknown kid would send a normal cache to the issuer; this one answers at once.
        let Err(err) = cache.key("k2").await else {
            panic!("an unknown kid is refused")
        };
        assert_eq!(err.kind, crate::ErrorKind::AccessDenied, "{err}");
        assert_eq!(cache.snapshot().generation, 1, "nothing was fetched");
    }
}
