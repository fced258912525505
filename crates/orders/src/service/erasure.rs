//! Erasing a user's personal data on request (GDPR art. 17), by
//! crypto-shredding: their data key is destroyed, so every address, note
//! and reason of theirs, in every event and every backup, is unreadable for
//! good; then each of their orders records `order.personal_data_erased`
//! (published, so that subscribers erase what they kept). Amounts, items,
//! statuses and the sequence of events stay as they were. Asking again
//! changes nothing more.

use platform::db;
use time::OffsetDateTime;

use super::commit::{Decided, Write};
use super::{Actor, OrderError, Orders};
use crate::domain::{OrderCommand, OrderId, UserId};
use crate::store;

/// What an erasure did.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Erasure {
    pub user_id: String,
    /// Whether a data key was destroyed now (false: erased before, or the
    /// user never had one).
    pub key_destroyed: bool,
    /// Orders that recorded `order.personal_data_erased` now (those that
    /// had before are not counted again).
    pub orders_erased: u32,
    /// Every order of the user.
    pub orders: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub erased_at: OffsetDateTime,
}

impl Orders {
    /// Erases `user`'s personal data (the actor is an operator holding the
    /// privacy scope, acting as an admin).
    pub async fn erase_personal_data(
        &self,
        actor: &Actor,
        user: &UserId,
    ) -> Result<Erasure, OrderError> {
        let mut conn = db::connection(&self.pool).await?;
        let key_destroyed = store::keys::destroy(&mut conn, user.as_str(), &actor.user_id).await?;
        let ids = store::keys::orders_of(&mut conn, user.as_str()).await?;
        let mut erased = 0;
        for id in &ids {
            let decided = self
                .retry_on_conflict(&mut conn, OrderId(*id), Write::by(actor), |order| {
                    order
                        .handle(OrderCommand::ErasePersonalData)
                        .map_err(OrderError::Rule)
                })
                .await?;
            if matches!(decided, Decided::Changed(_)) {
                erased += 1;
            }
        }
        store::keys::record_announced(
            &mut conn,
            user.as_str(),
            i32::try_from(erased).unwrap_or(i32::MAX),
        )
        .await?;
        tracing::info!(
            audit = true,
            privacy.operator = %actor.user_id,
            user.id = %user.as_str(),
            key_destroyed,
            orders = ids.len(),
            orders_erased = erased,
            "personal data erased"
        );
        Ok(Erasure {
            user_id: user.as_str().to_owned(),
            key_destroyed,
            orders_erased: erased,
            orders: u32::try_from(ids.len()).unwrap_or(u32::MAX),
            erased_at: platform::clock::now(),
        })
    }
}
