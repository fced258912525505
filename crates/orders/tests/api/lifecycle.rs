use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{admin, problem, spawn_app, user};

#[tokio::test]
async fn an_order_is_paid_shipped_and_delivered_and_its_history_tells_so() {
    let app = spawn_app().await;
    let owner = user("alice");
    let order = app.create_order(&owner).await;
    let id = order["id"].as_str().unwrap();

    for (status, version) in [("paid", 2), ("shipped", 3), ("delivered", 4)] {
        let response = app.patch_status(&admin(), id, status).await;
        assert_eq!(response.status(), StatusCode::OK, "to {status}");
        assert_eq!(
            response.headers()["etag"],
            format!("\"{version}\"").as_str()
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], status);
        assert_eq!(body["version"], version);
    }

    let fetched: Value = app
        .get(&owner, &format!("/api/v1/orders/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["status"], "delivered");
    assert_eq!(fetched["payment_status"], "paid");
    let history = app.history(&owner, id).await;
    assert_eq!(
        history,
        vec![
            (1, "order.created".to_owned()),
            (2, "order.paid".to_owned()),
            (3, "order.shipped".to_owned()),
            (4, "order.delivered".to_owned()),
        ]
    );
    let trail: Value = app
        .get(&owner, &format!("/api/v1/orders/{id}/events"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(trail["data"][0]["actor"], "alice");
    assert_eq!(trail["data"][1]["actor"], "admin_1");
    assert_eq!(
        trail["data"][1]["data"]["amount"],
        json!({"amount": "64.98", "currency": "USD"})
    );
}

#[tokio::test]
async fn going_backwards_skipping_or_naming_an_unknown_status_is_an_invalid_transition() {
    let app = spawn_app().await;
    let order = app.create_order(&user("alice")).await;
    let id = order["id"].as_str().unwrap();

    let skip = problem(
        app.patch_status(&admin(), id, "shipped").await,
        StatusCode::BAD_REQUEST,
        "invalid_transition",
    )
    .await;
    assert_eq!(skip["current_status"], "pending");
    problem(
        app.patch_status(&admin(), id, "teleported").await,
        StatusCode::BAD_REQUEST,
        "invalid_transition",
    )
    .await;
    for status in ["paid", "shipped", "delivered"] {
        app.patch_status(&admin(), id, status).await;
    }
    for status in ["pending", "paid", "shipped", "cancelled"] {
        let body = problem(
            app.patch_status(&admin(), id, status).await,
            StatusCode::BAD_REQUEST,
            "invalid_transition",
        )
        .await;
        assert_eq!(body["current_status"], "delivered", "to {status}");
    }
    // A user asking to go back to pending is told it is invalid, not forbidden.
    problem(
        app.patch_status(&user("alice"), id, "pending").await,
        StatusCode::BAD_REQUEST,
        "invalid_transition",
    )
    .await;
    assert_eq!(
        app.history(&admin(), id).await.len(),
        4,
        "nothing was written"
    );
}

#[tokio::test]
async fn fulfilment_and_payment_transitions_need_the_admin_scope() {
    let app = spawn_app().await;
    let owner = user("alice");
    let order = app.create_order(&owner).await;
    let id = order["id"].as_str().unwrap();

    for status in ["paid", "shipped", "delivered"] {
        problem(
            app.patch_status(&owner, id, status).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    assert_eq!(app.history(&owner, id).await.len(), 1);
}

#[tokio::test]
async fn the_owner_cancels_with_delete_and_gets_the_cancelled_order() {
    let app = spawn_app().await;
    let owner = user("alice");
    let order = app.create_order(&owner).await;
    let id = order["id"].as_str().unwrap();

    let response = app.cancel(&owner, id).await;

    assert_eq!(response.status(), StatusCode::OK);
    let cancelled: Value = response.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancellation_reason"], "changed my mind");
    let trail: Value = app
        .get(&owner, &format!("/api/v1/orders/{id}/events"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(trail["data"][1]["type"], "order.cancelled");
    assert_eq!(
        trail["data"][1]["data"],
        json!({"from": "pending", "reason": "changed my mind"})
    );

    // Cancelling again changes nothing; moving on from cancelled is refused.
    let again: Value = app.cancel(&owner, id).await.json().await.unwrap();
    assert_eq!(again["version"], 2);
    problem(
        app.patch_status(&admin(), id, "paid").await,
        StatusCode::BAD_REQUEST,
        "invalid_transition",
    )
    .await;
}

#[tokio::test]
async fn paid_and_shipped_orders_can_be_cancelled_but_delivered_ones_cannot() {
    let app = spawn_app().await;
    let owner = user("alice");
    for steps in [vec!["paid"], vec!["paid", "shipped"]] {
        let id = app.create_order(&owner).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        for step in &steps {
            app.patch_status(&admin(), &id, step).await;
        }
        assert_eq!(
            app.cancel(&owner, &id).await.status(),
            StatusCode::OK,
            "after {steps:?}"
        );
    }
    let id = app.create_order(&owner).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for step in ["paid", "shipped", "delivered"] {
        app.patch_status(&admin(), &id, step).await;
    }
    problem(
        app.cancel(&owner, &id).await,
        StatusCode::BAD_REQUEST,
        "invalid_transition",
    )
    .await;
}

#[tokio::test]
async fn asking_for_the_current_status_again_is_a_harmless_no_op() {
    let app = spawn_app().await;
    let id = app.create_order(&user("alice")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.patch_status(&admin(), &id, "paid").await;

    let again = app.patch_status(&admin(), &id, "paid").await;

    assert_eq!(again.status(), StatusCode::OK);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["version"], 2);
    assert_eq!(app.history(&admin(), &id).await.len(), 2);
}

#[tokio::test]
async fn if_match_makes_a_change_conditional_on_the_version() {
    let app = spawn_app().await;
    let id = app.create_order(&user("alice")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let patch = |version: &str| {
        app.client
            .patch(app.url(&format!("/api/v1/orders/{id}")))
            .bearer_auth(admin())
            .header("if-match", version)
            .json(&json!({"status": "paid"}))
            .send()
    };

    let stale = patch("\"7\"").await.unwrap();
    let body = problem(
        stale,
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
    )
    .await;
    assert_eq!(body["current_version"], 1);

    let current = patch("\"1\"").await.unwrap();
    assert_eq!(current.status(), StatusCode::OK);

    let garbage = patch("yesterday").await.unwrap();
    problem(garbage, StatusCode::BAD_REQUEST, "validation_error").await;
}

#[tokio::test]
async fn a_patch_body_with_unknown_fields_or_no_status_is_refused() {
    let app = spawn_app().await;
    let id = app.create_order(&user("alice")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for body in [
        json!({}),
        json!({"status": "paid", "colour": "red"}),
        json!({"status": 3}),
    ] {
        let response = app
            .client
            .patch(app.url(&format!("/api/v1/orders/{id}")))
            .bearer_auth(admin())
            .json(&body)
            .send()
            .await
            .unwrap();
        problem(response, StatusCode::BAD_REQUEST, "validation_error").await;
    }
    assert_eq!(app.history(&admin(), &id).await.len(), 1);
}

#[tokio::test]
async fn an_order_left_unpaid_is_cancelled_automatically_but_a_paid_one_is_not() {
    let app = crate::helpers::spawn_app_with(|settings| {
        settings.unpaid.cancel_after_seconds = 1;
        settings.unpaid.sweep_every_ms = 200;
    })
    .await;
    let owner = user("alice");
    let unpaid = app.create_order(&owner).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let paid = app.create_order(&owner).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.patch_status(&admin(), &paid, "paid").await.status(),
        StatusCode::OK
    );

    let mut order = Value::Null;
    for _ in 0..40 {
        order = app
            .get(&owner, &format!("/api/v1/orders/{unpaid}"))
            .await
            .json()
            .await
            .unwrap();
        if order["status"] == "cancelled" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["cancellation_reason"], "payment_timeout");
    let trail: Value = app
        .get(&owner, &format!("/api/v1/orders/{unpaid}/events"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(trail["data"][1]["actor"], "svc-orders");
    let kept: Value = app
        .get(&owner, &format!("/api/v1/orders/{paid}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kept["status"], "paid");
}
