//! One unit of work: every change runs in one transaction that begins, answers a retried
//! request with its first answer, records the audit event (which also fills the webhook
//! outbox), stores the answer for later retries, and commits. The store marks a transaction
//! that changes a credential, so the commit alone decides what the credential cache drops.

use crate::audit::{self, Author, Change};
use crate::auth::Principal;
use crate::service::Error;
use crate::store::idempotency::{self, Key, StoredResponse};
use crate::store::{Store, WriteTx, now};
use jiff::SignedDuration;
use sha2::{Digest, Sha256};
use std::ops::{Deref, DerefMut};

/// How long a retried request is answered with its first answer.
pub const RETENTION: SignedDuration = SignedDuration::from_hours(24);

/// A change about to be made, and what makes it safe to retry. Built by the caller (an HTTP
/// handler, `bootstrap`, a background job) and run by the operation.
pub struct UnitOfWork<'a> {
    store: &'a Store,
    author: Author,
    retry: Option<Retry>,
}

/// A request sent with an `Idempotency-Key`: the key, scoped to the credential that sent it,
/// a fingerprint of the request, and the status code its first answer goes out with.
pub struct Retry {
    workspace_id: String,
    credential_id: String,
    key: String,
    fingerprint: String,
    status: u16,
}

impl Retry {
    /// The fingerprint is of `method path` and the body, as stored since keys were added.
    pub fn new(
        principal: &Principal,
        key: String,
        (method, path, body): (&str, &str, &[u8]),
        status: u16,
    ) -> Retry {
        let mut hasher = Sha256::new();
        hasher.update(method.as_bytes());
        hasher.update(b" ");
        hasher.update(path.as_bytes());
        hasher.update(b"\n");
        hasher.update(body);
        Retry {
            workspace_id: principal.workspace_id.clone(),
            credential_id: principal.credential_id().to_owned(),
            key,
            fingerprint: hex::encode(hasher.finalize()),
            status,
        }
    }

    fn store_key(&self) -> Key<'_> {
        Key {
            workspace_id: &self.workspace_id,
            principal_id: &self.credential_id,
            key: &self.key,
        }
    }
}

/// What a unit of work ended with: a fresh answer, or the stored first answer to a retry.
pub enum Outcome<T> {
    Done(T),
    Replayed(StoredResponse),
}

/// An answer an operation returns. A secret in it is shown once: the copy stored for retries
/// has it as `null`.
pub trait Answer: serde::Serialize {
    /// The top-level field holding a secret, if any.
    const SECRET_FIELD: Option<&'static str> = None;

    fn redacted(&self) -> Result<String, Error> {
        let mut value = serde_json::to_value(self).map_err(Error::internal)?;
        if let (Some(field), Some(object)) = (Self::SECRET_FIELD, value.as_object_mut()) {
            object.insert(field.to_owned(), serde_json::Value::Null);
        }
        serde_json::to_string(&value).map_err(Error::internal)
    }
}

/// The open transaction of a unit of work, as an operation sees it.
pub struct Work {
    tx: WriteTx,
    author: Author,
}

impl Work {
    /// Records `change` in the author's workspace.
    pub async fn record(&mut self, change: Change<'_>) -> Result<(), Error> {
        let workspace_id = self.author.workspace_id.clone().ok_or_else(|| {
            Error::internal(anyhow::anyhow!(
                "an author outside a workspace recorded a change"
            ))
        })?;
        self.record_in(&workspace_id, change).await
    }

    /// Records `change` in `workspace_id` (one the author just created, or any, for Tooken).
    pub async fn record_in(&mut self, workspace_id: &str, change: Change<'_>) -> Result<(), Error> {
        audit::write(&mut self.tx, workspace_id, &self.author, change).await?;
        Ok(())
    }
}

impl Deref for Work {
    type Target = WriteTx;
    fn deref(&self) -> &WriteTx {
        &self.tx
    }
}

impl DerefMut for Work {
    fn deref_mut(&mut self) -> &mut WriteTx {
        &mut self.tx
    }
}

impl<'a> UnitOfWork<'a> {
    pub fn new(store: &'a Store, author: Author) -> UnitOfWork<'a> {
        UnitOfWork {
            store,
            author,
            retry: None,
        }
    }

    /// A unit of work by `principal`, retryable when the request carried a key.
    pub fn by(store: &'a Store, principal: &Principal, retry: Option<Retry>) -> UnitOfWork<'a> {
        UnitOfWork {
            store,
            author: Author::of(principal),
            retry,
        }
    }

    /// Runs `work` in one transaction and commits what it did, unless this is a retry of a
    /// request already answered, which gets that answer and changes nothing.
    pub async fn run<T: Answer>(
        self,
        work: impl AsyncFnOnce(&mut Work) -> Result<T, Error>,
    ) -> Result<Outcome<T>, Error> {
        let Some(retry) = self.retry else {
            let answer = UnitOfWork {
                retry: None,
                ..self
            }
            .run_once(work)
            .await?;
            return Ok(Outcome::Done(answer));
        };
        let mut open = Work {
            tx: self.store.begin_write().await?,
            author: self.author,
        };
        if let Some(stored) = replay(&mut open.tx, &retry).await? {
            return Ok(Outcome::Replayed(stored));
        }
        let answer = work(&mut open).await?;
        remember(&mut open.tx, &retry, answer.redacted()?).await?;
        open.tx.commit().await?;
        Ok(Outcome::Done(answer))
    }

    /// Runs `work` in one transaction and commits what it did: for changes no client retries
    /// by key (sign-in, a background job).
    pub async fn run_once<T>(
        self,
        work: impl AsyncFnOnce(&mut Work) -> Result<T, Error>,
    ) -> Result<T, Error> {
        debug_assert!(self.retry.is_none(), "a keyed request needs `run`");
        let mut open = Work {
            tx: self.store.begin_write().await?,
            author: self.author,
        };
        let answer = work(&mut open).await?;
        open.tx.commit().await?;
        Ok(answer)
    }
}

/// The first answer to this request, if it was already answered.
async fn replay(tx: &mut WriteTx, retry: &Retry) -> Result<Option<StoredResponse>, Error> {
    let Some(stored) = idempotency::find(tx, &retry.store_key(), now() - RETENTION).await? else {
        return Ok(None);
    };
    if stored.fingerprint != retry.fingerprint {
        return Err(Error::validation(
            "Idempotency-Key",
            "this Idempotency-Key was already used with a different request",
        ));
    }
    Ok(Some(stored))
}

/// Stores the answer (already stripped of secrets) in the unit's transaction.
async fn remember(tx: &mut WriteTx, retry: &Retry, body: String) -> Result<(), Error> {
    let now = now();
    let stored = StoredResponse {
        fingerprint: retry.fingerprint.clone(),
        status_code: retry.status,
        body,
    };
    idempotency::insert(tx, &retry.store_key(), &stored, now, now - RETENTION)
        .await
        .map_err(|err| {
            if err.is_unique_violation() {
                Error::conflict(
                    "idempotency_conflict",
                    "a request with this Idempotency-Key is in progress; retry it shortly",
                )
            } else {
                err.into()
            }
        })
}
