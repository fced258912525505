use reqwest::StatusCode;
use serde_json::Value;
use test_support::tokens::{self, TokenSpec};

use crate::helpers::{AUDIENCE, order_body, problem, spawn_app, spawn_app_with};

fn spec(scopes: &[&str]) -> TokenSpec {
    TokenSpec::new(AUDIENCE, "alice", scopes)
}

fn rw() -> TokenSpec {
    spec(&["orders.read", "orders.write"])
}

#[tokio::test]
async fn a_request_without_a_token_is_a_401_problem() {
    let app = spawn_app().await;
    for response in [
        app.client
            .get(app.url("/api/v1/orders"))
            .send()
            .await
            .unwrap(),
        app.client
            .post(app.url("/api/v1/orders"))
            .json(&order_body())
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
}

#[tokio::test]
async fn every_kind_of_bad_token_is_a_401_and_nothing_is_written() {
    let app = spawn_app().await;
    let expired = TokenSpec {
        expires_in: -300,
        ..rw()
    };
    let wrong_audience = TokenSpec {
        audience: "payments".into(),
        ..rw()
    };
    let wrong_issuer = TokenSpec {
        issuer: "evil-issuer".into(),
        ..rw()
    };
    let cases = [
        (
            "bad signature",
            format!(
                "Bearer {}",
                rw().sign_hs256("another-secret-another-secret-0123456789")
            ),
        ),
        ("expired", format!("Bearer {}", expired.sign())),
        (
            "wrong audience",
            format!("Bearer {}", wrong_audience.sign()),
        ),
        ("wrong issuer", format!("Bearer {}", wrong_issuer.sign())),
        ("not a JWT", "Bearer not.a.jwt".to_owned()),
        ("wrong scheme", format!("Basic {}", rw().sign())),
        (
            "RS256 when HS256 is configured",
            format!("Bearer {}", rw().sign_rs256()),
        ),
    ];
    for (case, header) in cases {
        let response = app
            .client
            .post(app.url("/api/v1/orders"))
            .header("authorization", header)
            .json(&order_body())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{case}");
        problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn a_valid_token_without_the_scope_is_a_403() {
    let app = spawn_app().await;
    let read_only = spec(&["orders.read"]).sign();
    let write_only = spec(&["orders.write"]).sign();
    let payments_only = spec(&["payments.read", "payments.write"]).sign();

    problem(
        app.post_order(&read_only, &order_body()).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    problem(
        app.post_order(&payments_only, &order_body()).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    problem(
        app.get(&write_only, "/api/v1/orders").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let id = app.create_order(&write_only).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    problem(
        app.get(&write_only, &format!("/api/v1/orders/{id}")).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    problem(
        app.cancel(&read_only, &id).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn rs256_tokens_are_verified_with_the_configured_public_key() {
    let app = spawn_app_with(|settings| {
        settings.auth.hs256_secret = None;
        settings.auth.public_key_file = Some(tokens::rs256_public_key_path());
        settings.payments.service_token = Some("a-static-service-token".to_owned().into());
    })
    .await;

    let created = app.post_order(&rw().sign_rs256(), &order_body()).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let order: Value = created.json().await.unwrap();
    assert_eq!(order["user_id"], "alice");

    // An HS256 token, even one signed with the public key as its secret, is refused.
    let public_pem = std::fs::read_to_string(tokens::rs256_public_key_path()).unwrap();
    for token in [rw().sign(), rw().sign_hs256(&public_pem)] {
        problem(
            app.post_order(&token, &order_body()).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        )
        .await;
    }
}
