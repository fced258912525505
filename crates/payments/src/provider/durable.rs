//! The simulated provider's memory in the database (`payments.simulated_provider`).

use diesel::sql_types::{Jsonb, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName, sql_query};
use diesel_async::{AsyncConnection, RunQueryDsl};
use platform::db::PgPool;
use uuid::Uuid;

use super::simulated::Record;

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Jsonb)]
    record: serde_json::Value,
}

/// Runs `change` on the payment's row under a row lock and keeps the
/// result. A payment seen for the first time costs one statement: the
/// change applied to an empty record is inserted as it stands (when
/// another process inserted first, the locked path runs instead).
pub(super) async fn with_record<T: Send>(
    pool: &PgPool,
    payment_id: Uuid,
    change: impl Fn(&mut Record) -> T + Send + Sync,
) -> anyhow::Result<T> {
    let mut conn = platform::db::connection(pool).await?;
    let mut fresh = Record::default();
    let result = change(&mut fresh);
    if fresh == Record::default() {
        // Nothing to keep for a new payment; an existing one decides.
        let found: Option<Row> =
            sql_query("SELECT record FROM payments.simulated_provider WHERE payment_id = $1")
                .bind::<SqlUuid, _>(payment_id)
                .get_result(&mut conn)
                .await
                .optional()?;
        if found.is_none() {
            return Ok(result);
        }
    } else {
        let inserted = sql_query(
            "INSERT INTO payments.simulated_provider (payment_id, record) VALUES ($1, $2) \
             ON CONFLICT (payment_id) DO NOTHING",
        )
        .bind::<SqlUuid, _>(payment_id)
        .bind::<Jsonb, _>(serde_json::to_value(&fresh)?)
        .execute(&mut conn)
        .await?;
        if inserted == 1 {
            return Ok(result);
        }
    }
    conn.transaction(async move |conn| {
        let row: Row = sql_query(
            "SELECT record FROM payments.simulated_provider WHERE payment_id = $1 FOR UPDATE",
        )
        .bind::<SqlUuid, _>(payment_id)
        .get_result(conn)
        .await?;
        let mut record: Record = serde_json::from_value(row.record)?;
        let before = record.clone();
        let result = change(&mut record);
        if record != before {
            sql_query("UPDATE payments.simulated_provider SET record = $2 WHERE payment_id = $1")
                .bind::<SqlUuid, _>(payment_id)
                .bind::<Jsonb, _>(serde_json::to_value(&record)?)
                .execute(conn)
                .await?;
        }
        Ok::<_, anyhow::Error>(result)
    })
    .await
}
