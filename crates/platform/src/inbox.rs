//! The inbox: the ids of consumed events, each recorded in the transaction
//! of its effect, so a redelivered event finds its id and has no second
//! effect. Every service's inbox table has the same shape
//! (`event_id uuid primary key, event_type text, consumed_at timestamptz`).

use crate::db::Prepared;
use diesel::sql_types::{Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// Records a consumed event; `false` if it was consumed before.
pub async fn record(
    conn: &mut AsyncPgConnection,
    table: &str,
    event_id: Uuid,
    event_type: &str,
) -> diesel::QueryResult<bool> {
    let inserted = Prepared(
        diesel::sql_query(format!(
            "INSERT INTO {table} (event_id, event_type) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        ))
        .bind::<SqlUuid, _>(event_id)
        .bind::<Text, _>(event_type),
    )
    .execute(conn)
    .await?;
    Ok(inserted == 1)
}

/// Records a consumed event as part of a pipelined write: a duplicate is a
/// unique violation of `<table>_pkey`, which rolls the write back.
pub async fn insert(
    conn: &AsyncPgConnection,
    table: &str,
    event_id: Uuid,
    event_type: &str,
) -> diesel::QueryResult<usize> {
    Prepared(
        diesel::sql_query(format!(
            "INSERT INTO {table} (event_id, event_type) VALUES ($1, $2)"
        ))
        .bind::<SqlUuid, _>(event_id)
        .bind::<Text, _>(event_type),
    )
    .execute(&mut &*conn)
    .await
}
