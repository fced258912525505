//! What the operators' console reads of an order's events: the steps of
//! its story, without personal data.

use diesel::{
    QueryableByName,
    sql_types::{Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;
use uuid::Uuid;

use super::StoreError;

/// One event of an order, as its story shows it.
#[derive(Debug, Clone, QueryableByName)]
pub struct StoryEvent {
    #[diesel(sql_type = Integer)]
    pub sequence: i32,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub actor: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub traceparent: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub occurred_at: OffsetDateTime,
    /// The order as the event left it.
    #[diesel(sql_type = Text)]
    pub order_number: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Text)]
    pub payment_status: String,
    #[diesel(sql_type = Text)]
    pub total: String,
    #[diesel(sql_type = Text)]
    pub currency: String,
}

/// The events of order `id`, oldest first (empty: no such order).
pub async fn events(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Vec<StoryEvent>, StoreError> {
    Ok(diesel::sql_query(
        "SELECT sequence, event_type, actor, traceparent, occurred_at, \
           COALESCE(snapshot->>'order_number', '') AS order_number, COALESCE(snapshot->>'status', '') AS status, \
           COALESCE(snapshot->>'payment_status', '') AS payment_status, COALESCE(snapshot->>'total', '') AS total, \
           COALESCE(snapshot->>'currency', '') AS currency \
         FROM orders.events WHERE order_id = $1 ORDER BY sequence",
    )
    .bind::<SqlUuid, _>(id)
    .load(conn)
    .await?)
}
