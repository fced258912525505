//! Diesel's view of schema `orders`.
//!
//! Written to match `migrations/orders` (diesel CLI's `print-schema` needs
//! libpq, which this project does not use); every integration test runs the
//! migrations and these declarations against a real database, so a mismatch
//! fails the build's tests, not production.

diesel::table! {
    orders.events (position) {
        position -> Int8,
        id -> Uuid,
        order_id -> Uuid,
        sequence -> Int4,
        event_type -> Text,
        event_version -> Int2,
        payload -> Json,
        snapshot -> Json,
        snapshot_shape -> Int2,
        sealed -> Nullable<Bytea>,
        actor -> Nullable<Text>,
        traceparent -> Nullable<Text>,
        occurred_at -> Timestamptz,
        published_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    orders.orders (id) {
        id -> Uuid,
        order_number -> Text,
        user_id -> Text,
        status -> Text,
        payment_status -> Text,
        currency -> Text,
        subtotal_minor -> Int8,
        discount_minor -> Int8,
        tax_minor -> Int8,
        shipping_minor -> Int8,
        total_minor -> Int8,
        shipping_method -> Nullable<Text>,
        payment_method -> Nullable<Text>,
        tax_rate_bp -> Int4,
        shipping_fee_minor -> Nullable<Int8>,
        version -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        coupon -> Nullable<Jsonb>,
        carrier -> Nullable<Text>,
        tracking_number -> Nullable<Text>,
        completed_at -> Nullable<Timestamptz>,
        cancelled_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    orders.order_items (id) {
        id -> Uuid,
        order_id -> Uuid,
        line -> Int4,
        product_id -> Text,
        name -> Nullable<Text>,
        sku -> Nullable<Text>,
        quantity -> Int4,
        unit_price_minor -> Int8,
        subtotal_minor -> Int8,
        variant_id -> Nullable<Text>,
    }
}

diesel::joinable!(order_items -> orders (order_id));
diesel::allow_tables_to_appear_in_same_query!(events, orders, order_items);

diesel::table! {
    orders.inbox (event_id) {
        event_id -> Uuid,
        event_type -> Text,
        consumed_at -> Timestamptz,
    }
}

diesel::table! {
    orders.coupon_uses (code, user_id) {
        code -> Text,
        user_id -> Text,
        uses -> Int4,
    }
}
