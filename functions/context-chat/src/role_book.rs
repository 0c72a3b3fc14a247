//! Where the roles a token gave are kept (adr/004): one document per identity in the store,
//! `{context: role}` for the roles other than member. Twilio's list of a user's
//! conversations does not carry the participant's role, so without this a provisioning
//! would fetch every participant to know whether a role changed.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::error::{ChatError, Result};
use crate::names::Role;
use crate::store::{self, Key, Store, identity_partition};
use crate::twilio::provisioning::RoleBook;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Given {
    roles: BTreeMap<String, String>,
}

fn key(identity: &str) -> Key {
    Key::new("roles", identity_partition(identity), "ROLES")
}

/// That a context's room was archived (`archiveContext`), and where its conversation went:
/// a later token naming the context is refused unless `platform/reopenArchived` is true.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Archived {
    pub context: String,
    /// The closed conversation (`CH…`) and the unique name it was closed under.
    pub conversation_sid: String,
    pub archived_name: String,
    /// Unix seconds.
    pub archived_at: u64,
    pub client: String,
    pub messages: usize,
}

pub fn archived_key(context: &str) -> Key {
    Key::new(
        "archived",
        crate::store::context_partition(context),
        "ARCHIVED",
    )
}

/// The role book in the process's store.
pub struct StoredRoles {
    store: Arc<dyn Store>,
}

impl StoredRoles {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

impl RoleBook for StoredRoles {
    fn archived<'a>(&'a self, context: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move { Ok(self.store.get(&archived_key(context)).await?.is_some()) })
    }

    fn given<'a>(&'a self, identity: &'a str) -> BoxFuture<'a, Result<Vec<(String, Role)>>> {
        Box::pin(async move {
            let Some(doc) = store::read::<Given>(&*self.store, &key(identity)).await? else {
                return Ok(Vec::new());
            };
            doc.value
                .roles
                .into_iter()
                .map(|(context, role)| {
                    Role::from_name(&role)
                        .map(|role| (context, role))
                        .ok_or_else(|| ChatError::internal("A stored role is damaged."))
                })
                .collect()
        })
    }

    fn write<'a>(
        &'a self,
        identity: &'a str,
        roles: &'a [(String, Role)],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let key = key(identity);
            if roles.is_empty() {
                return self.store.delete(&key).await;
            }
            let given = Given {
                roles: roles
                    .iter()
                    .map(|(c, r)| (c.clone(), r.as_str().to_owned()))
                    .collect(),
            };
            store::write_over(&*self.store, &key, &given).await
        })
    }
}
