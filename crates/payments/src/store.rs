//! Persistence of schema `payments`: free async functions over a connection;
//! the caller owns the transaction.

use anyhow::{Context, anyhow};
use contracts::money::{Currency, Money};
use contracts::payment::PaymentStatus;
use diesel::{
    prelude::*,
    result::{DatabaseErrorKind, Error as DieselError},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::Payment;

pub mod schema {
    diesel::table! {
        payments.payments (id) {
            id -> Uuid,
            order_id -> Uuid,
            user_id -> Text,
            amount_minor -> Int8,
            currency -> Text,
            method -> Text,
            status -> Text,
            failure_reason -> Nullable<Text>,
            provider_reference -> Nullable<Text>,
            refund_reference -> Nullable<Text>,
            created_at -> Timestamptz,
            updated_at -> Timestamptz,
        }
    }

    diesel::table! {
        payments.idempotency_keys (owner, key) {
            owner -> Text,
            key -> Text,
            request_hash -> Text,
            payment_id -> Nullable<Uuid>,
            response_status -> Nullable<Int2>,
            response_body -> Nullable<Bytea>,
            created_at -> Timestamptz,
        }
    }

    diesel::table! {
        payments.outbox (position) {
            position -> Int8,
            id -> Uuid,
            subject -> Text,
            event_type -> Text,
            data -> Jsonb,
            traceparent -> Nullable<Text>,
            occurred_at -> Timestamptz,
            published_at -> Nullable<Timestamptz>,
        }
    }

    diesel::table! {
        payments.inbox (event_id) {
            event_id -> Uuid,
            event_type -> Text,
            consumed_at -> Timestamptz,
        }
    }

    diesel::table! {
        payments.cancelled_orders (order_id) {
            order_id -> Uuid,
            cancelled_at -> Timestamptz,
        }
    }
}

use schema::{cancelled_orders, idempotency_keys, inbox, payments};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The order already has a payment in flight or succeeded.
    #[error("the order already has a live payment")]
    OrderAlreadyHasPayment,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<DieselError> for StoreError {
    fn from(error: DieselError) -> Self {
        match &error {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
                if info.constraint_name() == Some("payments_one_live_per_order") =>
            {
                StoreError::OrderAlreadyHasPayment
            }
            _ => StoreError::Unexpected(anyhow::Error::new(error).context("database error")),
        }
    }
}

#[derive(Debug, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = payments, treat_none_as_null = true)]
struct PaymentRow {
    id: Uuid,
    order_id: Uuid,
    user_id: String,
    amount_minor: i64,
    currency: String,
    method: String,
    status: String,
    failure_reason: Option<String>,
    provider_reference: Option<String>,
    refund_reference: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl PaymentRow {
    fn from_payment(payment: &Payment) -> Self {
        Self {
            id: payment.id,
            order_id: payment.order_id,
            user_id: payment.user_id.clone(),
            amount_minor: payment.amount.minor(),
            currency: payment.amount.currency().code().to_owned(),
            method: payment.method.clone(),
            status: payment.status.as_str().to_owned(),
            failure_reason: payment.failure_reason.clone(),
            provider_reference: payment.provider_reference.clone(),
            refund_reference: payment.refund_reference.clone(),
            created_at: payment.created_at,
            updated_at: payment.updated_at,
        }
    }

    fn into_payment(self) -> anyhow::Result<Payment> {
        let currency = Currency::parse(&self.currency)?;
        Ok(Payment {
            id: self.id,
            order_id: self.order_id,
            user_id: self.user_id,
            amount: Money::from_minor(self.amount_minor, currency)?,
            method: self.method,
            status: PaymentStatus::parse(&self.status)
                .ok_or_else(|| anyhow!("payment {} has status {}", self.id, self.status))?,
            failure_reason: self.failure_reason,
            provider_reference: self.provider_reference,
            refund_reference: self.refund_reference,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub async fn insert_payment(
    conn: &mut AsyncPgConnection,
    payment: &Payment,
) -> Result<(), StoreError> {
    diesel::insert_into(payments::table)
        .values(PaymentRow::from_payment(payment))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn find_payment(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<Payment>, StoreError> {
    let row = payments::table
        .find(id)
        .select(PaymentRow::as_select())
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(PaymentRow::into_payment).transpose()?)
}

/// Payments of an order, locked for update (cancellations).
pub async fn lock_payments_of_order(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
) -> Result<Vec<Payment>, StoreError> {
    let rows: Vec<PaymentRow> = payments::table
        .filter(payments::order_id.eq(order_id))
        .select(PaymentRow::as_select())
        .for_update()
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(PaymentRow::into_payment)
        .collect::<anyhow::Result<_>>()?)
}

/// Newest first; `user_id` `None` means all users (admin).
pub async fn list_payments(
    conn: &mut AsyncPgConnection,
    user_id: Option<&str>,
    order_id: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Payment>, StoreError> {
    let mut query = payments::table.into_boxed();
    if let Some(user_id) = user_id {
        query = query.filter(payments::user_id.eq(user_id.to_owned()));
    }
    if let Some(order_id) = order_id {
        query = query.filter(payments::order_id.eq(order_id));
    }
    let rows: Vec<PaymentRow> = query
        .order((payments::created_at.desc(), payments::id.desc()))
        .limit(limit)
        .select(PaymentRow::as_select())
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(PaymentRow::into_payment)
        .collect::<anyhow::Result<_>>()?)
}

/// Records a consumed event; `false` if it was consumed before.
pub async fn record_consumed(
    conn: &mut AsyncPgConnection,
    event_id: Uuid,
    event_type: &str,
) -> Result<bool, StoreError> {
    let inserted = diesel::insert_into(inbox::table)
        .values((
            inbox::event_id.eq(event_id),
            inbox::event_type.eq(event_type),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}

pub async fn mark_order_cancelled(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
) -> Result<(), StoreError> {
    diesel::insert_into(cancelled_orders::table)
        .values(cancelled_orders::order_id.eq(order_id))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

/// What an `Idempotency-Key` already holds.
#[derive(Debug)]
pub enum KeyState {
    /// First use: this request owns the key now.
    New,
    /// Finished before: replay this response.
    Done { status: u16, body: Vec<u8> },
    /// Another request with this key is still running.
    InFlight,
    /// The first request seems to have died mid-way; this one takes over the
    /// payment it started (if it got that far).
    Abandoned { payment_id: Option<Uuid> },
    /// The key was used with a different body.
    Mismatch,
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = idempotency_keys)]
struct KeyRow {
    request_hash: String,
    payment_id: Option<Uuid>,
    response_status: Option<i16>,
    response_body: Option<Vec<u8>>,
    created_at: OffsetDateTime,
}

/// Claims `key` for `owner` (for the payment `payment_id` about to be
/// created) or reports what it already holds. A key older than `ttl` that the
/// sweeper has not removed yet counts as new.
#[allow(clippy::too_many_arguments)]
pub async fn claim_key(
    conn: &mut AsyncPgConnection,
    owner: &str,
    key: &str,
    request_hash: &str,
    payment_id: Uuid,
    now: OffsetDateTime,
    ttl: time::Duration,
    stale_after: time::Duration,
) -> Result<KeyState, StoreError> {
    let new_key = (
        idempotency_keys::owner.eq(owner),
        idempotency_keys::key.eq(key),
        idempotency_keys::request_hash.eq(request_hash),
        idempotency_keys::payment_id.eq(payment_id),
        idempotency_keys::created_at.eq(now),
    );
    let inserted = diesel::insert_into(idempotency_keys::table)
        .values(new_key)
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    if inserted == 1 {
        return Ok(KeyState::New);
    }
    let row: KeyRow = idempotency_keys::table
        .find((owner, key))
        .select(KeyRow::as_select())
        .for_update()
        .first(conn)
        .await?;
    if row.created_at < now - ttl {
        diesel::delete(idempotency_keys::table.find((owner, key)))
            .execute(conn)
            .await?;
        diesel::insert_into(idempotency_keys::table)
            .values(new_key)
            .execute(conn)
            .await?;
        return Ok(KeyState::New);
    }
    if row.request_hash != request_hash {
        return Ok(KeyState::Mismatch);
    }
    if let (Some(status), Some(body)) = (row.response_status, row.response_body) {
        return Ok(KeyState::Done {
            status: u16::try_from(status).context("negative status")?,
            body,
        });
    }
    if row.created_at < now - stale_after {
        diesel::update(idempotency_keys::table.find((owner, key)))
            .set(idempotency_keys::created_at.eq(now))
            .execute(conn)
            .await?;
        return Ok(KeyState::Abandoned {
            payment_id: row.payment_id,
        });
    }
    Ok(KeyState::InFlight)
}

/// The jobs table of schema `payments` (see [`platform::jobs`]).
pub const JOBS: &str = "payments.jobs";

/// Moves a payment from `from` to the state of `next` if, and only if, it is
/// still in `from` (compare-and-set: a late or repeated outcome never
/// overwrites one already recorded), appending `event_type` with `data` to the
/// outbox in the same statement. Returns whether it moved.
pub async fn transition(
    conn: &AsyncPgConnection,
    next: &Payment,
    from: PaymentStatus,
    event_type: &str,
    data: &serde_json::Value,
    traceparent: Option<&str>,
) -> Result<bool, StoreError> {
    use diesel::sql_types::{Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
    let moved = diesel::sql_query(
        "WITH moved AS (UPDATE payments.payments SET status = $2, failure_reason = $3, \
             provider_reference = $4, refund_reference = $5, updated_at = $6 \
             WHERE id = $1 AND status = $7 RETURNING order_id) \
         INSERT INTO payments.outbox (id, subject, event_type, data, traceparent, occurred_at) \
         SELECT $8, order_id::text, $9, $10, $11, $6 FROM moved",
    )
    .bind::<SqlUuid, _>(next.id)
    .bind::<Text, _>(next.status.as_str())
    .bind::<Nullable<Text>, _>(next.failure_reason.as_deref())
    .bind::<Nullable<Text>, _>(next.provider_reference.as_deref())
    .bind::<Nullable<Text>, _>(next.refund_reference.as_deref())
    .bind::<Timestamptz, _>(next.updated_at)
    .bind::<Text, _>(from.as_str())
    .bind::<SqlUuid, _>(Uuid::now_v7())
    .bind::<Text, _>(event_type)
    .bind::<Jsonb, _>(data)
    .bind::<Nullable<Text>, _>(traceparent)
    .execute(&mut &*conn)
    .await?;
    Ok(moved == 1)
}

/// What settling found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// This outcome was recorded (the payment was still `processing`).
    pub won: bool,
    /// The order had been cancelled when it was.
    pub order_cancelled: bool,
}

/// Records the outcome of a charge (a `processing` → `succeeded`/`failed`
/// [`transition`] with its event) and, if keyed, the response under its
/// idempotency key, in one pipelined batch of the caller's transaction.
#[allow(clippy::too_many_arguments)]
pub async fn settle(
    conn: &mut AsyncPgConnection,
    payment: &Payment,
    event_type: &str,
    data: &serde_json::Value,
    traceparent: Option<&str>,
    key: Option<(&str, &str)>,
    status: u16,
    body: &[u8],
) -> Result<Settled, StoreError> {
    let conn: &AsyncPgConnection = conn;
    let (won, _, cancelled) = futures_util::future::try_join3(
        transition(
            conn,
            payment,
            PaymentStatus::Processing,
            event_type,
            data,
            traceparent,
        ),
        store_response(conn, key, status, body),
        async {
            Ok(cancelled_orders::table
                .filter(cancelled_orders::order_id.eq(payment.order_id))
                .count()
                .get_result::<i64>(&mut &*conn)
                .await?)
        },
    )
    .await?;
    Ok(Settled {
        won,
        order_cancelled: cancelled > 0,
    })
}

/// Stores the response of a keyed request (without a key: nothing).
pub async fn store_response(
    conn: &AsyncPgConnection,
    key: Option<(&str, &str)>,
    status: u16,
    body: &[u8],
) -> Result<(), StoreError> {
    let Some((owner, key)) = key else {
        return Ok(());
    };
    diesel::update(idempotency_keys::table.find((owner, key)))
        .set((
            idempotency_keys::response_status.eq(i16::try_from(status).unwrap_or(500)),
            idempotency_keys::response_body.eq(body),
        ))
        .execute(&mut &*conn)
        .await?;
    Ok(())
}

/// Enqueues a reconciliation of every payment `processing` since before
/// `stale_before` (a crash between the provider's answer and the settle);
/// returns how many were enqueued.
pub async fn enqueue_stuck(
    conn: &mut AsyncPgConnection,
    stale_before: OffsetDateTime,
) -> Result<usize, StoreError> {
    Ok(diesel::sql_query(
        "INSERT INTO payments.jobs (kind, key, payload, run_at) \
         SELECT 'reconcile', id::text, jsonb_build_object('payment_id', id), now() \
         FROM payments.payments WHERE status = 'processing' AND updated_at < $1 \
         ON CONFLICT (kind, key) DO NOTHING",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(stale_before)
    .execute(conn)
    .await?)
}

/// Points a taken-over key at the payment its new request starts.
pub async fn set_key_payment(
    conn: &mut AsyncPgConnection,
    owner: &str,
    key: &str,
    payment_id: Uuid,
) -> Result<(), StoreError> {
    diesel::update(idempotency_keys::table.find((owner, key)))
        .set(idempotency_keys::payment_id.eq(payment_id))
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes keys older than `ttl`; returns how many.
pub async fn sweep_keys(
    conn: &mut AsyncPgConnection,
    now: OffsetDateTime,
    ttl: time::Duration,
) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(now - ttl)))
            .execute(conn)
            .await?,
    )
}
