//! The two contract operations of notifications, and the webhook's door onto the queue.

use std::sync::Arc;

use super::address::EmailAddress;
use super::codes::{self, EmailRecord, Issue};
use super::store::{self, Key, Store, Subscription};
use super::webhook::{self, WebhookOutcome, WebhookRequest};
use super::{Mailer, Queue, messages};
use crate::app::App;
use crate::context_token::now_unix;
use crate::error::{ChatError, Result};

/// What the notification operations need besides the settings: where subscriptions live,
/// the queue to the notifier, and (local mode) a mailer to use when SendGrid is not set.
#[derive(Clone)]
pub struct NotificationPorts {
    pub store: Arc<dyn Store>,
    pub queue: Option<Arc<dyn Queue>>,
    pub fallback_mailer: Option<Arc<dyn Mailer>>,
    /// Where this deployment answers HTTP (the webhook's API): emails link to
    /// `<public_url>/notifications/unsubscribe`. Without it they say to ask an administrator.
    pub public_url: Option<url::Url>,
}

impl App {
    pub(crate) fn ports(&self) -> Result<&NotificationPorts> {
        self.notifications.as_ref().ok_or_else(|| {
            ChatError::internal("Email notifications are not set up on this server.")
        })
    }

    pub(crate) fn store(&self) -> Result<&dyn Store> {
        Ok(self.ports()?.store.as_ref())
    }

    pub(crate) fn queue(&self) -> Result<&dyn Queue> {
        self.ports()?
            .queue
            .as_deref()
            .ok_or_else(|| ChatError::internal("No notification queue is set up on this server."))
    }

    /// SendGrid when its settings are there, else the fallback (local mode's outbox).
    pub(crate) async fn mailer(&self) -> Result<Arc<dyn Mailer>> {
        let runtime = self.runtime().await?;
        if let Some(mailer) = &runtime.mailer {
            return Ok(mailer.clone());
        }
        if let Err(err) = &runtime.settings.sendgrid {
            return Err(err.clone());
        }
        self.ports()?.fallback_mailer.clone().ok_or_else(|| {
            ChatError::internal(format!(
                "Email is not set up: {} and {} are missing.",
                self.settings_source()
                    .describe(crate::settings::Param::SendGridApiKey),
                self.settings_source()
                    .describe(crate::settings::Param::SendGridDomain)
            ))
        })
    }

    /// `enableChannelNotifications`: subscribes the token's identity to `channel`, a context
    /// the token carries, at `email`; sends a confirmation code to an unconfirmed address.
    /// Answers whether the address is already confirmed.
    pub async fn enable_channel_notifications(
        &self,
        channel: &str,
        email: &str,
        token: &str,
    ) -> Result<bool> {
        let token = required(token, "token")?;
        let channel = required(channel, "channel")?;
        let email = EmailAddress::parse(email)?;
        let runtime = self.runtime().await?;
        let verified = runtime.verifier.verify(token).await.inspect_err(|err| {
            tracing::info!(error_type = %err.kind, reason = %err.message, "context token refused");
        })?;
        if !verified.contexts.iter().any(|c| c == channel) {
            return Err(ChatError::access_denied(
                "The token does not carry this channel, so its notifications cannot be enabled.",
            ));
        }
        let store = self.store()?;
        let mailer = self.mailer().await?;
        let now = now_unix();
        let subscription = Subscription {
            channel: channel.to_owned(),
            identity: verified.identity.clone(),
            email: email.clone(),
            created_at: now,
        };
        let key = Key::Subscription {
            channel: channel.to_owned(),
            identity: verified.identity.clone(),
        };
        store::write_over(store, &key, &subscription).await?;

        let code = codes::new_code()?;
        let code_hash = codes::hash(&email, &code);
        let email_key = Key::Email(email.clone());
        let issued = store::update(store, &email_key, |current: Option<&EmailRecord>| {
            let (next, issued) = codes::issue(current, &email, code_hash.clone(), now);
            Ok((next.map(|n| (n, unverified_expiry(now))), issued))
        })
        .await?;
        tracing::info!(identity = %verified.identity, channel, code = ?issued, "notifications enabled");
        match issued {
            Issue::AlreadyVerified => Ok(true),
            Issue::RecentlySent => Ok(false),
            Issue::Send => {
                if let Err(err) = mailer
                    .send(&messages::confirmation(&email, channel, &code))
                    .await
                {
                    // Let the next try send a new code at once.
                    let _ = store::update(store, &email_key, |current: Option<&EmailRecord>| {
                        let next = current
                            .filter(|r| r.code.as_ref().is_some_and(|c| c.hash == code_hash))
                            .map(|r| EmailRecord {
                                code: None,
                                ..r.clone()
                            });
                        Ok((next.map(|n| (n, unverified_expiry(now))), ()))
                    })
                    .await;
                    return Err(ChatError::internal(format!(
                        "The subscription is saved, but the confirmation code could not be sent: {} Try again.",
                        err.message
                    )));
                }
                Ok(false)
            }
        }
    }

