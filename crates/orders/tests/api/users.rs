//! User validation against the User Service (an HTTP test double speaking
//! `contracts/dependencies/user-service.yaml`).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{header_exists, method, path},
};

use crate::helpers::{TestApp, order_body, problem, spawn_app_with, user};

async fn app_with_users(
    users: &MockServer,
    configure: impl FnOnce(&mut orders::config::Settings),
) -> TestApp {
    let url = users.uri();
    spawn_app_with(move |settings| {
        settings.user_service.url = Some(url);
        settings.user_service.timeout_ms = 300;
        settings.user_service.retries = 2;
        configure(settings);
    })
    .await
}

#[tokio::test]
async fn a_known_user_places_the_order_after_a_service_authenticated_lookup() {
    let users = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/users/usr_abc123"))
        .and(header_exists("authorization"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "usr_abc123"})))
        .expect(1)
        .mount(&users)
        .await;
    let app = app_with_users(&users, |_| {}).await;

    let response = app.post_order(&user("usr_abc123"), &order_body()).await;

    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn an_unknown_user_is_a_400_user_not_found_and_nothing_is_written() {
    let users = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/users/usr_nonexistent"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&users)
        .await;
    let app = app_with_users(&users, |_| {}).await;

    let response = app
        .post_order(&user("usr_nonexistent"), &order_body())
        .await;

    let body = problem(response, StatusCode::BAD_REQUEST, "user_not_found").await;
    assert_eq!(body["title"], "User not found");
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn a_failing_user_service_is_retried_then_a_503_dependency_unavailable() {
    let users = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .expect(3) // the first attempt and two retries
        .mount(&users)
        .await;
    let app = app_with_users(&users, |_| {}).await;

    let response = app.post_order(&user("usr_abc123"), &order_body()).await;

    assert!(response.headers().contains_key("retry-after"));
    let body = problem(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "dependency_unavailable",
    )
    .await;
    assert_eq!(body["title"], "Unable to validate user");
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn a_slow_user_service_times_out_into_a_503() {
    let users = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&users)
        .await;
    let app = app_with_users(&users, |settings| settings.user_service.retries = 0).await;

    let started = std::time::Instant::now();
    let response = app.post_order(&user("usr_abc123"), &order_body()).await;

    problem(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "dependency_unavailable",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bounded by the timeout, not the dependency"
    );
}

#[tokio::test]
async fn a_dead_user_service_opens_the_circuit_and_fails_fast() {
    let users = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&users)
        .await;
    let app = app_with_users(&users, |settings| {
        settings.user_service.retries = 0;
        settings.user_service.failure_threshold = 2;
        settings.user_service.open_ms = 60_000;
    })
    .await;
    let token = user("usr_abc123");
    for _ in 0..2 {
        problem(
            app.post_order(&token, &order_body()).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "dependency_unavailable",
        )
        .await;
    }
    let calls_before = users.received_requests().await.unwrap().len();

    let response = app.post_order(&token, &order_body()).await;

    problem(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "dependency_unavailable",
    )
    .await;
    assert_eq!(
        users.received_requests().await.unwrap().len(),
        calls_before,
        "the open circuit does not call"
    );
}

#[tokio::test]
async fn the_circuit_closes_again_once_a_trial_call_succeeds() {
    let users = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&users)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&users)
        .await;
    let app = app_with_users(&users, |settings| {
        settings.user_service.retries = 0;
        settings.user_service.failure_threshold = 1;
        settings.user_service.open_ms = 300;
    })
    .await;
    let token = user("usr_abc123");
    problem(
        app.post_order(&token, &order_body()).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "dependency_unavailable",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        app.post_order(&token, &order_body()).await.status(),
        StatusCode::CREATED
    );
}
