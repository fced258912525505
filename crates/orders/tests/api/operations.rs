use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::Value;

use crate::helpers::{problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn health_and_readiness_answer_ok_with_a_database() {
    let app = spawn_app().await;
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    // Ready once the consumer holds its broker connection.
    let ready = test_support::wait_until_ready(&app.client, &app.address).await;
    assert_eq!(ready["status"], "ok", "{ready}");
    assert_eq!(ready["checks"][0]["name"], "database");
    assert_eq!(ready["checks"][1]["name"], "broker");
}

#[tokio::test]
async fn readiness_reads_the_live_connections_and_opens_none() {
    let app = spawn_app().await;
    let connections = || async {
        test_support::count(
            &mut app.conn().await,
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()",
        )
        .await
        .unwrap()
    };
    let before = connections().await;
    let probes = (0..50).map(|_| app.client.get(app.url("/ready")).send());
    for response in futures_util::future::join_all(probes).await {
        let body: Value = response.unwrap().json().await.unwrap();
        assert!(
            body.to_string().len() < 200,
            "no internal error text: {body}"
        );
    }
    let after = connections().await;
    assert!(
        after <= before + 2,
        "50 probes opened database connections: {before} → {after}"
    );
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_unreachable() {
    let app = spawn_app_with(|settings| {
        settings.database.url = SecretString::from("postgres://postgres@127.0.0.1:1/nowhere");
        settings.database.acquire_timeout_ms = 300;
    })
    .await;
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(
        health.status(),
        StatusCode::OK,
        "liveness does not depend on the database"
    );
    let ready = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert!(
        !body.to_string().contains("postgres://"),
        "no connection string leaks: {body}"
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint() {
    let app = spawn_app().await;
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/v1/orders", &["get", "post"][..]),
        ("/api/v1/orders/{id}", &["get", "patch", "delete"][..]),
        ("/api/v1/orders/{id}/events", &["get"][..]),
        ("/health", &["get"][..]),
        ("/ready", &["get"][..]),
    ] {
        for method in methods {
            assert!(
                paths[path][*method].is_object(),
                "{method} {path} is documented"
            );
        }
    }
    for schema in [
        "CreateOrderBody",
        "OrderData",
        "Problem",
        "OrderListResponse",
        "OrderHistoryResponse",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} is documented"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn the_docs_page_is_served_without_internet_access() {
    let app = spawn_app().await;
    let page = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(!html.contains("https://"), "every asset is local");
    let script = app
        .client
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_unknown_route_is_a_problem_json_404() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v2/nothing"))
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::NOT_FOUND, "not_found").await;
}