    /// `verifyEmail`: true when `code` confirms `email`.
    pub async fn verify_email(&self, email: &str, code: &str) -> Result<bool> {
        let email = EmailAddress::parse(email)?;
        let code = codes::normalise(code)?;
        let store = self.store()?;
        let now = now_unix();
        let code_hash = codes::hash(&email, &code);
        let check = store::update(
            store,
            &Key::Email(email.clone()),
            |current: Option<&EmailRecord>| {
                let (next, check) = codes::check(current, &code_hash, now);
                let expiry = |r: &EmailRecord| {
                    if r.verified {
                        None
                    } else {
                        unverified_expiry(now)
                    }
                };
                Ok((
                    next.map(|n| {
                        let e = expiry(&n);
                        (n, e)
                    }),
                    check,
                ))
            },
        )
        .await?;
        tracing::info!(result = ?check, "email confirmation tried");
        codes::answer(check)
    }

    /// The webhook: checks Twilio's signature and queues an `onMessageAdded` for the notifier.
    pub async fn receive_webhook(&self, request: &WebhookRequest<'_>) -> Result<WebhookOutcome> {
        let runtime = self.runtime().await?;
        let checker = runtime.webhook_checker.as_ref().ok_or_else(|| {
            ChatError::internal(format!(
                "Webhooks cannot be checked: {} is missing.",
                self.settings_source()
                    .describe(crate::settings::Param::AuthToken)
            ))
        })?;
        let event = webhook::read_event(request, checker).inspect_err(|err| {
            tracing::warn!(error_type = %err.kind, reason = %err.message, "webhook refused");
        })?;
        let Some(event) = event else {
            return Ok(WebhookOutcome::Ignored {
                event_type: "other".into(),
            });
        };
        self.queue()?.enqueue(&event).await?;
        tracing::info!(conversation = %event.conversation_sid, message = %event.message_sid, "message queued for notification");
        Ok(WebhookOutcome::Queued {
            message_sid: event.message_sid,
        })
    }
}

impl App {
    /// The unsubscribe link: stops `channel`'s emails to `email` when its signature holds.
    /// Answers how many subscriptions ended.
    pub async fn unsubscribe(&self, channel: &str, email: &str, signature: &str) -> Result<usize> {
        let email = EmailAddress::parse(email)?;
        let runtime = self.runtime().await?;
        let signer = runtime.unsubscribe_signer.as_ref().ok_or_else(|| {
            ChatError::internal("Unsubscribe links cannot be checked: no auth token is set.")
        })?;
        if !signer.check(channel, &email, signature) {
            return Err(ChatError::access_denied(
                "This unsubscribe link is not valid; use the one in the email, unchanged.",
            ));
        }
        let store = self.store()?;
        let mut ended = 0;
        for subscription in store.subscriptions(channel).await? {
            if subscription.email == email {
                store
                    .delete(&Key::Subscription {
                        channel: channel.to_owned(),
                        identity: subscription.identity.clone(),
                    })
                    .await?;
                ended += 1;
            }
        }
        store
            .delete(&Key::Digest {
                channel: channel.to_owned(),
                email: email.clone(),
            })
            .await?;
        tracing::info!(channel, ended, "unsubscribed by link");
        Ok(ended)
    }

    /// The unsubscribe link of an email about `channel` to `email`, when one can be made.
    pub(crate) async fn unsubscribe_link(
        &self,
        channel: &str,
        email: &EmailAddress,
    ) -> Option<String> {
        let base = self.ports().ok()?.public_url.as_ref()?;
        let runtime = self.runtime().await.ok()?;
        let signer = runtime.unsubscribe_signer.as_ref()?;
        Some(signer.link(base, channel, email))
    }
}

/// An unconfirmed address is forgotten a day after its code expires.
fn unverified_expiry(now: u64) -> Option<u64> {
    Some(now + codes::CODE_TTL_SECS + 24 * 3600)
}

fn required<'a>(value: &'a str, name: &str) -> Result<&'a str> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        Err(ChatError::bad_request(format!("{name} is required.")))
    } else {
        Ok(trimmed)
    }
}
