//! Persistence of schema `payments`, one module per table, as free async
//! functions over a connection: the caller owns the transaction.
//!
//! - [`payments`]: the payments, each change of state appended to the
//!   outbox (and queued for the relay in `unpublished`) in the same statement;
//! - [`idempotency`]: `Idempotency-Key`s, the payment each started and the
//!   answer stored under it;
//! - the inbox and the jobs table are [`platform::inbox`] and
//!   [`platform::jobs`] over [`INBOX`] and [`JOBS`].

pub mod idempotency;
pub mod payments;

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use platform::relay::OutboxSource;

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
            data -> Json,
            traceparent -> Nullable<Text>,
            occurred_at -> Timestamptz,
        }
    }

    diesel::table! {
        /// Outbox rows the relay has yet to publish (their `position`).
        payments.unpublished (position) {
            position -> Int8,
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

/// The jobs table of schema `payments` (see [`platform::jobs`]).
pub const JOBS: &str = "payments.jobs";

/// The inbox of schema `payments` (see [`platform::inbox`]).
pub const INBOX: &str = "payments.inbox";

/// Where payments' outbox is: `payments.outbox`, with the rows still to
/// publish listed in `payments.unpublished` (publishing deletes the entry,
/// never rewrites the row).
pub const OUTBOX: OutboxSource = OutboxSource {
    name: "payments",
    notify_channel: "payments_outbox",
    // As orders' (see there): the queue's first entries, then their rows
    // by primary key.
    select_unpublished: "SELECT position, id, subject, NULL::int4 AS sequence, event_type, \
        data::text AS data, traceparent, occurred_at FROM payments.outbox \
        WHERE position = ANY (ARRAY(SELECT position FROM payments.unpublished \
            ORDER BY position LIMIT $1)) \
        ORDER BY position",
    mark_published: "DELETE FROM payments.unpublished WHERE position = ANY($1)",
    backlog: "SELECT (SELECT count(*) FROM payments.unpublished)::int8 AS backlog, \
        COALESCE(EXTRACT(EPOCH FROM now() - (SELECT occurred_at FROM payments.outbox \
            WHERE position = (SELECT min(position) FROM payments.unpublished))), 0)::float8 AS oldest",
    source: contracts::payment::SOURCE,
    data_schema: schema_of,
};

fn schema_of(event_type: &str) -> Option<String> {
    Some(format!(
        "https://schemas.orders.example/events/{event_type}.v1.json"
    ))
}

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
