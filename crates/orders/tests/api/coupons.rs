//! Coupons from configuration, through the real API: the discount applied,
//! every refusal a `400 invalid_coupon` that writes nothing, and the total
//! always the sum of its parts.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, order_body, problem, spawn_app_with, user};

async fn shop() -> TestApp {
    spawn_app_with(|settings| {
        settings.promotions = serde_json::from_value(json!({
            "coupons": {
                "SUMMER10": {"percent": "10", "valid_until": "2100-01-01T00:00:00Z"},
                "WELCOME5": {"amount": "5.00", "currency": "USD", "min_subtotal": "20.00", "per_user_limit": 1},
                "SPRING2024": {"percent": "15", "valid_until": "2024-06-01T00:00:00Z"},
                "FUTURE": {"percent": "15", "valid_from": "2100-01-01T00:00:00Z"}
            }
        }))
        .expect("promotions");
        settings.pricing.tax_rate_percent = "8.25".to_owned();
    })
    .await
}

/// 2 × 29.99 + 1 × 5.00 USD with `coupon`.
fn with_coupon(coupon: &str) -> Value {
    let mut body = order_body();
    body["coupon_code"] = json!(coupon);
    body
}

fn minor(amount: &Value) -> i64 {
    let text = amount.as_str().expect("a decimal string");
    let (whole, fraction) = text.split_once('.').expect("two decimals");
    whole.parse::<i64>().unwrap() * 100 + fraction.parse::<i64>().unwrap()
}

fn assert_sum_of_parts(order: &Value) {
    assert_eq!(
        minor(&order["total"]),
        minor(&order["subtotal"]) - minor(&order["discount"])
            + minor(&order["tax"])
            + minor(&order["shipping"]),
        "{order}"
    );
}

#[tokio::test]
async fn a_valid_coupon_discounts_the_subtotal_before_tax() {
    let app = shop().await;
    let response = app
        .post_order(&user("usr_summer"), &with_coupon("summer10"))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.unwrap();
    assert_eq!(order["coupon_code"], "SUMMER10");
    assert_eq!(order["subtotal"], "64.98");
    assert_eq!(order["discount"], "6.50"); // 6.498 rounds half up
    assert_eq!(order["tax"], "4.82"); // 8.25% of 58.48 = 4.8246
    assert_eq!(order["total"], "63.30");
    assert_sum_of_parts(&order);
}

#[tokio::test]
async fn every_refused_coupon_is_a_400_that_writes_nothing() {
    let app = shop().await;
    let token = user("usr_refused");
    let before = app.event_count().await;
    let mut euros = with_coupon("WELCOME5");
    euros["currency"] = json!("EUR");
    let mut small = with_coupon("WELCOME5");
    small["items"] = json!([{"product_id": "p", "quantity": 1, "unit_price": "19.99"}]);
    for (body, detail) in [
        (with_coupon("NOPE"), "not a valid coupon"),
        (with_coupon("SPRING2024"), "has expired"),
        (with_coupon("FUTURE"), "not valid yet"),
        (euros, "in USD only"),
        (small, "at least 20.00 USD"),
    ] {
        let refused = problem(
            app.post_order(&token, &body).await,
            StatusCode::BAD_REQUEST,
            "invalid_coupon",
        )
        .await;
        let said = refused["detail"].as_str().unwrap_or_default();
        assert!(said.contains(detail), "{said}");
        assert_eq!(refused["errors"][0]["field"], "coupon_code");
    }
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn a_per_user_limit_counts_live_orders_and_a_cancellation_gives_the_use_back() {
    let app = shop().await;
    let token = user("usr_welcome");
    let first = app.post_order(&token, &with_coupon("WELCOME5")).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["discount"], "5.00");
    assert_sum_of_parts(&first);

    let before = app.event_count().await;
    let again = problem(
        app.post_order(&token, &with_coupon("welcome5")).await,
        StatusCode::BAD_REQUEST,
        "invalid_coupon",
    )
    .await;
    assert!(again["detail"].as_str().unwrap().contains("used as often"));
    assert_eq!(app.event_count().await, before, "nothing was written");

    // Another user has their own use.
    let other = app
        .post_order(&user("usr_welcome_2"), &with_coupon("WELCOME5"))
        .await;
    assert_eq!(other.status(), StatusCode::CREATED);

    // Cancelling the first order gives the use back.
    let cancelled = app.cancel(&token, first["id"].as_str().unwrap()).await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let third = app.post_order(&token, &with_coupon("WELCOME5")).await;
    assert_eq!(third.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn concurrent_orders_never_exceed_the_per_user_limit() {
    let app = shop().await;
    let token = user("usr_racer");
    let body = with_coupon("WELCOME5");
    let attempts = (0..8).map(|_| app.post_order(&token, &body));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|response| response.status())
        .collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::BAD_REQUEST)
    );
}

#[tokio::test]
async fn a_discount_below_its_minimum_after_an_item_edit_is_dropped() {
    let app = shop().await;
    let token = user("usr_edit");
    let order: Value = app
        .post_order(&token, &with_coupon("WELCOME5"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(order["discount"], "5.00");
    // Remove the 2 × 29.99 line: 5.00 is left, below the 20.00 minimum.
    let id = order["id"].as_str().unwrap();
    let line = order["items"][0]["id"].as_str().unwrap();
    let response = app
        .client
        .delete(app.url(&format!("/api/v1/orders/{id}/items/{line}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let edited: Value = response.json().await.unwrap();
    assert_eq!(edited["subtotal"], "5.00");
    assert_eq!(edited["discount"], "0.00");
    assert_eq!(edited["coupon_code"], "WELCOME5");
    assert_sum_of_parts(&edited);
}
