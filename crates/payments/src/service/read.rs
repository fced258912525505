//! Reading payments, and forgetting expired keys.

use platform::clock::now;
use platform::db;
use uuid::Uuid;

use super::{Actor, PaymentError, Payments};
use crate::domain::Payment;
use crate::store;

impl Payments {
    pub async fn find(&self, actor: &Actor, id: Uuid) -> Result<Payment, PaymentError> {
        let mut conn = db::connection(&self.pool).await?;
        store::payments::find_payment(&mut conn, id)
            .await?
            .filter(|payment| actor.admin || payment.user_id == actor.user_id)
            .ok_or(PaymentError::NotFound)
    }

    pub async fn list(
        &self,
        actor: &Actor,
        order_id: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Payment>, PaymentError> {
        let mut conn = db::connection(&self.pool).await?;
        let user = (!actor.admin).then_some(actor.user_id.as_str());
        Ok(store::payments::list_payments(&mut conn, user, order_id, limit).await?)
    }

    /// Forgets expired idempotency keys.
    pub async fn sweep_keys(&self) -> Result<usize, PaymentError> {
        let mut conn = db::connection(&self.pool).await?;
        Ok(store::idempotency::KEYS
            .sweep(&mut conn, now() - self.keys.ttl)
            .await
            .map_err(store::StoreError::from)?)
    }
}
