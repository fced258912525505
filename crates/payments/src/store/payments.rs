//! `payments.payments` (and `payments.cancelled_orders`): a payment's state,
//! moved by compare-and-set with its event appended to the outbox in the
//! same statement.

use anyhow::anyhow;
use contracts::money::{Currency, Money};
use contracts::payment::{CaptureMethod, PaymentStatus};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use platform::db::{JsonText, Prepared};
use time::OffsetDateTime;
use uuid::Uuid;

use super::StoreError;
use super::idempotency::store_response;
use super::schema::{cancelled_orders, payments};
use crate::domain::Payment;

#[derive(Debug, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = payments, treat_none_as_null = true, treat_none_as_default_value = false)]
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
    captured_minor: i64,
    refunded_minor: i64,
    refund_pending_minor: i64,
    capture_method: String,
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
            captured_minor: payment.captured.minor(),
            refunded_minor: payment.refunded.minor(),
            refund_pending_minor: payment.refund_pending.minor(),
            capture_method: payment.capture_method.as_str().to_owned(),
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
            capture_method: CaptureMethod::parse(&self.capture_method).ok_or_else(|| {
                anyhow!(
                    "payment {} has capture method {}",
                    self.id,
                    self.capture_method
                )
            })?,
            status: PaymentStatus::parse(&self.status)
                .ok_or_else(|| anyhow!("payment {} has status {}", self.id, self.status))?,
            failure_reason: self.failure_reason,
            provider_reference: self.provider_reference,
            refund_reference: self.refund_reference,
            captured: Money::from_minor(self.captured_minor, currency)?,
            refunded: Money::from_minor(self.refunded_minor, currency)?,
            refund_pending: Money::from_minor(self.refund_pending_minor, currency)?,
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

/// The payment, locked for the rest of the transaction (refunds of one
/// payment are decided one at a time).
pub async fn lock_payment(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<Payment>, StoreError> {
    let row = payments::table
        .find(id)
        .select(PaymentRow::as_select())
        .for_update()
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

/// Whether orders has announced `order_id` cancelled (`order.cancelled`
/// consumed).
pub async fn order_cancelled(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
) -> Result<bool, StoreError> {
    Ok(diesel::select(diesel::dsl::exists(
        cancelled_orders::table.filter(cancelled_orders::order_id.eq(order_id)),
    ))
    .get_result(conn)
    .await?)
}

/// Moves a payment from `from` to the state of `next` if, and only if, it is
/// still in `from` (compare-and-set: a late or repeated outcome never
/// overwrites one already recorded), appending `event_type` with `data` to the
/// outbox in the same statement. Returns whether it moved.
pub async fn transition(
    conn: &AsyncPgConnection,
    next: &Payment,
    from: PaymentStatus,
    event_type: &str,
    data: &JsonText,
    traceparent: Option<&str>,
) -> Result<bool, StoreError> {
    use diesel::sql_types::{Json, Nullable, Text, Timestamptz, Uuid as SqlUuid};
    let moved = Prepared(
        diesel::sql_query(
            "WITH moved AS (UPDATE payments.payments SET status = $2, failure_reason = $3, \
             provider_reference = $4, refund_reference = $5, updated_at = $6, captured_minor = $12 \
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
        .bind::<Json, _>(data)
        .bind::<Nullable<Text>, _>(traceparent)
        .bind::<diesel::sql_types::Int8, _>(next.captured.minor()),
    )
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
    data: &JsonText,
    traceparent: Option<&str>,
    key: Option<(&str, &str)>,
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
        store_response(conn, key, body),
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

/// Payments `processing` since before a scan's threshold, and how many
/// reconciliations the scan enqueued (the others were already pending).
#[derive(Debug, QueryableByName)]
pub struct Stuck {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub stuck: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub enqueued: i64,
}

/// Enqueues a reconciliation of every payment `processing` since before
/// `stale_before` (a crash between the provider's answer and the settle).
pub async fn enqueue_stuck(
    conn: &mut AsyncPgConnection,
    stale_before: OffsetDateTime,
) -> Result<Stuck, StoreError> {
    Ok(Prepared(
        diesel::sql_query(
            "WITH stuck AS (SELECT id FROM payments.payments \
                 WHERE status = 'processing' AND updated_at < $1), \
             enqueued AS (INSERT INTO payments.jobs (kind, key, payload, run_at) \
                 SELECT 'reconcile', id::text, jsonb_build_object('payment_id', id), now() \
                 FROM stuck ON CONFLICT (kind, key) DO NOTHING RETURNING 1) \
             SELECT (SELECT count(*) FROM stuck) AS stuck, \
                    (SELECT count(*) FROM enqueued) AS enqueued",
        )
        .bind::<diesel::sql_types::Timestamptz, _>(stale_before),
    )
    .get_result(conn)
    .await?)
}

/// Enqueues the void of every authorization made before `expired_before`
/// (manual capture never captured); returns how many were enqueued.
pub async fn enqueue_expired_authorizations(
    conn: &mut AsyncPgConnection,
    expired_before: OffsetDateTime,
) -> Result<usize, StoreError> {
    Ok(Prepared(
        diesel::sql_query(
            "INSERT INTO payments.jobs (kind, key, payload, run_at) \
         SELECT 'void', id::text, \
                jsonb_build_object('payment_id', id, 'reason', 'authorization_expired'), now() \
         FROM payments.payments WHERE status = 'authorized' AND updated_at < $1 \
         ON CONFLICT (kind, key) DO NOTHING",
        )
        .bind::<diesel::sql_types::Timestamptz, _>(expired_before),
    )
    .execute(conn)
    .await?)
}
