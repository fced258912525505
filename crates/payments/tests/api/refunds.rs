//! Refunds: durable, done once, admins only.

use crate::helpers::*;

#[tokio::test]
async fn a_refund_is_durable_done_once_and_only_for_admins() {
    let app = spawn_app().await;
    let order = app.pending_order("alice").await;
    let paid: Value = app
        .pay(&token("alice"), &body(order, "tok_visa"))
        .await
        .json()
        .await
        .unwrap();
    let id = paid["id"].as_str().unwrap().to_owned();
    let refund = |bearer: String| {
        app.client
            .post(format!("{}/api/v1/payments/{id}/refund", app.address))
            .bearer_auth(bearer)
            .json(&json!({"reason": "amount_mismatch"}))
            .send()
    };
    problem(
        refund(token("alice")).await.unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(
        refund(admin()).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let refunded = app.eventually(&id, |p| p["status"] == "refunded").await;
    assert_eq!(refunded["id"], id);
    // Asking again changes nothing.
    assert_eq!(refund(admin()).await.unwrap().status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.provider.ledger(), (1, 1));
    assert_eq!(
        app.event_types().await,
        ["payment.successful", "payment.refunded"]
    );

    // A failed payment has nothing to refund.
    let declined_order = app.pending_order("alice").await;
    let declined: Value = app
        .pay(&token("alice"), &body(declined_order, "tok_chargeDeclined"))
        .await
        .json()
        .await
        .unwrap();
    problem(
        app.client
            .post(format!(
                "{}/api/v1/payments/{}/refund",
                app.address,
                declined["id"].as_str().unwrap()
            ))
            .bearer_auth(admin())
            .send()
            .await
            .unwrap(),
        StatusCode::CONFLICT,
        "not_refundable",
    )
    .await;
}
