//! The store on DynamoDB: one table, partition key `pk`, sort key `sk`, a `version`
//! attribute that guards each write, `expiresAt` for the table's TTL, and the document's
//! fields as plain attributes, readable in the console (`adr/009-notification-store.md`).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put,
    ScalarAttributeType, TransactWriteItem, Update,
};
use context_chat::context_token::now_unix;
use context_chat::notifications::store::{COUNT_FIELD, Count, Created, Expect, Key, Store, Stored};
use context_chat::{ChatError, Result};
use futures_util::future::BoxFuture;
use serde_json::{Map, Number, Value};

const PK: &str = "pk";
const SK: &str = "sk";
const VERSION: &str = "version";
const EXPIRES_AT: &str = "expiresAt";

pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn failed<E: std::error::Error + 'static, R: std::fmt::Debug>(
        &self,
        what: &str,
        err: SdkError<E, R>,
    ) -> ChatError {
        tracing::error!(table = %self.table, error = %DisplayErrorContext(&err), "DynamoDB {what} failed");
        ChatError::internal("The notification store did not answer; try again.")
    }
    /// The live items of `partition` whose sort key starts with `sort_prefix`: all of them in
    /// key order, or the greatest `newest` first. Items past their TTL may still be there,
    /// so pages go on until enough live ones.
    async fn live_items(
        &self,
        partition: &str,
        sort_prefix: &str,
        newest: Option<usize>,
    ) -> Result<Vec<(String, Stored)>> {
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", AttributeValue::S(partition.to_owned()))
            .consistent_read(true);
        // DynamoDB refuses an empty string in a key condition: no prefix, the whole partition.
        request = match sort_prefix.is_empty() {
            true => request.key_condition_expression("pk = :pk"),
            false => request
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", AttributeValue::S(sort_prefix.to_owned())),
        };
        if let Some(limit) = newest {
            request = request
                .scan_index_forward(false)
                .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        }
        let limit = newest.unwrap_or(usize::MAX);
        let mut pages = request.into_paginator().items().send();
        let mut found = Vec::new();
        let now = now_unix();
        while found.len() < limit
            && let Some(item) = pages.next().await
        {
            let item = item.map_err(|e| self.failed("Query", e))?;
            let sort = match item.get(SK) {
                Some(AttributeValue::S(sort)) => sort.clone(),
                _ => String::new(),
            };
            found.extend(stored(item, now).map(|doc| (sort, doc)));
        }
        found.truncate(limit);
        Ok(found)
    }
}

/// Makes the table as the CDK stack does (tests and local DynamoDB).
pub async fn create_table(client: &Client, table: &str) -> Result<()> {
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(PK).map_err(internal)?)
        .attribute_definitions(attribute(SK).map_err(internal)?)
        .key_schema(key(PK, KeyType::Hash).map_err(internal)?)
        .key_schema(key(SK, KeyType::Range).map_err(internal)?)
        .send()
        .await
        .map_err(|e| ChatError::internal(format!("create table: {}", DisplayErrorContext(&e))))?;
    Ok(())
}

fn internal(e: impl std::fmt::Display) -> ChatError {
    ChatError::internal(e.to_string())
}

