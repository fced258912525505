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

#[tokio::test]
async fn tokens_not_yet_valid_or_living_too_long_are_refused() {
    let app = spawn_app_with(|settings| settings.auth.max_token_lifetime_seconds = 3_600).await;
    let mut early = rw();
    early.not_before_in = Some(600);
    let mut forever = rw();
    forever.expires_in = 10 * 365 * 86_400;
    for (token, said) in [
        (early.sign(), "not valid yet"),
        (forever.sign(), "lives longer than 3600 s"),
    ] {
        let refused = problem(
            app.post_order(&token, &order_body()).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        )
        .await;
        assert!(
            refused["detail"].as_str().unwrap().contains(said),
            "{refused}"
        );
    }
    assert_eq!(app.event_count().await, 0);
    let mut ready = rw();
    ready.not_before_in = Some(-5);
    assert_eq!(
        app.post_order(&ready.sign(), &order_body()).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn jwks_keys_are_fetched_cached_and_refreshed_on_an_unknown_kid() {
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};
    let provider = MockServer::start().await;
    // At first the provider publishes no key at all.
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"keys": []})))
        .up_to_n_times(1)
        .mount(&provider)
        .await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(tokens::RS256_JWKS.as_bytes(), "application/json"),
        )
        .mount(&provider)
        .await;
    let url = format!("{}/.well-known/jwks.json", provider.uri());
    let app = spawn_app_with(move |settings| {
        settings.auth.hs256_secret = None;
        settings.auth.jwks_url = Some(url);
        settings.auth.jwks_refresh_seconds = 1;
        settings.payments.service_token = Some("a-static-service-token".to_owned().into());
    })
    .await;
    let token = rw().sign_rs256_with_kid("test-key-1");
    problem(
        app.post_order(&token, &order_body()).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    // The key is published (a rotation); an unknown kid fetches the set
    // again, no more often than jwks_refresh_seconds.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(
        app.post_order(&token, &order_body()).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.post_order(&token, &order_body()).await.status(),
        StatusCode::CREATED,
        "then it is cached"
    );
    let fetches = provider.received_requests().await.unwrap().len();
    assert_eq!(fetches, 2);
    for refused in [
        rw().sign_rs256_with_kid("another-key"),
        rw().sign_rs256(),
        rw().sign(),
    ] {
        problem(
            app.post_order(&refused, &order_body()).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        )
        .await;
    }
    assert!(
        provider.received_requests().await.unwrap().len() <= 3,
        "unknown kids cannot make it hammer the provider"
    );
}

#[tokio::test]
async fn production_refuses_hs256_known_secrets_and_minting() {
    use orders::app::Application;
    let db = test_support::TestDatabase::create("orders", "orders", orders::MIGRATIONS)
        .await
        .unwrap();
    let mut broker = test_support::broker::TestBroker::new();
    for secret in [
        "local-development-secret-do-not-use-in-production",
        "a-long-private-secret-nobody-has-seen-0123456789",
    ] {
        let mut settings = crate::helpers::test_settings(&db, &mut broker);
        settings.auth.production = true;
        settings.auth.hs256_secret = Some(secret.to_owned().into());
        let refused = Application::build(settings).await.err().expect("refused");
        assert!(
            format!("{refused:#}").contains("auth.production"),
            "{refused:#}"
        );
    }
    let minted = std::process::Command::new(env!("CARGO_BIN_EXE_orders"))
        .args(["token", "anyone", "--scopes", "orders.admin"])
        .env("ORDERS_AUTH__PRODUCTION", "true")
        .env(
            "ORDERS_AUTH__HS256_SECRET",
            "a-long-private-secret-nobody-has-seen-0123456789",
        )
        .output()
        .unwrap();
    assert!(!minted.status.success());
    assert!(minted.stdout.is_empty(), "no token printed");
    let long = std::process::Command::new(env!("CARGO_BIN_EXE_orders"))
        .args(["token", "anyone", "--ttl", "31536000"])
        .env(
            "ORDERS_AUTH__HS256_SECRET",
            "a-long-private-secret-nobody-has-seen-0123456789",
        )
        .output()
        .unwrap();
    assert!(!long.status.success(), "a year-long token is not minted");
}
