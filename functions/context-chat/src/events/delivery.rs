//! Sending one queued event: signed anew for each attempt (the id and payload stay), a 2xx
//! answer within ten seconds is delivered; anything else is tried again after 1 s, 2 s, 4 s …
//! up to 15 minutes (SQS's longest delay) between tries, and dead-lettered when a day has
//! passed since the first.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use secrecy::SecretString;
use serde_json::json;
use url::Url;

use super::signing::SigningKey;
use super::{Delivery, EventJournal, EventQueue, EventSettings};
use crate::error::Result;
use crate::feature::Feature;
use crate::metrics::{self, Counter};
use crate::settings::{Param, Section, Settings};
use crate::settings_holder::SettingsHolder;

#[derive(Debug, Clone, Copy)]
pub struct DeliveryPolicy {
    /// The wait after the first failed attempt; each next one doubles it.
    pub first_retry: Duration,
    pub max_delay: Duration,
    /// Since the first attempt: after it an event is dead-lettered.
    pub give_up_after: Duration,
    /// For the platform's answer, connecting included.
    pub timeout: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            first_retry: Duration::from_secs(1),
            max_delay: Duration::from_secs(900),
            give_up_after: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(10),
        }
    }
}

impl DeliveryPolicy {
    /// The wait after failed attempt `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doubled = self
            .first_retry
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(30)));
        doubled.min(self.max_delay)
    }
}

/// What the deliverer reads: where events go and the key that signs them.
pub struct DeliverySettings {
    pub url: Url,
    pub key: SigningKey,
}

impl DeliverySettings {
    pub fn of(settings: &Settings) -> Feature<DeliverySettings> {
        let Some(r) = settings.section(Section::EventDelivery) else {
            return Feature::Off("this process does not send events".into());
        };
        let read = || -> Result<Option<DeliverySettings>> {
            let Some(on) = EventSettings::of(settings).into_section()? else {
                return Ok(None);
            };
            let secret = r.required(Param::EventsSecret)?;
            let key = SigningKey::parse(&SecretString::from(secret.to_owned()))
                .map_err(|e| r.invalid(Param::EventsSecret, &e.message))?;
            Ok(Some(DeliverySettings { url: on.url, key }))
        };
        Feature::from_section(read(), || {
            format!("{} is not set", r.name(Param::EventsUrl))
        })
    }
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Tried again after this long.
    Retry(Duration),
    DeadLettered,
    /// Events were turned off since it was queued.
    Dropped,
}

pub struct Deliverer {
    settings: Arc<SettingsHolder>,
    queue: Option<Arc<dyn EventQueue>>,
    journal: Option<EventJournal>,
    policy: DeliveryPolicy,
    http: OnceLock<reqwest::Client>,
}

impl Deliverer {
    pub fn new(
        settings: Arc<SettingsHolder>,
        queue: Option<Arc<dyn EventQueue>>,
        journal: Option<EventJournal>,
        policy: DeliveryPolicy,
    ) -> Self {
        Self {
            settings,
            queue,
            journal,
            policy,
            http: OnceLock::new(),
        }
    }

    /// One client per process, following no redirect: the platform's URL is the one named.
    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            crate::http_client::builder()
                .timeout(self.policy.timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default()
        })
    }

    /// Sends `delivery` once; on failure queues the next try, or dead-letters it. An error
    /// means the queue could not be written: the record is handed back as it was.
    pub async fn deliver(&self, delivery: &Delivery) -> Result<Outcome> {
        let configured = self.settings.current().await?;
        let target = match DeliverySettings::of(&configured.settings) {
            Feature::On(target) => target,
            Feature::Off(why) => {
                tracing::warn!(id = %delivery.id, why, "events are off; an event queued before is dropped");
                return Ok(Outcome::Dropped);
            }
            Feature::Misconfigured(err) => {
                tracing::error!(reason = %err.message, "events are misconfigured");
                return Err(crate::feature::not_configured("Events"));
            }
        };
        let sent = self.send(&target, delivery).await;
        let failure = match sent {
            Ok(()) => {
                metrics::count(Counter::EventsDelivered);
                tracing::info!(id = %delivery.id, kind = %delivery.kind, attempt = delivery.attempt, "event delivered");
                self.journal(delivery, "delivered", json!({}));
                return Ok(Outcome::Delivered);
            }
            Err(failure) => failure,
        };
        metrics::count(Counter::EventsFailedAttempts);
        let queue = self
            .queue
            .as_deref()
            .ok_or_else(|| crate::feature::not_configured("The events queue"))?;
        let delay = self.policy.delay(delivery.attempt);
        let waited = crate::clock::now_unix().saturating_sub(delivery.first_at);
        if Duration::from_secs(waited) + delay > self.policy.give_up_after {
            queue.dead_letter(delivery.clone()).await?;
            metrics::count(Counter::EventsDeadLettered);
            tracing::error!(id = %delivery.id, kind = %delivery.kind, attempts = delivery.attempt, failure, "event dead-lettered: the platform did not take it within a day");
            self.journal(delivery, "deadLettered", json!({"failure": failure}));
            return Ok(Outcome::DeadLettered);
        }
        let next = Delivery {
            attempt: delivery.attempt + 1,
            ..delivery.clone()
        };
        queue.send_event(next, delay).await?;
        tracing::warn!(id = %delivery.id, kind = %delivery.kind, attempt = delivery.attempt, failure, retry_in_ms = delay.as_millis() as u64, "event not taken; will try again");
        self.journal(
            delivery,
            "failed",
            json!({"failure": failure, "retryInMs": delay.as_millis() as u64}),
        );
        Ok(Outcome::Retry(delay))
    }

    /// Why the platform did not take it (an HTTP status, or no answer), never its body.
    async fn send(
        &self,
        target: &DeliverySettings,
        delivery: &Delivery,
    ) -> std::result::Result<(), String> {
        let timestamp = crate::clock::now_unix();
        let signature = target.key.sign(&delivery.id, timestamp, &delivery.payload);
        let answer = self
            .http()
            .post(target.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", &delivery.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(delivery.payload.clone())
            .send()
            .await;
        match answer {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!("HTTP {}", response.status().as_u16())),
            Err(err) if err.is_timeout() => Err("no answer in time".into()),
            Err(_) => Err("no connection".into()),
        }
    }

    fn journal(&self, delivery: &Delivery, status: &str, more: serde_json::Value) {
        if let Some(journal) = &self.journal {
            let mut line = json!({"id": delivery.id, "type": delivery.kind, "status": status, "attempt": delivery.attempt});
            if let (Some(line), serde_json::Value::Object(more)) = (line.as_object_mut(), more) {
                line.extend(more);
            }
            journal.write(&line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_second_to_fifteen_minutes() {
        let policy = DeliveryPolicy::default();
        let delays: Vec<u64> = (1..=12).map(|a| policy.delay(a).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]);
        assert_eq!(policy.delay(u32::MAX), policy.max_delay);
    }
}
