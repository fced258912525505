//! `payments.refunds`: each refund of a payment. Accepting one reserves its
//! amount on the payment (`refund_pending_minor`) by compare-and-set, under
//! the table's CHECK that refunds never exceed what was captured; the refund
//! job then moves the amount from pending to refunded with the
//! `payment.refunded` event, once.

use anyhow::anyhow;
use contracts::money::{Currency, Money};
use contracts::payment::{RefundLine, RefundStatus};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use platform::db::{JsonText, Prepared};
use time::OffsetDateTime;
use uuid::Uuid;

use super::StoreError;
use super::schema::{payments, refunds};
use crate::domain::{Payment, Refund};

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = refunds)]
struct RefundRow {
    id: Uuid,
    payment_id: Uuid,
    amount_minor: i64,
    currency: String,
    status: String,
    reason: String,
    items: serde_json::Value,
    requested_by: String,
    provider_reference: Option<String>,
    failure_reason: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl RefundRow {
    fn from_refund(refund: &Refund) -> anyhow::Result<Self> {
        Ok(Self {
            id: refund.id,
            payment_id: refund.payment_id,
            amount_minor: refund.amount.minor(),
            currency: refund.amount.currency().code().to_owned(),
            status: refund.status.as_str().to_owned(),
            reason: refund.reason.clone(),
            items: serde_json::to_value(&refund.items)?,
            requested_by: refund.requested_by.clone(),
            provider_reference: refund.provider_reference.clone(),
            failure_reason: refund.failure_reason.clone(),
            created_at: refund.created_at,
            updated_at: refund.updated_at,
        })
    }

    fn into_refund(self) -> anyhow::Result<Refund> {
        let currency = Currency::parse(&self.currency)?;
        Ok(Refund {
            id: self.id,
            payment_id: self.payment_id,
            amount: Money::from_minor(self.amount_minor, currency)?,
            status: RefundStatus::parse(&self.status)
                .ok_or_else(|| anyhow!("refund {} has status {}", self.id, self.status))?,
            reason: self.reason,
            items: serde_json::from_value::<Vec<RefundLine>>(self.items)?,
            requested_by: self.requested_by,
            provider_reference: self.provider_reference,
            failure_reason: self.failure_reason,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// Records an accepted refund and reserves its amount on its payment, by
/// compare-and-set: only a captured payment with that much left to refund
/// moves (the CHECK on `payments.payments` says the same again).
pub async fn accept(conn: &mut AsyncPgConnection, refund: &Refund) -> Result<(), StoreError> {
    let reserved = Prepared(
        diesel::sql_query(
            "UPDATE payments.payments SET refund_pending_minor = refund_pending_minor + $2 \
             WHERE id = $1 AND status IN ('succeeded', 'partially_refunded') \
             AND captured_minor - refunded_minor - refund_pending_minor >= $2",
        )
        .bind::<diesel::sql_types::Uuid, _>(refund.payment_id)
        .bind::<diesel::sql_types::Int8, _>(refund.amount.minor()),
    )
    .execute(conn)
    .await?;
    if reserved != 1 {
        return Err(anyhow!(
            "payment {} could not reserve a refund of {}",
            refund.payment_id,
            refund.amount
        )
        .into());
    }
    diesel::insert_into(refunds::table)
        .values(RefundRow::from_refund(refund)?)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Refund>, StoreError> {
    let row = refunds::table
        .find(id)
        .select(RefundRow::as_select())
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(RefundRow::into_refund).transpose()?)
}

/// A payment's refunds, oldest first.
pub async fn of_payment(
    conn: &mut AsyncPgConnection,
    payment_id: Uuid,
) -> Result<Vec<Refund>, StoreError> {
    let rows: Vec<RefundRow> = refunds::table
        .filter(refunds::payment_id.eq(payment_id))
        .order((refunds::created_at.asc(), refunds::id.asc()))
        .select(RefundRow::as_select())
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(RefundRow::into_refund)
        .collect::<anyhow::Result<_>>()?)
}

/// Settles a pending refund (`succeeded` or `failed`) by compare-and-set;
/// returns whether this call settled it.
pub async fn settle(conn: &mut AsyncPgConnection, refund: &Refund) -> Result<bool, StoreError> {
    let moved = diesel::update(
        refunds::table
            .find(refund.id)
            .filter(refunds::status.eq(RefundStatus::Pending.as_str())),
    )
    .set((
        refunds::status.eq(refund.status.as_str()),
        refunds::provider_reference.eq(refund.provider_reference.as_deref()),
        refunds::failure_reason.eq(refund.failure_reason.as_deref()),
        refunds::updated_at.eq(refund.updated_at),
    ))
    .execute(conn)
    .await?;
    Ok(moved == 1)
}

/// Writes a payment's amounts and status after a refund settled.
pub async fn update_payment(
    conn: &mut AsyncPgConnection,
    payment: &Payment,
) -> Result<(), StoreError> {
    diesel::update(payments::table.find(payment.id))
        .set((
            payments::status.eq(payment.status.as_str()),
            payments::refunded_minor.eq(payment.refunded.minor()),
            payments::refund_pending_minor.eq(payment.refund_pending.minor()),
            payments::refund_reference.eq(payment.refund_reference.as_deref()),
            payments::updated_at.eq(payment.updated_at),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Appends a payment event to the outbox.
pub async fn append_event(
    conn: &mut AsyncPgConnection,
    payment: &Payment,
    event_type: &str,
    data: &JsonText,
    traceparent: Option<&str>,
) -> Result<(), StoreError> {
    use diesel::sql_types::{Json, Nullable, Text, Timestamptz, Uuid as SqlUuid};
    Prepared(
        diesel::sql_query(
            "INSERT INTO payments.outbox (id, subject, event_type, data, traceparent, occurred_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind::<SqlUuid, _>(Uuid::now_v7())
        .bind::<Text, _>(payment.order_id.to_string())
        .bind::<Text, _>(event_type)
        .bind::<Json, _>(data)
        .bind::<Nullable<Text>, _>(traceparent)
        .bind::<Timestamptz, _>(payment.updated_at),
    )
    .execute(conn)
    .await?;
    Ok(())
}
