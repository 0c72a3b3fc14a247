//! Text messages: numbers verified per identity by Verify's code, within our limits
//! ([`Phones`]) and the deployment's daily budgets ([`SmsBudgets`]); digests sent as one
//! text through the SMS port; a number that replied STOP ends everything it had.

pub mod budget;
pub mod phones;
pub mod policy;
pub mod settings;
pub mod texts;
pub mod twilio;

use std::sync::Arc;

use super::{Channel, ChannelKind, Delivery, Letter, Subscriber};
use crate::clock::now_unix;
use crate::error::{ChatError, ErrorKind, Result};
use crate::notifications::address::{Address, PhoneNumber};
use crate::notifications::keys::{self, SmsSubscription};
use crate::notifications::ports::Ports;
use crate::notifications::store::{self, Key, Store};
use crate::settings_holder::SettingsHolder;
use budget::{SmsBudgets, Spending};
use phones::Phones;
use texts::refusals;

pub struct SmsChannel {
    settings: Arc<SettingsHolder>,
    store: Arc<dyn Store>,
    phones: Phones,
    budgets: SmsBudgets,
}

impl SmsChannel {
    pub fn new(settings: Arc<SettingsHolder>, ports: &Ports) -> Self {
        Self {
            settings,
            store: ports.store.clone(),
            phones: Phones::new(ports.store.clone()),
            budgets: SmsBudgets::new(ports.store.clone()),
        }
    }

    async fn subscribe_number(
        &self,
        identity: &str,
        context: &str,
        phone: &PhoneNumber,
    ) -> Result<bool> {
        let configured = self.settings.current().await?;
        let sms = settings::gateway(&configured)?;
        let policy = policy::policy(&configured)?;
        policy.check_country(phone)?;
        if self.phones.has_stopped(phone).await? {
            return Err(refusals::replied_stop());
        }
        let verified = self.phones.is_verified(phone, identity).await?;
        if !verified {
            self.send_code(sms.as_ref(), &policy, identity, phone)
                .await
                .inspect_err(|err| {
                    tracing::info!(identity, context, error_type = %err.kind, "no verification code sent");
                })?;
        }
        self.phones.add_context(phone, identity, context).await?;
        let subscription = SmsSubscription {
            context: context.to_owned(),
            identity: identity.to_owned(),
            phone: phone.clone(),
            created_at: now_unix(),
        };
        let key = keys::sms_subscription(context, identity);
        store::write_over(self.store(), &key, &subscription).await?;
        tracing::info!(identity, context, verified, "text notifications enabled");
        Ok(verified)
    }

    /// A code for `phone` from Verify, within the identity's limits and then the
    /// deployment's budgets (an identity over its own limit spends none of everyone's); none
    /// when one went out a moment ago (that one still serves).
    async fn send_code(
        &self,
        sms: &dyn crate::sms_gateway::SmsGateway,
        policy: &policy::SmsPolicy,
        identity: &str,
        phone: &PhoneNumber,
    ) -> Result<()> {
        let Some(previous) = self.phones.admit(identity, phone).await? else {
            tracing::info!(identity, "a code was sent a moment ago; none sent again");
            return Ok(());
        };
        if let Err(err) = self.budgets.spend(Spending::Code, phone, policy).await {
            self.phones.release(identity, phone, previous).await;
            return Err(err);
        }
        if let Err(err) = sms.start_verification(phone).await {
            // Given back only when Verify refused for good (its coded 4xx); after a timeout
            // or a 5xx the code may have gone out (adr/016).
            if err.kind != ErrorKind::InternalError {
                self.phones.release(identity, phone, previous).await;
            }
            return Err(err);
        }
        self.phones.code_sent(phone, identity).await?;
        crate::metrics::count(crate::metrics::Counter::PhoneCodesSent);
        Ok(())
    }

    async fn confirm_number(
        &self,
        phone: &PhoneNumber,
        code: &str,
        identity: &str,
    ) -> Result<bool> {
        let sms = settings::gateway(&*self.settings.current().await?)?;
        match self.phones.record(phone, identity).await? {
            Some(record) if record.verified => return Ok(true),
            // Only the identity that asked for the code may use it.
            None => return Err(refusals::no_pending_code()),
            Some(_) => {}
        }
        // Counted per (identity, number) before Verify, which counts per number only.
        self.phones.count_check(phone, identity).await?;
        let matched = sms.check_verification(phone, code.trim()).await?;
        if matched {
            self.phones.verified(phone, identity).await?;
            crate::metrics::count(crate::metrics::Counter::PhonesVerified);
        }
        tracing::info!(identity, matched, "phone code checked");
        Ok(matched)
    }

    async fn deliver_text(&self, letter: Letter<'_>, phone: &PhoneNumber) -> Result<Delivery> {
        let configured = self.settings.current().await?;
        let gateway = settings::gateway(&configured)?;
        let policy = policy::policy(&configured)?;
        if policy.check_country(phone).is_err() {
            return Ok(Delivery::CountryNotAllowed);
        }
        match self.budgets.spend(Spending::Text, phone, &policy).await {
            Ok(()) => {}
            Err(err) if err.kind == ErrorKind::TooManyRequests => return Ok(Delivery::Held),
            Err(err) => return Err(err),
        }
        let text = texts::notification_text(letter.context, letter.pending, letter.more);
        gateway.send(phone, &text).await
    }
}

/// The channel's own address, or an internal error: the notifier hands each channel its
/// own addresses.
fn phone_of(address: &Address) -> Result<&PhoneNumber> {
    match address {
        Address::Phone(phone) => Ok(phone),
        _ => Err(ChatError::internal(
            "The SMS channel was handed another channel's address.",
        )),
    }
}

impl Channel for SmsChannel {
    type Subscription = SmsSubscription;
    const PREFIX: &'static str = keys::SMS_SUBSCRIPTION_PREFIX;

    fn kind(&self) -> ChannelKind {
        ChannelKind::Sms
    }

    fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    fn parse(&self, address: &str) -> Result<Address> {
        PhoneNumber::parse(address).map(Address::Phone)
    }

    fn subscription_key(&self, context: &str, identity: &str) -> Key {
        keys::sms_subscription(context, identity)
    }

    fn subscriber(s: &SmsSubscription) -> Subscriber {
        Subscriber {
            identity: s.identity.clone(),
            address: Address::Phone(s.phone.clone()),
        }
    }

    async fn is_confirmed(&self, subscription: &SmsSubscription) -> Result<bool> {
        let (phone, identity) = (&subscription.phone, &subscription.identity);
        self.phones.is_verified(phone, identity).await
    }

    async fn subscribe(&self, identity: &str, context: &str, address: &Address) -> Result<bool> {
        self.subscribe_number(identity, context, phone_of(address)?)
            .await
    }

    fn confirm_needs_token(&self) -> bool {
        true
    }

    fn check_code(&self, code: &str) -> Result<()> {
        let code = code.trim();
        if (4..=10).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit()) {
            Ok(())
        } else {
            Err(ChatError::bad_request(
                "code must be the digits of the text message (4 to 10).",
            ))
        }
    }

    async fn confirm(&self, address: &Address, code: &str, identity: Option<&str>) -> Result<bool> {
        let identity = identity.ok_or_else(|| ChatError::bad_request("token is required."))?;
        self.confirm_number(phone_of(address)?, code, identity)
            .await
    }

    async fn deliver(&self, letter: Letter<'_>) -> Result<Delivery> {
        self.deliver_text(letter, phone_of(letter.address)?).await
    }

    async fn refused(&self, address: &Address) -> Result<usize> {
        self.phones.stopped(phone_of(address)?).await
    }
}
