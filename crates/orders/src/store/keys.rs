//! Each user's data key (see [`platform::privacy`]): created with their
//! first order, read with every read and change of their orders, rewrapped
//! when the key-encryption key rotates.

use anyhow::Context;
use diesel::sql_types::{BigInt, Bytea, Text, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use platform::db::Prepared;
use platform::privacy::{DataKey, KeyRing, WrappedKey};
use uuid::Uuid;

use super::StoreError;

/// A stored data key.
#[derive(Debug, QueryableByName)]
pub struct KeyRow {
    #[diesel(sql_type = Text)]
    pub user_id: String,
    #[diesel(sql_type = SqlUuid)]
    pub key_id: Uuid,
    #[diesel(sql_type = Text)]
    pub kek_id: String,
    #[diesel(sql_type = Bytea)]
    pub wrapped: Vec<u8>,
}

impl KeyRow {
    fn wrapped(&self) -> WrappedKey {
        WrappedKey {
            id: self.key_id,
            kek_id: self.kek_id.clone(),
            wrapped: self.wrapped.clone(),
        }
    }

    /// The data key itself.
    pub fn unwrap(&self, ring: &KeyRing) -> anyhow::Result<DataKey> {
        ring.unwrap(&self.user_id, &self.wrapped())
    }
}

const GET_OR_CREATE: &str = "WITH created AS (\
     INSERT INTO orders.data_keys (user_id, key_id, kek_id, wrapped) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (user_id) DO NOTHING RETURNING user_id, key_id, kek_id, wrapped) \
     SELECT user_id, key_id, kek_id, wrapped FROM created \
     UNION ALL SELECT user_id, key_id, kek_id, wrapped FROM orders.data_keys WHERE user_id = $1 \
     LIMIT 1";

/// `user`'s data key, created if they have none (one statement).
pub async fn data_key(
    conn: &mut AsyncPgConnection,
    ring: &KeyRing,
    user: &str,
) -> Result<DataKey, StoreError> {
    // A key created by a concurrent transaction not yet visible to this
    // statement's snapshot: the next statement sees it.
    for _ in 0..3 {
        let (key, wrapped) = ring.new_data_key(user)?;
        let row: Option<KeyRow> = Prepared(
            diesel::sql_query(GET_OR_CREATE)
                .bind::<Text, _>(user)
                .bind::<SqlUuid, _>(wrapped.id)
                .bind::<Text, _>(&wrapped.kek_id)
                .bind::<Bytea, _>(&wrapped.wrapped),
        )
        .get_result(conn)
        .await
        .optional()?;
        match row {
            Some(row) if row.key_id == key.id() => return Ok(key),
            Some(row) => return Ok(row.unwrap(ring)?),
            None => continue,
        }
    }
    Err(StoreError::Unexpected(anyhow::anyhow!(
        "could not create or read the data key of a user"
    )))
}

/// The data key of `order_id`'s owner, as a statement to run beside others.
pub const KEY_OF_ORDER: &str = "SELECT k.user_id, k.key_id, k.kek_id, k.wrapped \
     FROM orders.orders o JOIN orders.data_keys k ON k.user_id = o.user_id WHERE o.id = $1";

/// At start: every key-encryption key that wraps a stored data key is
/// configured, and unwraps one of them (a wrong key is refused here, not at
/// the first read).
pub async fn check(conn: &mut AsyncPgConnection, ring: &KeyRing) -> anyhow::Result<()> {
    let rows: Vec<KeyRow> = diesel::sql_query(
        "SELECT DISTINCT ON (kek_id) user_id, key_id, kek_id, wrapped FROM orders.data_keys \
         ORDER BY kek_id, created_at DESC",
    )
    .load(conn)
    .await
    .context("reading the data keys")?;
    for row in rows {
        row.unwrap(ring).with_context(|| {
            format!(
                "privacy.keys cannot open the data keys wrapped by `{}`: refusing to start",
                row.kek_id
            )
        })?;
    }
    Ok(())
}

/// Rewraps up to `limit` data keys still wrapped by another key than the
/// active one (key rotation; no sealed value changes). Returns how many.
pub async fn rewrap(
    conn: &mut AsyncPgConnection,
    ring: &KeyRing,
    limit: i64,
) -> anyhow::Result<usize> {
    let rows: Vec<KeyRow> = diesel::sql_query(
        "SELECT user_id, key_id, kek_id, wrapped FROM orders.data_keys WHERE kek_id <> $1 LIMIT $2",
    )
    .bind::<Text, _>(ring.active())
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    let mut done = 0;
    for row in rows {
        let rewrapped = ring.rewrap(&row.user_id, &row.wrapped())?;
        done += diesel::sql_query(
            "UPDATE orders.data_keys SET kek_id = $3, wrapped = $4 \
             WHERE user_id = $1 AND key_id = $2",
        )
        .bind::<Text, _>(&row.user_id)
        .bind::<SqlUuid, _>(row.key_id)
        .bind::<Text, _>(&rewrapped.kek_id)
        .bind::<Bytea, _>(&rewrapped.wrapped)
        .execute(conn)
        .await?;
    }
    Ok(done)
}

/// Destroys `user`'s data key (crypto-shredding: every value sealed with it
/// is unreadable from now on) and records the erasure; whether a key was
/// destroyed (none: erased before, or never had one). One transaction.
pub async fn destroy(
    conn: &mut AsyncPgConnection,
    user: &str,
    operator: &str,
) -> Result<bool, StoreError> {
    use diesel_async::AsyncConnection;
    let (user, operator) = (user.to_owned(), operator.to_owned());
    conn.transaction(async move |conn| {
        let destroyed = diesel::sql_query("DELETE FROM orders.data_keys WHERE user_id = $1")
            .bind::<Text, _>(&user)
            .execute(conn)
            .await?
            > 0;
        diesel::sql_query(
            "INSERT INTO orders.erasures (user_id, operator, key_destroyed) VALUES ($1, $2, $3)",
        )
        .bind::<Text, _>(&user)
        .bind::<Text, _>(&operator)
        .bind::<diesel::sql_types::Bool, _>(destroyed)
        .execute(conn)
        .await?;
        Ok(destroyed)
    })
    .await
}

/// Records how many orders an erasure announced itself on.
pub async fn record_announced(
    conn: &mut AsyncPgConnection,
    user: &str,
    orders: i32,
) -> Result<(), StoreError> {
    diesel::sql_query(
        "UPDATE orders.erasures SET orders = $2 WHERE id = \
         (SELECT max(id) FROM orders.erasures WHERE user_id = $1)",
    )
    .bind::<Text, _>(user)
    .bind::<diesel::sql_types::Integer, _>(orders)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct OrderIdRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// The ids of every order of `user`.
pub async fn orders_of(conn: &mut AsyncPgConnection, user: &str) -> Result<Vec<Uuid>, StoreError> {
    let rows: Vec<OrderIdRow> =
        diesel::sql_query("SELECT id FROM orders.orders WHERE user_id = $1 ORDER BY created_at")
            .bind::<Text, _>(user)
            .load(conn)
            .await?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}

/// `user`'s data key, if they have one.
pub async fn key_of_user(
    conn: &mut AsyncPgConnection,
    ring: &KeyRing,
    user: &str,
) -> Result<Option<DataKey>, StoreError> {
    let row: Option<KeyRow> = Prepared(
        diesel::sql_query(
            "SELECT user_id, key_id, kek_id, wrapped FROM orders.data_keys WHERE user_id = $1",
        )
        .bind::<Text, _>(user),
    )
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.map(|row| row.unwrap(ring)).transpose()?)
}
