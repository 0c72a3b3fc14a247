//! Email: addresses confirmed per identity by an emailed code ([`Confirmations`]), digests
//! sent through the mail port, each with its unsubscribe link.

pub mod codes;
pub mod confirmations;
pub mod links;
pub mod messages;
pub mod settings;
pub mod unsubscribe;

use std::sync::Arc;

use super::{Channel, ChannelKind, Delivery, Letter, Subscriber};
use crate::clock::now_unix;
use crate::error::{ChatError, Result};
use crate::notifications::address::{Address, EmailAddress};
use crate::notifications::keys::{self, Subscription};
use crate::notifications::ports::Ports;
use crate::notifications::store::{self, Key, Store};
use crate::settings_holder::SettingsHolder;
use codes::Issue;
use confirmations::Confirmations;
use links::LinkKeys;

pub struct EmailChannel {
    settings: Arc<SettingsHolder>,
    store: Arc<dyn Store>,
    confirmations: Confirmations,
    /// Where unsubscribe links point (`<public_url>/notifications/unsubscribe`).
    public_url: Option<url::Url>,
}

impl EmailChannel {
    pub fn new(settings: Arc<SettingsHolder>, ports: &Ports) -> Self {
        Self {
            settings,
            store: ports.store.clone(),
            confirmations: Confirmations::new(ports.store.clone()),
            public_url: ports.public_url.clone(),
        }
    }

    async fn subscribe_email(
        &self,
        identity: &str,
        context: &str,
        email: &EmailAddress,
    ) -> Result<bool> {
        let configured = self.settings.current().await?;
        let mailer = settings::mailer(&configured)?;
        let links = LinkKeys::of(&configured)?;
        let subscription = Subscription {
            context: context.to_owned(),
            identity: identity.to_owned(),
            email: email.clone(),
            created_at: now_unix(),
            per_identity: true,
        };
        let previous = self.subscription(context, identity).await?;
        let carried = self
            .confirmations
            .carry_over(identity, email, previous.as_ref())
            .await?;
        let key = keys::subscription(context, identity);
        store::write_over(self.store(), &key, &subscription).await?;
        if carried {
            tracing::info!(
                identity,
                context,
                "notifications enabled; address confirmed before"
            );
            return Ok(true);
        }
        let issued = self
            .confirmations
            .send_code(identity, email, context, mailer.as_ref(), &links.codes)
            .await;
        tracing::info!(identity, context, code = ?issued.as_ref().ok(), "notifications enabled");
        Ok(issued? == Issue::AlreadyVerified)
    }

    async fn deliver_email(&self, letter: Letter<'_>, email: &EmailAddress) -> Result<Delivery> {
        let configured = self.settings.current().await?;
        // Every email carries its way out: without the link secret, none is sent.
        let links = LinkKeys::of(&configured)?;
        let link = self
            .public_url
            .as_ref()
            .map(|base| links.unsubscribe.link(base, letter.context, email));
        let mail = messages::new_messages(
            email,
            letter.context,
            letter.pending,
            letter.more,
            letter.window_secs,
            link.as_deref(),
        );
        let mailer = settings::mailer(&configured)?;
        mailer.send(&mail).await.map(|()| Delivery::Accepted)
    }
}

/// The channel's own address, or an internal error: the notifier hands each channel its
/// own addresses.
fn email_of(address: &Address) -> Result<&EmailAddress> {
    match address {
        Address::Email(email) => Ok(email),
        _ => Err(ChatError::internal(
            "The email channel was handed another channel's address.",
        )),
    }
}

impl Channel for EmailChannel {
    type Subscription = Subscription;
    const PREFIX: &'static str = keys::SUBSCRIPTION_PREFIX;

    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }

    fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    fn parse(&self, address: &str) -> Result<Address> {
        EmailAddress::parse(address).map(Address::Email)
    }

    fn subscription_key(&self, context: &str, identity: &str) -> Key {
        keys::subscription(context, identity)
    }

    fn subscriber(s: &Subscription) -> Subscriber {
        let address = Address::Email(s.email.clone());
        Subscriber {
            identity: s.identity.clone(),
            address,
        }
    }

    async fn is_confirmed(&self, subscription: &Subscription) -> Result<bool> {
        self.confirmations.is_confirmed(subscription).await
    }

    async fn subscribe(&self, identity: &str, context: &str, address: &Address) -> Result<bool> {
        self.subscribe_email(identity, context, email_of(address)?)
            .await
    }

    fn confirm_needs_token(&self) -> bool {
        false
    }

    fn check_code(&self, code: &str) -> Result<()> {
        codes::normalise(code).map(drop)
    }

    async fn confirm(&self, address: &Address, code: &str, identity: Option<&str>) -> Result<bool> {
        let configured = self.settings.current().await?;
        let codes = &LinkKeys::of(&configured)?.codes;
        self.confirmations
            .verify_email(email_of(address)?, code, identity, codes)
            .await
    }

    async fn deliver(&self, letter: Letter<'_>) -> Result<Delivery> {
        self.deliver_email(letter, email_of(letter.address)?).await
    }

    async fn refused(&self, _address: &Address) -> Result<usize> {
        // A mail provider's refusal ends nothing here: the address may work tomorrow.
        Ok(0)
    }
}