impl Store for DynamoStore {
    fn get<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, Result<Option<Stored>>> {
        Box::pin(async move {
            let output = self
                .client
                .get_item()
                .table_name(&self.table)
                .key(PK, AttributeValue::S(key.partition().to_owned()))
                .key(SK, AttributeValue::S(key.sort().to_owned()))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| self.failed("GetItem", e))?;
            Ok(output.item.and_then(|item| stored(item, now_unix())))
        })
    }

    fn put<'a>(&'a self, key: &'a Key, doc: Stored, expect: Expect) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let item = item_of(key, doc);
            let mut request = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item));
            request = match expect {
                Expect::Anything => request,
                // An expired item still there (TTL deletes lazily) counts as absent.
                Expect::Absent => request
                    .condition_expression(ABSENT)
                    .expression_attribute_values(":now", AttributeValue::N(now_unix().to_string())),
                Expect::Version(v) => request
                    .condition_expression("version = :v")
                    .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
            };
            match request.send().await {
                Ok(_) => Ok(true),
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    Ok(false)
                }
                Err(err) => Err(self.failed("PutItem", err)),
            }
        })
    }

    fn delete<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key(PK, AttributeValue::S(key.partition().to_owned()))
                .key(SK, AttributeValue::S(key.sort().to_owned()))
                .send()
                .await
                .map_err(|e| self.failed("DeleteItem", e))?;
            Ok(())
        })
    }

    fn create_counted<'a>(
        &'a self,
        counts: Vec<Count>,
        docs: Vec<(Key, Stored)>,
    ) -> BoxFuture<'a, Result<Created>> {
        Box::pin(async move {
            let now = AttributeValue::N(now_unix().to_string());
            let documents = docs.len();
            let mut items = Vec::with_capacity(documents + counts.len());
            for (key, doc) in docs {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item_of(&key, doc)))
                    .condition_expression(ABSENT)
                    .expression_attribute_values(":now", now.clone())
                    .build()
                    .map_err(internal)?;
                items.push(TransactWriteItem::builder().put(put).build());
            }
            for count in counts {
                // The counter's key names its window, so an old window's count is never
                // read; the condition is all the limit needs.
                let update = Update::builder()
                    .table_name(&self.table)
                    .key(PK, AttributeValue::S(count.key.partition().to_owned()))
                    .key(SK, AttributeValue::S(count.key.sort().to_owned()))
                    .update_expression(
                        "SET #n = if_not_exists(#n, :zero) + :one, #v = if_not_exists(#v, :zero) + :one, #e = :expires",
                    )
                    .condition_expression("attribute_not_exists(#n) OR #n < :max")
                    .expression_attribute_names("#n", COUNT_FIELD)
                    .expression_attribute_names("#v", VERSION)
                    .expression_attribute_names("#e", EXPIRES_AT)
                    .expression_attribute_values(":zero", AttributeValue::N("0".into()))
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .expression_attribute_values(":max", AttributeValue::N(count.max.to_string()))
                    .expression_attribute_values(
                        ":expires",
                        AttributeValue::N(count.expires_at.to_string()),
                    )
                    .build()
                    .map_err(internal)?;
                items.push(TransactWriteItem::builder().update(update).build());
            }
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await;
            let err = match sent {
                Ok(_) => return Ok(Created::Done),
                Err(err) => err,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
                err.as_service_error()
            else {
                return Err(self.failed("TransactWriteItems", err));
            };
            let failed: Vec<usize> = cancelled
                .cancellation_reasons()
                .iter()
                .enumerate()
                .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                .map(|(i, _)| i)
                .collect();
            match failed.first() {
                Some(&i) if i < documents => Ok(Created::Exists),
                Some(&i) => Ok(Created::OverLimit(i - documents)),
                // Cancelled for another reason (a conflicting transaction): retryable.
                None => Err(self.failed("TransactWriteItems", err)),
            }
        })
    }

    fn latest<'a>(
        &'a self,
        partition: &'a str,
        sort_prefix: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Stored>>> {
        Box::pin(async move {
            let found = self.live_items(partition, sort_prefix, Some(limit)).await?;
            Ok(found.into_iter().map(|(_, doc)| doc).collect())
        })
    }

    fn query<'a>(
        &'a self,
        partition: &'a str,
        sort_prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Stored>>> {
        Box::pin(async move {
            let found = self.live_items(partition, sort_prefix, None).await?;
            Ok(found.into_iter().map(|(_, doc)| doc).collect())
        })
    }

    fn query_keyed<'a>(
        &'a self,
        partition: &'a str,
        sort_prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, Stored)>>> {
        Box::pin(self.live_items(partition, sort_prefix, None))
    }
}

/// A put's condition that the item is not there, or only past its expiry (TTL deletes late).
const ABSENT: &str = "attribute_not_exists(pk) OR expiresAt <= :now";

/// A document as an item: its fields, key, version and TTL.
fn item_of(key: &Key, doc: Stored) -> HashMap<String, AttributeValue> {
    let mut item: HashMap<String, AttributeValue> = doc
        .fields
        .into_iter()
        .filter(|(name, _)| ![PK, SK, VERSION, EXPIRES_AT].contains(&name.as_str()))
        .map(|(name, value)| (name, attribute(value)))
        .collect();
    item.insert(PK.into(), AttributeValue::S(key.partition().to_owned()));
    item.insert(SK.into(), AttributeValue::S(key.sort().to_owned()));
    item.insert(VERSION.into(), AttributeValue::N(doc.version.to_string()));
    if let Some(at) = doc.expires_at {
        item.insert(EXPIRES_AT.into(), AttributeValue::N(at.to_string()));
    }
    item
}

/// An item as a document, or `None` when it has expired (and TTL has not removed it yet).
fn stored(item: HashMap<String, AttributeValue>, now: u64) -> Option<Stored> {
    let number = |name: &str| match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse::<u64>().ok(),
        _ => None,
    };
    let version = number(VERSION).unwrap_or(0);
    let expires_at = number(EXPIRES_AT);
    if expires_at.is_some_and(|at| at <= now) {
        return None;
    }
    let fields: Map<String, Value> = item
        .into_iter()
        .filter(|(name, _)| ![PK, SK, VERSION, EXPIRES_AT].contains(&name.as_str()))
        .map(|(name, value)| (name, json(value)))
        .collect();
    Some(Stored {
        version,
        fields,
        expires_at,
    })
}

fn attribute(value: Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s),
        Value::Array(items) => AttributeValue::L(items.into_iter().map(attribute).collect()),
        Value::Object(map) => {
            AttributeValue::M(map.into_iter().map(|(k, v)| (k, attribute(v))).collect())
        }
    }
}

fn json(value: AttributeValue) -> Value {
    match value {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(b),
        AttributeValue::N(n) => n
            .parse::<u64>()
            .map(Number::from)
            .ok()
            .or_else(|| n.parse::<i64>().ok().map(Number::from))
            .or_else(|| n.parse::<f64>().ok().and_then(Number::from_f64))
            .map(Value::Number)
            .unwrap_or(Value::Null),
        AttributeValue::S(s) => Value::String(s),
        AttributeValue::L(items) => Value::Array(items.into_iter().map(json).collect()),
        AttributeValue::M(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, json(v))).collect())
        }
        _ => Value::Null,
    }
}
