//! The feature's records over the store, made once and shared by the service and the
//! notifier.

use super::budget::SmsBudgets;
use super::confirmations::Confirmations;
use super::phones::Phones;

/// The feature's records over the store, shared by the service and the notifier: email
/// confirmations, verified numbers, and the deployment's SMS budgets.
pub struct Records {
    pub confirmations: Confirmations,
    pub phones: Phones,
    pub budgets: SmsBudgets,
}
