//! Idempotency-Keys: claimed before any side effect, released when the
//! request fails, forgotten once expired.

use platform::clock::now;
use platform::db;
use platform::idempotency::IdempotencyKey;

use super::{Actor, OrderError, Orders, Placed};
use crate::store::{self, KeyClaim};

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
        match store::idempotency::claim_key(
            &mut conn,
            &actor.user_id,
            &key.key,
            &key.request_hash,
            now(),
            self.keys.ttl,
            self.keys.stale_after,
        )
        .await?
        {
            KeyClaim::New => Ok(None),
            KeyClaim::Done { body } => Ok(Some(Placed {
                body,
                replayed: true,
                order: None,
            })),
            KeyClaim::InFlight => Err(OrderError::KeyInFlight),
            KeyClaim::Mismatch => Err(OrderError::KeyMismatch),
        }
    }

    /// Frees a claimed key after its request failed (best effort: an
    /// unreleased key is taken over once stale).
    pub(super) async fn release(&self, actor: &Actor, key: Option<&IdempotencyKey>) {
        let Some(key) = key else { return };
        let released = async {
            let mut conn = db::connection(&self.pool).await?;
            store::idempotency::release_key(&mut conn, &actor.user_id, &key.key).await?;
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
        Ok(store::idempotency::sweep_keys(&mut conn, now() - self.keys.ttl).await?)
    }
}
