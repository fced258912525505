//! Persistence of schema `payments`, one module per table, as free async
//! functions over a connection: the caller owns the transaction.
//!
//! - [`payments`]: the payments, each change of state appended to the
//!   outbox in the same statement;
//! - [`refunds`]: each refund of a payment, its amount reserved on the
//!   payment by compare-and-set when it is accepted;
//! - [`idempotency`]: `Idempotency-Key`s, the payment each started and the
//!   answer stored under it;
//! - the inbox and the jobs table are [`platform::inbox`] and
//!   [`platform::jobs`] over [`INBOX`] and [`JOBS`].

pub mod idempotency;
pub mod payments;
pub mod refunds;

use diesel::result::Error as DieselError;
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
            captured_minor -> Int8,
            refunded_minor -> Int8,
            refund_pending_minor -> Int8,
            capture_method -> Text,
        }
    }

    diesel::table! {
        payments.refunds (id) {
            id -> Uuid,
            payment_id -> Uuid,
            amount_minor -> Int8,
            currency -> Text,
            status -> Text,
            reason -> Text,
            items -> Jsonb,
            requested_by -> Text,
            provider_reference -> Nullable<Text>,
            failure_reason -> Nullable<Text>,
            created_at -> Timestamptz,
            updated_at -> Timestamptz,
        }
    }

    diesel::table! {
        /// Claimed through `platform::idempotency::KeyTable` (this shape
        /// is for tests that set a key up by hand).
        payments.idempotency_keys (owner, key) {
            owner -> Text,
            key -> Text,
            request_hash -> Text,
            resource_id -> Nullable<Uuid>,
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

/// The jobs table of schema `payments` (see [`platform::jobs`]).
pub const JOBS: &str = "payments.jobs";

/// The inbox of schema `payments` (see [`platform::inbox`]).
pub const INBOX: &str = "payments.inbox";

/// Where payments' outbox is.
pub const OUTBOX: OutboxSource = OutboxSource {
    table: "payments.outbox",
    name: "payments",
    notify_channel: "payments_outbox",
    subject: "subject",
    sequence: "NULL::int4",
    data: "data::text",
    source: contracts::payment::SOURCE,
    data_schema: schema_of,
};

fn schema_of(event_type: &str) -> Option<String> {
    contracts::payment::PaymentEventType::parse(event_type)
        .map(contracts::payment::PaymentEventType::data_schema)
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
        match platform::db::violated_unique(&error) {
            Some("payments_one_live_per_order") => StoreError::OrderAlreadyHasPayment,
            _ => StoreError::Unexpected(anyhow::Error::new(error).context("database error")),
        }
    }
}
