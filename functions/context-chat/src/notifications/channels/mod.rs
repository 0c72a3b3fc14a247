//! Email and text messages as two channels of one mechanism. A channel reads its addresses,
//! keeps its subscriptions and their confirmation, and delivers a digest; the service (who
//! may subscribe: the token's identity, to a context the token carries) and the notifier
//! (who gets what, when: digests, online and read checks, access) are the same for both.
//! A new channel is a file here that implements [`Channel`] and its line in
//! [`Channels::new`].

use std::sync::Arc;

use super::digest::PendingMessage;
use super::ports::Ports;
use serde::de::DeserializeOwned;

use super::keys;
use super::store::{self, Key, Store};
use crate::address::{EmailAddress, PhoneNumber};
use crate::error::ChatError;
use crate::error::Result;
use crate::settings_holder::SettingsHolder;

pub mod email;
pub mod sms;

pub use crate::sms_gateway::Delivery;

/// Where a notification goes: an email address, or a phone number for text messages. On the
/// wire and in the store it is the address itself (a phone number starts with `+` and has
/// no `@`, an email address always has one), so digests and queued flushes written before
/// text messages existed read as emails.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub enum Address {
    Email(EmailAddress),
    Phone(PhoneNumber),
}

impl Address {
    pub fn as_str(&self) -> &str {
        match self {
            Address::Email(e) => e.as_str(),
            Address::Phone(p) => p.as_str(),
        }
    }
}

impl From<EmailAddress> for Address {
    fn from(value: EmailAddress) -> Self {
        Address::Email(value)
    }
}

impl From<PhoneNumber> for Address {
    fn from(value: PhoneNumber) -> Self {
        Address::Phone(value)
    }
}

impl TryFrom<String> for Address {
    type Error = ChatError;
    fn try_from(value: String) -> Result<Self> {
        if value.starts_with('+') && !value.contains('@') {
            PhoneNumber::parse(&value).map(Address::Phone)
        } else {
            EmailAddress::parse(&value).map(Address::Email)
        }
    }
}

impl From<Address> for String {
    fn from(value: Address) -> Self {
        match value {
            Address::Email(e) => e.into(),
            Address::Phone(p) => p.into(),
        }
    }
}

/// Which channel: names its logs, its metrics and its part of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    Email = 0,
    Sms = 1,
}

/// How many channels there are: a report keeps one [`ChannelCounts`] per channel.
pub const CHANNELS: usize = 2;

impl ChannelKind {
    /// The channel an address belongs to.
    pub fn of(address: &Address) -> Self {
        match address {
            Address::Email(_) => ChannelKind::Email,
            Address::Phone(_) => ChannelKind::Sms,
        }
    }

    pub const ALL: [ChannelKind; CHANNELS] = [ChannelKind::Email, ChannelKind::Sms];

    pub fn name(self) -> &'static str {
        match self {
            ChannelKind::Email => "email",
            ChannelKind::Sms => "sms",
        }
    }
}

/// One identity's subscription to a context on a channel, at an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub identity: String,
    pub address: Address,
}

/// What a digest says: new messages of a context, for one address.
#[derive(Clone, Copy)]
pub struct Letter<'a> {
    pub context: &'a str,
    pub address: &'a Address,
    pub pending: &'a [PendingMessage],
    /// Messages not listed.
    pub more: u32,
    /// The digest window, said in emails ("at most one email per …").
    pub window_secs: u64,
}

/// One way to reach a subscriber. Every method is about this channel's addresses only;
/// reading its subscriptions is written once, here, over its document.
#[allow(async_fn_in_trait)] // only ever called on the concrete channels, through AnyChannel
pub trait Channel: Send + Sync {
    /// The stored subscription of one identity to one context.
    type Subscription: DeserializeOwned + Send + Sync;
    /// Its sort key's prefix under the context's partition.
    const PREFIX: &'static str;

    fn kind(&self) -> ChannelKind;

    fn store(&self) -> &dyn Store;

    /// The address as a caller gave it, checked and normalised (`BadRequest` otherwise).
    fn parse(&self, address: &str) -> Result<Address>;

    /// Where `identity`'s subscription to `context` on this channel is stored.
    fn subscription_key(&self, context: &str, identity: &str) -> Key;

    /// Who a subscription is for, and where.
    fn subscriber(subscription: &Self::Subscription) -> Subscriber;

    /// Whether the subscription's address is confirmed for its identity.
    async fn is_confirmed(&self, subscription: &Self::Subscription) -> Result<bool>;

    /// Every subscription to `context` on this channel, confirmed or not.
    async fn subscribers(&self, context: &str) -> Result<Vec<Subscriber>> {
        let all = keys::parsed::<Self::Subscription>(self.store(), context, Self::PREFIX);
        Ok(all.await?.iter().map(Self::subscriber).collect())
    }

    async fn subscription(
        &self,
        context: &str,
        identity: &str,
    ) -> Result<Option<Self::Subscription>> {
        let key = self.subscription_key(context, identity);
        Ok(store::read(self.store(), &key).await?.map(|d| d.value))
    }

