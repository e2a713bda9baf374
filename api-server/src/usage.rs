//! `last_used_at` bookkeeping. Writing a row on every authenticated request would make each
//! read a write, so uses are collected in memory and flushed in batches.

use crate::store::credentials::{self, UsageTable};
use crate::store::{Store, StoreError};
use jiff::Timestamp;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct UsageRecorder {
    pending: Mutex<HashMap<(UsageTable, String), Timestamp>>,
}

impl UsageRecorder {
    pub fn record_token(&self, id: &str, at: Timestamp) {
        self.record(UsageTable::Tokens, id, at);
    }

    pub fn record_api_key(&self, id: &str, at: Timestamp) {
        self.record(UsageTable::ApiKeys, id, at);
    }

    fn record(&self, table: UsageTable, id: &str, at: Timestamp) {
        let mut pending = self.pending.lock().expect("usage lock");
        let slot = pending.entry((table, id.to_owned())).or_insert(at);
        if *slot < at {
            *slot = at;
        }
    }

    /// Writes every pending use in one transaction, a statement per table and chunk. On failure
    /// the uses are kept for next time.
    pub async fn flush(&self, store: &Store) -> Result<usize, StoreError> {
        let batch = std::mem::take(&mut *self.pending.lock().expect("usage lock"));
        if batch.is_empty() {
            return Ok(0);
        }
        let result = async {
            let mut tx = store.begin_write().await?;
            for table in [UsageTable::Tokens, UsageTable::ApiKeys] {
                let uses: Vec<(&str, Timestamp)> = batch
                    .iter()
                    .filter(|((t, _), _)| *t == table)
                    .map(|((_, id), at)| (id.as_str(), *at))
                    .collect();
                credentials::record_last_used(&mut tx, table, &uses).await?;
            }
            // last_used_at is not part of any cached credential.
            tx.commit().await
        }
        .await;
        match result {
            Ok(()) => Ok(batch.len()),
            Err(err) => {
                for ((table, id), at) in batch {
                    self.record(table, &id, at);
                }
                Err(err)
            }
        }
    }
}
