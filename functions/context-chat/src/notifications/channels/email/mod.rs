//! Email: addresses confirmed per identity by an emailed code ([`Confirmations`]), digests
//! sent through the mail port, each with its unsubscribe link.

pub mod codes;
pub mod confirmations;
pub mod links;
pub mod messages;
pub mod unsubscribe;

use std::sync::Arc;

use futures_util::future::BoxFuture;

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

    fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    async fn subscription(&self, context: &str, identity: &str) -> Result<Option<Subscription>> {
        let key = keys::subscription(context, identity);
        Ok(store::read::<Subscription>(self.store(), &key)
            .await?
            .map(|d| d.value))
    }

    async fn subscribe_email(
        &self,
        identity: &str,
        context: &str,
        email: &EmailAddress,
    ) -> Result<bool> {
        let configured = self.settings.current().await?;
        let mailer = configured.email()?;
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
        let mailer = configured.email()?;
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
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }

    fn parse(&self, address: &str) -> Result<Address> {
        EmailAddress::parse(address).map(Address::Email)
    }

    fn subscription_key(&self, context: &str, identity: &str) -> Key {
        keys::subscription(context, identity)
    }

    fn subscribers<'a>(&'a self, context: &'a str) -> BoxFuture<'a, Result<Vec<Subscriber>>> {
        Box::pin(async move {
            Ok(keys::subscriptions(self.store(), context)
                .await?
                .into_iter()
                .map(|s| Subscriber {
                    identity: s.identity,
                    address: Address::Email(s.email),
                })
                .collect())
        })
    }

    fn subscribed_at<'a>(
        &'a self,
        context: &'a str,
        identity: &'a str,
    ) -> BoxFuture<'a, Result<Option<Address>>> {
        Box::pin(async move {
            let subscription = self.subscription(context, identity).await?;
            Ok(subscription.map(|s| Address::Email(s.email)))
        })
    }

    fn confirmed<'a>(
        &'a self,
        context: &'a str,
        identity: &'a str,
        address: &'a Address,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let email = email_of(address)?;
            // A subscription that moved to another address is not this one.
            match self.subscription(context, identity).await? {
                Some(s) if s.email == *email => self.confirmations.is_confirmed(&s).await,
                _ => Ok(false),
            }
        })
    }

    fn subscribe<'a>(
        &'a self,
        identity: &'a str,
        context: &'a str,
        address: &'a Address,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            self.subscribe_email(identity, context, email_of(address)?)
                .await
        })
    }

    fn confirm_needs_token(&self) -> bool {
        false
    }

    fn check_code(&self, code: &str) -> Result<()> {
        codes::normalise(code).map(drop)
    }

    fn confirm<'a>(
        &'a self,
        address: &'a Address,
        code: &'a str,
        identity: Option<&'a str>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let configured = self.settings.current().await?;
            let codes = &LinkKeys::of(&configured)?.codes;
            self.confirmations
                .verify_email(email_of(address)?, code, identity, codes)
                .await
        })
    }

    fn deliver<'a>(&'a self, letter: Letter<'a>) -> BoxFuture<'a, Result<Delivery>> {
        Box::pin(async move { self.deliver_email(letter, email_of(letter.address)?).await })
    }

    fn refused<'a>(&'a self, _address: &'a Address) -> BoxFuture<'a, Result<usize>> {
        // A mail provider's refusal ends nothing here: the address may work tomorrow.
        Box::pin(async { Ok(0) })
    }
}