    /// The address `identity` subscribed `context` at, if it did.
    async fn subscribed_at(&self, context: &str, identity: &str) -> Result<Option<Address>> {
        let subscription = self.subscription(context, identity).await?;
        Ok(subscription.map(|s| Self::subscriber(&s).address))
    }

    /// Whether `identity` is subscribed to `context` at `address` (not since moved to
    /// another) and the address is confirmed for it.
    async fn confirmed(&self, context: &str, identity: &str, address: &Address) -> Result<bool> {
        match self.subscription(context, identity).await? {
            Some(s) if Self::subscriber(&s).address == *address => self.is_confirmed(&s).await,
            _ => Ok(false),
        }
    }

    /// Subscribes `identity` to `context` at `address`, sending a code when the address is
    /// not confirmed for it (within its limits). Answers whether it is confirmed.
    async fn subscribe(&self, identity: &str, context: &str, address: &Address) -> Result<bool>;

    /// Whether confirming a code needs the caller's token (text codes are bound to the
    /// identity that asked).
    fn confirm_needs_token(&self) -> bool;

    /// Checks the code's form before anything is looked up (`BadRequest` otherwise).
    fn check_code(&self, code: &str) -> Result<()>;

    /// Tries `code` for `address`, for `identity` when the caller's token named one.
    async fn confirm(&self, address: &Address, code: &str, identity: Option<&str>) -> Result<bool>;

    /// Sends the digest. `Delivery::Held`: not today (a budget is spent), the messages wait.
    async fn deliver(&self, letter: Letter<'_>) -> Result<Delivery>;

    /// The address refused for good (a number that replied STOP): ends what it had, and
    /// answers how many subscriptions ended.
    async fn refused(&self, address: &Address) -> Result<usize>;
}

/// Each channel, as one type: the dispatch is a `match`, so that only the methods a
/// function calls are linked into it.
pub enum AnyChannel {
    Email(email::EmailChannel),
    Sms(sms::SmsChannel),
}

/// [`AnyChannel`]'s methods: each calls the same method of the channel inside.
macro_rules! dispatch {
    ($(fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)* $(async fn $aname:ident(&self $(, $aarg:ident: $aty:ty)*) -> $aret:ty;)*) => {
        impl AnyChannel {
            $(pub fn $name(&self $(, $arg: $ty)*) -> $ret {
                match self {
                    AnyChannel::Email(c) => c.$name($($arg),*),
                    AnyChannel::Sms(c) => c.$name($($arg),*),
                }
            })*
            $(pub async fn $aname(&self $(, $aarg: $aty)*) -> $aret {
                match self {
                    AnyChannel::Email(c) => c.$aname($($aarg),*).await,
                    AnyChannel::Sms(c) => c.$aname($($aarg),*).await,
                }
            })*
        }
    };
}

dispatch! {
    fn kind(&self) -> ChannelKind;
    fn parse(&self, address: &str) -> Result<Address>;
    fn subscription_key(&self, context: &str, identity: &str) -> Key;
    fn confirm_needs_token(&self) -> bool;
    fn check_code(&self, code: &str) -> Result<()>;
    async fn subscribers(&self, context: &str) -> Result<Vec<Subscriber>>;
    async fn subscribed_at(&self, context: &str, identity: &str) -> Result<Option<Address>>;
    async fn confirmed(&self, context: &str, identity: &str, address: &Address) -> Result<bool>;
    async fn subscribe(&self, identity: &str, context: &str, address: &Address) -> Result<bool>;
    async fn confirm(&self, address: &Address, code: &str, identity: Option<&str>) -> Result<bool>;
    async fn deliver(&self, letter: Letter<'_>) -> Result<Delivery>;
    async fn refused(&self, address: &Address) -> Result<usize>;
}

/// The deployment's channels, each once, in [`ChannelKind`]'s order.
#[derive(Clone)]
pub struct Channels(Arc<[AnyChannel; CHANNELS]>);

impl Channels {
    pub fn new(settings: Arc<SettingsHolder>, ports: &Ports) -> Self {
        Self(Arc::new([
            AnyChannel::Email(email::EmailChannel::new(settings.clone(), ports)),
            AnyChannel::Sms(sms::SmsChannel::new(settings, ports)),
        ]))
    }

    pub fn all(&self) -> impl Iterator<Item = &AnyChannel> {
        self.0.iter()
    }

    pub fn get(&self, kind: ChannelKind) -> &AnyChannel {
        &self.0[kind as usize]
    }

    /// The channel of an address.
    pub fn of(&self, address: &Address) -> &AnyChannel {
        self.get(ChannelKind::of(address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_read_back_as_the_kind_it_was() {
        for text in ["alex@example.org", "+14155550100"] {
            let address: Address = serde_json::from_value(serde_json::json!(text)).unwrap();
            assert_eq!(address.as_str(), text);
            assert_eq!(
                serde_json::to_value(&address).unwrap(),
                serde_json::json!(text)
            );
        }
        let email: Address = serde_json::from_value(serde_json::json!("+tag@example.org")).unwrap();
        assert!(matches!(email, Address::Email(_)));
        assert!(serde_json::from_value::<Address>(serde_json::json!("+1 nope")).is_err());
    }
}
