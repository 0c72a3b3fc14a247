//! The notification service: subscribing a context at an address (with its confirmation),
//! the webhook's door onto the queue, unsubscribe links, and the notifier behind the queue.

use std::sync::Arc;

use super::address::{Address, EmailAddress, PhoneNumber};
use super::budget::{SmsBudgets, Spending};
use super::codes::Issue;
use super::confirmations::Confirmations;
use super::keys::{self, SmsSubscription, Subscription};
use super::links::LinkKeys;
use super::notifier::{Notifier, NotifyOptions, NotifyReport};
use super::phones::Phones;
use super::ports::NotificationPorts;
use super::queue::QueueMessage;
use super::records::Records;
use super::sms::refusals;
use super::store::{self, Store};
use super::webhook::{self, WebhookOutcome, WebhookRequest};
use crate::clock::now_unix;
use crate::error::{ChatError, Result};
use crate::names::required;
use crate::settings_holder::SettingsHolder;
use crate::tokens::{AccessEnded, TokenService};

pub struct NotificationService {
    tokens: Arc<TokenService>,
    settings: Arc<SettingsHolder>,
    ports: NotificationPorts,
    records: Arc<Records>,
    notifier: Notifier,
}

impl NotificationService {
    pub fn new(
        tokens: Arc<TokenService>,
        settings: Arc<SettingsHolder>,
        ports: NotificationPorts,
        options: NotifyOptions,
    ) -> Self {
        let records = Arc::new(Records {
            confirmations: Confirmations::new(ports.store.clone()),
            phones: Phones::new(ports.store.clone()),
            budgets: SmsBudgets::new(ports.store.clone()),
        });
        Self {
            notifier: Notifier::new(settings.clone(), ports.clone(), records.clone(), options),
            records,
            tokens,
            settings,
            ports,
        }
    }

    fn store(&self) -> &dyn Store {
        self.ports.store.as_ref()
    }

    /// `enableChannelNotifications`: subscribes the token's identity to `context`, one the
    /// token carries, at `email`; sends a confirmation code to an unconfirmed address.
    /// Answers whether the address is already confirmed.
    pub async fn subscribe(&self, context: &str, email: &str, token: &str) -> Result<bool> {
        let token = required(token, "token")?;
        let context = required(context, "channel")?;
        let email = EmailAddress::parse(email)?;
        let verified = self.tokens.verified(token).await?;
        if !verified.contexts.iter().any(|c| c == context) {
            return Err(ChatError::access_denied(
                "The token does not carry this channel, so its notifications cannot be enabled.",
            ));
        }
        let configured = self.settings.current().await?;
        let mailer = configured.email.clone()?;
        let links = LinkKeys::of(&configured)?;
        let codes = &links.codes;
        let subscription = Subscription {
            context: context.to_owned(),
            identity: verified.identity.clone(),
            email: email.clone(),
            created_at: now_unix(),
            per_identity: true,
        };
        let key = keys::subscription(context, &verified.identity);
        let previous = store::read::<Subscription>(self.store(), &key).await?;
        let carried = self
            .records
            .confirmations
            .carry_over(
                &verified.identity,
                &email,
                previous.as_ref().map(|p| &p.value),
            )
            .await?;
        store::write_over(self.store(), &key, &subscription).await?;
        if carried {
            tracing::info!(identity = %verified.identity, context, "notifications enabled; address confirmed before");
            return Ok(true);
        }
        let issued = self
            .records
            .confirmations
            .send_code(&verified.identity, &email, context, mailer.as_ref(), codes)
            .await;
        tracing::info!(identity = %verified.identity, context, code = ?issued.as_ref().ok(), "notifications enabled");
        Ok(issued? == Issue::AlreadyVerified)
    }

