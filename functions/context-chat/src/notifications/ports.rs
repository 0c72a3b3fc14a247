//! A process's ports beside the settings: the store (the ledger, revocations and
//! notifications keep their records there), the queue (to the notifier, and the platform's
//! sweeps), and where this deployment answers HTTP.

use std::sync::Arc;

use super::queue::Queue;
use super::store::Store;
use crate::error::Result;

#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn Store>,
    /// Between the webhook and the notifier; only the functions that send to it have it.
    pub queue: Option<Arc<dyn Queue>>,
    /// Where this deployment answers HTTP (the webhook's API): emails link to
    /// `<public_url>/notifications/unsubscribe`. Without it they say to ask an administrator.
    pub public_url: Option<url::Url>,
}

impl Ports {
    pub fn queue(&self) -> Result<&dyn Queue> {
        self.queue
            .as_deref()
            .ok_or_else(|| crate::feature::not_configured("The notification queue"))
    }
}
