//! Idempotency-Keys: claimed before any side effect, released when the
//! request fails, forgotten once expired.

use diesel_async::AsyncConnection;
use platform::clock::now;
use platform::db;
use platform::idempotency::{Claim, IdempotencyKey};

use super::{Actor, OrderError, Orders, Placed};
use crate::store::{self, KEYS, StoreError};

impl Orders {
    /// Claims the caller's Idempotency-Key before anything else happens: a
    /// completed request is replayed (whatever has changed since), one in
    /// flight is refused, one for another request is a mismatch.
    pub(super) async fn claim(
        &self,
        actor: &Actor,
        key: &IdempotencyKey,
    ) -> Result<Option<Placed>, OrderError> {
        let mut conn = db::connection(&self.pool).await?;
        let policy = self.keys;
        // The work commits in a transaction of its own (which stores the
        // answer), so the claim has its own too.
        let claim = conn
            .transaction(async |conn| {
                KEYS.claim(conn, &actor.user_id, key, None, now(), policy)
                    .await
                    .map_err(StoreError::from)
            })
            .await?;
        match claim {
            // A request that died before committing wrote nothing: the
            // retry simply starts afresh.
            Claim::New | Claim::Abandoned { .. } => Ok(None),
            Claim::Done { body } => {
                // Opened with the order owner's data key (its public part
                // once their data is erased).
                let body = match store::sealed::SealedAnswer::parse(&body)? {
                    Some(sealed) => {
                        let data_key =
                            store::keys::key_of_user(&mut conn, &self.privacy, sealed.subject)
                                .await?;
                        sealed.open(data_key.as_ref(), &actor.user_id, &key.key)?
                    }
                    None => body,
                };
                Ok(Some(Placed {
                    body,
                    replayed: true,
                    order: None,
                }))
            }
            Claim::InFlight => Err(OrderError::KeyInFlight),
            Claim::Mismatch => Err(OrderError::KeyMismatch),
        }
    }

    /// Frees a claimed key after its request failed (best effort: an
    /// unreleased key is taken over once stale).
    pub(super) async fn release(&self, actor: &Actor, key: Option<&IdempotencyKey>) {
        let Some(key) = key else { return };
        let released = async {
            let mut conn = db::connection(&self.pool).await?;
            KEYS.release(&mut conn, &actor.user_id, &key.key)
                .await
                .map_err(StoreError::from)?;
            Ok::<_, OrderError>(())
        }
        .await;
        if let Err(error) = released {
            tracing::warn!(error.message = %error, "could not release an Idempotency-Key");
        }
    }

    /// Forgets expired Idempotency-Keys; returns how many.
    pub async fn sweep_keys(&self) -> Result<usize, OrderError> {
        let mut conn = db::connection(&self.pool).await?;
        Ok(KEYS
            .sweep(&mut conn, now() - self.keys.ttl)
            .await
            .map_err(StoreError::from)?)
    }
}