    /// `enableChannelSmsNotifications`: subscribes the token's identity to `context`, one
    /// the token carries, at `phone`; a number not verified for this identity gets a code
    /// from Verify, within the identity's limits ([`super::phones`]). Answers whether the
    /// number is verified. A refused send stores nothing and counts nothing.
    pub async fn subscribe_sms(&self, context: &str, phone: &str, token: &str) -> Result<bool> {
        let token = required(token, "token")?;
        let context = required(context, "channel")?;
        let phone = PhoneNumber::parse(phone)?;
        let verified = self.tokens.verified(token).await?;
        if !verified.contexts.iter().any(|c| c == context) {
            return Err(ChatError::access_denied(
                "The token does not carry this channel, so its notifications cannot be enabled.",
            ));
        }
        let configured = self.settings.current().await?;
        let sms = configured.sms.clone()?;
        let policy = configured.settings.sms_policy.clone()?;
        policy.check_country(&phone)?;
        if self.records.phones.has_stopped(&phone).await? {
            return Err(refusals::replied_stop());
        }
        let identity = verified.identity.as_str();
        let key = keys::sms_subscription(context, identity);
        let subscription = SmsSubscription {
            context: context.to_owned(),
            identity: identity.to_owned(),
            phone: phone.clone(),
            created_at: now_unix(),
        };
        if self.records.phones.is_verified(&phone, identity).await? {
            self.records
                .phones
                .add_context(&phone, identity, context)
                .await?;
            store::write_over(self.store(), &key, &subscription).await?;
            tracing::info!(
                identity,
                context,
                "text notifications enabled; number verified before"
            );
            return Ok(true);
        }
        match self.records.phones.admit(identity, &phone).await? {
            Some(previous) => {
                // The deployment's budgets after the identity's: an identity over its own
                // limit spends none of everyone's.
                if let Err(err) = self
                    .records
                    .budgets
                    .spend(Spending::Code, &phone, &policy)
                    .await
                {
                    self.records
                        .phones
                        .release(identity, &phone, previous)
                        .await;
                    return Err(err);
                }
                if let Err(err) = sms.start_verification(&phone).await {
                    // Given back only when Verify refused for good (its coded 4xx); after a
                    // timeout or a 5xx the code may have gone out (issue 30, M3).
                    if err.kind != crate::ErrorKind::InternalError {
                        self.records
                            .phones
                            .release(identity, &phone, previous)
                            .await;
                    }
                    tracing::info!(identity, context, error_type = %err.kind, "no verification code sent");
                    return Err(err);
                }
                self.records.phones.code_sent(&phone, identity).await?;
                crate::metrics::count(crate::metrics::Counter::PhoneCodesSent);
            }
            // A code went out a moment ago: that one still serves.
            None => tracing::info!(
                identity,
                context,
                "a code was sent a moment ago; none sent again"
            ),
        }
        self.records
            .phones
            .add_context(&phone, identity, context)
            .await?;
        store::write_over(self.store(), &key, &subscription).await?;
        tracing::info!(
            identity,
            context,
            "text notifications enabled; verification code sent"
        );
        Ok(false)
    }

