//! The notification service: subscribing a context at an address (with its confirmation),
//! the webhook's door onto the queue, unsubscribe links, and the notifier behind the queue.

use std::sync::Arc;

use super::address::{Address, EmailAddress};
use super::channels::{ChannelKind, Channels};
use super::keys;
use super::links::LinkKeys;
use super::notifier::{Notifier, NotifyReport};
use super::queue::QueueMessage;
use super::store::Store;
use super::webhook::{self, WebhookOutcome, WebhookRequest};
use crate::error::{ChatError, Result};
use crate::names::required;
use crate::tokens::{AccessEnded, TokenService};

/// The service's doors (subscribe, confirm, the webhook, unsubscribe links) over the
/// notifier, whose settings, ports and channels they share.
pub struct NotificationService {
    tokens: Arc<TokenService>,
    notifier: Notifier,
}

impl NotificationService {
    pub fn new(tokens: Arc<TokenService>, notifier: Notifier) -> Self {
        Self { tokens, notifier }
    }

    fn store(&self) -> &dyn Store {
        self.notifier.ports.store.as_ref()
    }

    /// `enableChannelNotifications` (email) and `enableChannelSmsNotifications` (text):
    /// subscribes the token's identity to `context`, one the token carries, at `address`
    /// on `channel`; an address not confirmed for this identity gets a code, within the
    /// identity's limits. Answers whether the address is confirmed. A refused send stores
    /// nothing and counts nothing.
    pub async fn subscribe(
        &self,
        channel: ChannelKind,
        context: &str,
        address: &str,
        token: &str,
    ) -> Result<bool> {
        let channel = self.notifier.channels.get(channel);
        let token = required(token, "token")?;
        let context = required(context, "channel")?;
        let address = channel.parse(address)?;
        let verified = self.tokens.verified(token).await?;
        if !verified.contexts.iter().any(|c| c == context) {
            return Err(ChatError::access_denied(
                "The token does not carry this channel, so its notifications cannot be enabled.",
            ));
        }
        channel
            .subscribe(&verified.identity, context, &address)
            .await
    }

    /// `verifyEmail` and `verifyPhone`: true when `code` matches a code pending for
    /// `address`, for the token's identity when a token is given (text codes need one).
    /// A wrong code is `false`.
    pub async fn confirm(
        &self,
        channel: ChannelKind,
        address: &str,
        code: &str,
        token: Option<&str>,
    ) -> Result<bool> {
        let channel = self.notifier.channels.get(channel);
        let token = token.map(str::trim).filter(|t| !t.is_empty());
        if token.is_none() && channel.confirm_needs_token() {
            return Err(ChatError::bad_request("token is required."));
        }
        let address = channel.parse(address)?;
        channel.check_code(code)?;
        let identity = match token {
            Some(token) => Some(self.tokens.verified(token).await?.identity.clone()),
            None => None,
        };
        channel.confirm(&address, code, identity.as_deref()).await
    }

    /// The webhook: checks Twilio's signature and queues an `onMessageAdded`, or a STOP or
    /// START texted back, for the notifier.
    pub async fn receive_webhook(&self, request: &WebhookRequest<'_>) -> Result<WebhookOutcome> {
        let configured = self.notifier.settings.current().await?;
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
        self.notifier.ports.queue()?.enqueue(&message).await?;
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
            QueueMessage::Flush { .. } | QueueMessage::Sweep { .. } | QueueMessage::Event(_) => {
                Err(ChatError::internal(
                    "The webhook read something it does not queue.",
                ))
            }
        }
    }

    /// The unsubscribe link: stops `context`'s emails to `email` when its signature holds.
    /// Answers how many subscriptions ended.
    pub async fn unsubscribe(&self, context: &str, email: &str, signature: &str) -> Result<usize> {
        let email = EmailAddress::parse(email)?;
        let configured = self.notifier.settings.current().await?;
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

/// Ends an identity's subscriptions to the contexts it lost, on every channel, with their
/// pending digests: notifications follow access, from the moment provisioning takes it away.
pub struct EndSubscriptions(pub Channels, pub Arc<dyn Store>);

/// Lent by the processes that take access away (they provision: `AppBuilder::lend`), which
/// then end subscriptions with it; the others do not link the hook.
#[derive(Clone, Copy)]
pub struct EndsAccess(pub fn(Channels, Arc<dyn Store>) -> Arc<dyn AccessEnded>);

impl EndsAccess {
    pub const HOOK: EndsAccess = EndsAccess(end_subscriptions);
}

fn end_subscriptions(channels: Channels, store: Arc<dyn Store>) -> Arc<dyn AccessEnded> {
    Arc::new(EndSubscriptions(channels, store))
}

impl AccessEnded for EndSubscriptions {
    fn contexts_left<'a>(
        &'a self,
        identity: &'a str,
        contexts: &'a [String],
    ) -> futures_util::future::BoxFuture<'a, Result<usize>> {
        Box::pin(async move {
            let store = self.1.as_ref();
            let mut ended = 0;
            for context in contexts {
                for channel in self.0.all() {
                    let Some(address) = channel.subscribed_at(context, identity).await? else {
                        continue;
                    };
                    store.delete(&keys::digest(context, &address)).await?;
                    store
                        .delete(&channel.subscription_key(context, identity))
                        .await?;
                    ended += 1;
                    tracing::info!(identity, context = %context, channel = channel.kind().name(), "access ended; the subscription ended with it");
                }
            }
            Ok(ended)
        })
    }
}