    /// `verifyPhone`: checks `code` with Verify for a number this identity asked a code for,
    /// and binds the number to the identity when it matches. A wrong code is `false`.
    pub async fn verify_phone(&self, phone: &str, code: &str, token: &str) -> Result<bool> {
        let token = required(token, "token")?;
        let phone = PhoneNumber::parse(phone)?;
        let code = code.trim();
        if !(4..=10).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ChatError::bad_request(
                "code must be the digits of the text message (4 to 10).",
            ));
        }
        let identity = self.tokens.verified(token).await?.identity.clone();
        let sms = self.settings.current().await?.sms.clone()?;
        match self.records.phones.record(&phone, &identity).await? {
            Some(record) if record.verified => return Ok(true),
            // Only the identity that asked for the code may use it.
            None => return Err(refusals::no_pending_code()),
            Some(_) => {}
        }
        // Counted per (identity, number) before Verify, which counts per number only.
        self.records.phones.count_check(&phone, &identity).await?;
        let matched = sms.check_verification(&phone, code).await?;
        if matched {
            self.records.phones.verified(&phone, &identity).await?;
            crate::metrics::count(crate::metrics::Counter::PhonesVerified);
        }
        tracing::info!(identity = %identity, matched, "phone code checked");
        Ok(matched)
    }

    /// `verifyEmail`: true when `code` matches a code pending for `email`, for the token's
    /// identity when a token is given.
    pub async fn verify_email(&self, email: &str, code: &str, token: Option<&str>) -> Result<bool> {
        let identity = match token.map(str::trim).filter(|t| !t.is_empty()) {
            Some(token) => Some(self.tokens.verified(token).await?.identity.clone()),
            None => None,
        };
        let configured = self.settings.current().await?;
        self.records
            .confirmations
            .verify_email(
                email,
                code,
                identity.as_deref(),
                &LinkKeys::of(&configured)?.codes,
            )
            .await
    }

    /// The webhook: checks Twilio's signature and queues an `onMessageAdded`, or a STOP or
    /// START texted back, for the notifier.
    pub async fn receive_webhook(&self, request: &WebhookRequest<'_>) -> Result<WebhookOutcome> {
        let configured = self.settings.current().await?;
        let read = webhook::read_event(request, configured.signatures()?).inspect_err(|err| {
            crate::metrics::error(crate::metrics::ErrorCounter::WebhooksRefused, err.kind);
            tracing::warn!(error_type = %err.kind, reason = %err.message, "webhook refused");
        })?;
        let Some(message) = read else {
            return Ok(WebhookOutcome::Ignored {
                event_type: "other".into(),
            });
        };
        let message = match message {
            webhook::Inbound::Message(event) => QueueMessage::Message(event),
            webhook::Inbound::SmsReply(reply) => QueueMessage::SmsReply(reply),
        };
        self.ports.queue()?.enqueue(&message).await?;
        match message {
            QueueMessage::SmsReply(reply) => {
                tracing::info!(message = %reply.message_sid, opt_in = reply.opt_in, "a STOP or START texted back queued");
                Ok(WebhookOutcome::ReplyQueued {
                    message_sid: reply.message_sid,
                })
            }
            QueueMessage::Message(event) => {
                tracing::info!(conversation = %event.conversation_sid, message = %event.message_sid, "message queued for notification");
                Ok(WebhookOutcome::Queued {
                    message_sid: event.message_sid,
                })
            }
            QueueMessage::Flush { .. } | QueueMessage::Sweep { .. } => Err(ChatError::internal(
                "The webhook read something it does not queue.",
            )),
        }
    }

    /// The unsubscribe link: stops `context`'s emails to `email` when its signature holds.
    /// Answers how many subscriptions ended.
    pub async fn unsubscribe(&self, context: &str, email: &str, signature: &str) -> Result<usize> {
        let email = EmailAddress::parse(email)?;
        let configured = self.settings.current().await?;
        if !LinkKeys::of(&configured)?.check_unsubscribe(context, &email, signature) {
            return Err(ChatError::access_denied(
                "This unsubscribe link is not valid; use the one in the email, unchanged.",
            ));
        }
        let store = self.store();
        let mut ended = 0;
        for subscription in keys::subscriptions(store, context).await? {
            if subscription.email == email {
                store
                    .delete(&keys::subscription(context, &subscription.identity))
                    .await?;
                ended += 1;
            }
        }
        store
            .delete(&keys::digest(context, &Address::Email(email.clone())))
            .await?;
        tracing::info!(context, ended, "unsubscribed by link");
        Ok(ended)
    }

    /// Handles one message from the notifier's queue (see [`Notifier::notify`]).
    pub async fn notify(&self, message: &QueueMessage) -> Result<NotifyReport> {
        self.notifier.notify(message).await
    }
}

/// Ends an identity's subscriptions to the contexts it lost, with their pending digests:
/// email follows access, from the moment provisioning takes it away.
pub struct EndSubscriptions(pub Arc<dyn Store>);

impl AccessEnded for EndSubscriptions {
    fn contexts_left<'a>(
        &'a self,
        identity: &'a str,
        contexts: &'a [String],
    ) -> futures_util::future::BoxFuture<'a, Result<usize>> {
        Box::pin(async move {
            let store = self.0.as_ref();
            let mut ended = 0;
            for context in contexts {
                let key = keys::subscription(context, identity);
                let sms_key = keys::sms_subscription(context, identity);
                let email = store::read::<Subscription>(store, &key).await?;
                let sms = store::read::<SmsSubscription>(store, &sms_key).await?;
                let ended_here = [
                    email.map(|s| (key, Address::Email(s.value.email))),
                    sms.map(|s| (sms_key, Address::Phone(s.value.phone))),
                ];
                for (key, address) in ended_here.into_iter().flatten() {
                    store.delete(&keys::digest(context, &address)).await?;
                    store.delete(&key).await?;
                    ended += 1;
                    tracing::info!(identity, context = %context, "access ended; the subscription ended with it");
                }
            }
            Ok(ended)
        })
    }
}
