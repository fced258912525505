//! A hostile client against the real API: each attempt is refused with its
//! documented problem and changes nothing. (Rate limits: `rate_limit`;
//! forged events through the broker: the flow tests' `hostile`.)

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};

use crate::helpers::{admin, order_body, problem, spawn_app, spawn_app_with, user};

#[tokio::test]
async fn junk_methods_and_paths_do_not_grow_the_metrics() {
    let app = spawn_app().await;
    for i in 0..30 {
        let junk = Method::from_bytes(format!("M{i}").as_bytes()).unwrap();
        let _ = app.client.request(junk, app.url("/health")).send().await;
        let _ = app
            .client
            .get(app.url(&format!("/junk/{i}/x{i}")))
            .send()
            .await;
    }
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series: Vec<&str> = metrics
        .lines()
        .filter(|line| line.starts_with("http_requests_total{"))
        .collect();
    assert!(
        series.iter().all(|line| !line.contains("method=\"M")),
        "{series:#?}"
    );
    assert!(
        series.iter().all(|line| !line.contains("junk")),
        "{series:#?}"
    );
    assert!(
        series.iter().any(|line| line.contains("method=\"other\"")),
        "{series:#?}"
    );
}

#[tokio::test]
async fn card_numbers_are_refused_in_any_field_however_spelled() {
    let app = spawn_app().await;
    let token = user("usr_cards");
    let before = app.event_count().await;
    let mut in_notes = order_body();
    in_notes["notes"] = json!("card 4242 4242 4242 4242, exp 12/30");
    let mut in_name = order_body();
    in_name["shipping_address"]["last_name"] = json!("4242-4242-4242-4242");
    let mut as_id = order_body();
    as_id["items"][0]["product_id"] = json!(4_242_424_242_424_242_u64);
    for body in [in_notes, in_name, as_id] {
        problem(
            app.post_order(&token, &body).await,
            StatusCode::BAD_REQUEST,
            "card_data_refused",
        )
        .await;
    }
    // JSON-escaped digits are decoded before the check.
    let escaped = order_body()
        .to_string()
        .replace("Leave at the door", "\\u0034242424242424242");
    let response = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(escaped)
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::BAD_REQUEST, "card_data_refused").await;
    assert_eq!(app.event_count().await, before, "nothing was stored");
}

#[tokio::test]
async fn bad_requests_are_refused_before_any_other_service_is_asked() {
    let users = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404))
        .expect(0)
        .mount(&users)
        .await;
    let url = users.uri();
    let app = spawn_app_with(move |settings| settings.user_service.url = Some(url)).await;
    let token = user("usr_curious");
    // Naming another user without orders.admin: 403, never "does this user
    // exist?" (400 user_not_found would tell).
    let mut for_someone = order_body();
    for_someone["user_id"] = json!("usr_maybe_exists");
    problem(
        app.post_order(&token, &for_someone).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // 101 lines: refused before a single look-up.
    let mut huge = order_body();
    huge["items"] = Value::Array(
        (0..101)
            .map(|i| json!({"product_id": format!("p{i}"), "quantity": 1, "unit_price": "1"}))
            .collect(),
    );
    let refused = problem(
        app.post_order(&token, &huge).await,
        StatusCode::BAD_REQUEST,
        "validation_error",
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "items");
    users.verify().await;
}

#[tokio::test]
async fn item_edits_stop_at_the_history_cap_but_the_order_still_moves() {
    let app = spawn_app_with(|settings| settings.history.max_events_per_order = 3).await;
    let token = user("usr_toggler");
    let order = app.create_order(&token).await;
    let id = order["id"].as_str().unwrap();
    let line = order["items"][1]["id"].as_str().unwrap();
    let toggle = |quantity: u32| {
        app.client
            .patch(app.url(&format!("/api/v1/orders/{id}/items/{line}")))
            .bearer_auth(&token)
            .json(&json!({ "quantity": quantity }))
            .send()
    };
    assert_eq!(toggle(2).await.unwrap().status(), StatusCode::OK);
    assert_eq!(toggle(1).await.unwrap().status(), StatusCode::OK);
    problem(
        toggle(2).await.unwrap(),
        StatusCode::CONFLICT,
        "order_history_full",
    )
    .await;
    // Payment, fulfilment and cancellation are always recorded.
    let paid = app.patch_status(&admin(), id, "paid").await;
    assert_eq!(paid.status(), StatusCode::OK);
    assert_eq!(app.cancel(&token, id).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_orders_history_is_read_a_page_at_a_time() {
    let app = spawn_app().await;
    let token = user("usr_pages");
    let order = app.create_order(&token).await;
    let id = order["id"].as_str().unwrap();
    for status in ["paid", "shipped", "delivered"] {
        assert_eq!(
            app.patch_status(&admin(), id, status).await.status(),
            StatusCode::OK
        );
    }
    let page = |query: &str| {
        let path = format!("/api/v1/orders/{id}/events{query}");
        let token = token.clone();
        let app = &app;
        async move { app.get(&token, &path).await }
    };
    let first: Value = page("?limit=3").await.json().await.unwrap();
    let sequences = |page: &Value| -> Vec<u64> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["sequence"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(sequences(&first), [1, 2, 3]);
    assert_eq!(first["next_after"], 3);
    let second: Value = page("?limit=3&after=3").await.json().await.unwrap();
    assert_eq!(sequences(&second), [4]);
    assert_eq!(second["next_after"], Value::Null);
    for bad in ["?limit=0", "?limit=100000", "?after=-1"] {
        problem(page(bad).await, StatusCode::BAD_REQUEST, "validation_error").await;
    }
}

#[tokio::test]
async fn old_inbox_rows_and_parked_jobs_are_pruned_and_nothing_else() {
    use diesel_async::RunQueryDsl;
    let app = spawn_app().await;
    let mut conn = app.conn().await;
    for (age, count) in [("10 days", 300), ("1 hour", 20)] {
        diesel::sql_query(format!(
            "INSERT INTO orders.inbox (event_id, event_type, consumed_at) \
             SELECT gen_random_uuid(), 'payment.failed', now() - interval '{age}' \
             FROM generate_series(1, {count})"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    diesel::sql_query(
        "INSERT INTO orders.jobs (kind, key, payload, attempts, run_at, state) VALUES \
         ('pay', 'old-parked', '{}', 60, now() - interval '40 days', 'parked'), \
         ('pay', 'old-pending', '{}', 1, now() - interval '40 days', 'pending'), \
         ('pay', 'new-parked', '{}', 60, now() - interval '1 day', 'parked')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    // Dead letters: settled long ago (pruned), settled lately, and one
    // still open however old (kept until an operator settles it).
    diesel::sql_query(
        "INSERT INTO orders.dead_letters (queue, message_id, routing_key, reason, headers, body, state, settled_at, dead_lettered_at) VALUES \
         ('q', 'old-redriven', 'payment.failed', 'x', '{}', '', 'redriven', now() - interval '40 days', now() - interval '41 days'), \
         ('q', 'new-discarded', 'payment.failed', 'x', '{}', '', 'discarded', now() - interval '1 day', now() - interval '2 days'), \
         ('q', 'old-open', 'payment.failed', 'x', '{}', '', 'dead', NULL, now() - interval '90 days')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let settings = orders::config::Settings::defaults().unwrap();
    let rules = orders::app::retention_rules(&settings.retention);
    let deleted = platform::retention::prune(&mut conn, &rules).await.unwrap();
    assert_eq!(
        deleted,
        [
            ("orders.inbox", 300),
            ("orders.jobs", 1),
            ("orders.dead_letters", 1)
        ]
    );
    let again = platform::retention::prune(&mut conn, &rules).await.unwrap();
    assert_eq!(
        again,
        [
            ("orders.inbox", 0),
            ("orders.jobs", 0),
            ("orders.dead_letters", 0)
        ],
        "flat"
    );
    let left = test_support::count(&mut conn, "SELECT count(*) AS n FROM orders.inbox")
        .await
        .unwrap();
    assert_eq!(left, 20, "recent ids still guard against redeliveries");
}

#[tokio::test]
async fn a_card_number_in_the_query_string_or_path_is_refused_and_nothing_changes() {
    let app = spawn_app().await;
    let order = app.create_order(&user("alice")).await;
    let id = order["id"].as_str().unwrap();
    for query in [
        "reason=card%204242424242424242",
        "reason=4242-4242-4242-4242",
        "reason=card+4242+4242+4242+4242",
    ] {
        let response = app
            .client
            .delete(app.url(&format!("/api/v1/orders/{id}?{query}")))
            .bearer_auth(user("alice"))
            .send()
            .await
            .unwrap();
        problem(response, StatusCode::BAD_REQUEST, "card_data_refused").await;
    }
    let in_path = app
        .get(&user("alice"), "/api/v1/orders/4242424242424242")
        .await;
    problem(in_path, StatusCode::BAD_REQUEST, "card_data_refused").await;
    let unchanged: Value = app
        .get(&user("alice"), &format!("/api/v1/orders/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unchanged["status"], "pending");
    assert_eq!(app.history(&user("alice"), id).await.len(), 1);
}

#[tokio::test]
async fn a_validly_signed_token_with_an_odd_subject_is_a_401_never_a_500() {
    let app = spawn_app().await;
    let long = "u".repeat(204);
    for subject in [long.as_str(), "two words", "ctl\u{1}x", "nul\u{0}x"] {
        let token = test_support::tokens::TokenSpec::new(
            "orders",
            subject,
            &["orders.read", "orders.write"],
        )
        .sign();
        let response = app.get(&token, "/api/v1/orders").await;
        problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
}

/// Every read endpoint, walked with each scope set and as the owner or
/// another user: whatever lets a caller read an order lets it read that
/// order's history and find it in a list, and nothing less lets it read any.
#[tokio::test]
async fn whatever_reads_an_order_reads_its_history() {
    use test_support::tokens::TokenSpec;
    let app = spawn_app().await;
    let order = app.create_order(&user("alice")).await;
    let id = order["id"].as_str().unwrap();
    let number = order["order_number"].as_str().unwrap();
    let reads = [
        format!("/api/v1/orders/{id}"),
        format!("/api/v1/orders/{number}"),
        format!("/api/v1/orders/{id}/events"),
    ];
    // (subject, scopes, what each read of alice's order answers, whether
    // the list shows it).
    let cases: [(&str, &[&str], StatusCode, bool); 9] = [
        ("alice", &["orders.read"], StatusCode::OK, true),
        (
            "alice",
            &["orders.read", "orders.write"],
            StatusCode::OK,
            true,
        ),
        ("alice", &["orders.write"], StatusCode::FORBIDDEN, false),
        ("alice", &[], StatusCode::FORBIDDEN, false),
        (
            "mallory",
            &["orders.read", "orders.write"],
            StatusCode::NOT_FOUND,
            false,
        ),
        (
            "svc-payments",
            &["orders.read", "orders.read_all"],
            StatusCode::OK,
            true,
        ),
        (
            "svc-payments",
            &["orders.read_all"],
            StatusCode::FORBIDDEN,
            false,
        ),
        (
            "admin_1",
            &["orders.read", "orders.admin"],
            StatusCode::OK,
            true,
        ),
        ("admin_1", &["orders.admin"], StatusCode::OK, true),
    ];
    for (subject, scopes, expected, listed) in cases {
        let token = TokenSpec::new("orders", subject, scopes).sign();
        for path in &reads {
            assert_eq!(
                app.get(&token, path).await.status(),
                expected,
                "{subject} {scopes:?} GET {path}"
            );
        }
        let list = app.get(&token, "/api/v1/orders?user_id=alice").await;
        let status = list.status();
        let page: Value = list.json().await.unwrap_or_default();
        let found = page["data"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|listed| listed["id"] == order["id"]);
        assert_eq!(
            found, listed,
            "{subject} {scopes:?} lists alice's order ({status})"
        );
    }
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_within_its_deadline() {
    let app = spawn_app_with(|settings| settings.http.body_timeout_ms = 300).await;
    let address = app.url("");
    let answer = test_support::http::stall_a_body(
        address.trim_end_matches('/'),
        "/api/v1/orders",
        &user("alice"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn shipping_again_with_another_carrier_is_refused_not_ignored() {
    let app = spawn_app().await;
    let order = app.create_unpaid_order(&user("alice")).await;
    let id = order["id"].as_str().unwrap();
    assert_eq!(
        app.patch_status(&admin(), id, "paid").await.status(),
        StatusCode::OK
    );
    let ship = |carrier: &'static str| {
        app.client
            .patch(app.url(&format!("/api/v1/orders/{id}")))
            .bearer_auth(admin())
            .json(&json!({"status": "shipped", "carrier": carrier, "tracking_number": "T-1"}))
            .send()
    };
    assert_eq!(ship("UPS").await.unwrap().status(), StatusCode::OK);
    // The same again: nothing changes, and the answer says so (version).
    let again: Value = ship("UPS").await.unwrap().json().await.unwrap();
    assert_eq!(again["carrier"], "UPS");
    problem(
        ship("DHL").await.unwrap(),
        StatusCode::CONFLICT,
        "shipment_recorded",
    )
    .await;
    let shipped: Value = app
        .get(&user("alice"), &format!("/api/v1/orders/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shipped["carrier"], "UPS");
    assert_eq!(shipped["version"], again["version"]);
}

#[tokio::test]
async fn an_amount_string_outside_the_contracts_pattern_is_a_400() {
    let app = spawn_app().await;
    for price in ["1.25e1", "0012.50"] {
        let mut body = order_body();
        body["items"][0]["unit_price"] = json!(price);
        let refused = problem(
            app.post_order(&user("alice"), &body).await,
            StatusCode::BAD_REQUEST,
            "validation_error",
        )
        .await;
        assert_eq!(
            refused["errors"][0]["field"], "items[0].unit_price",
            "{refused}"
        );
    }
    assert_eq!(app.event_count().await, 0);
}

/// The shared hostile-input suite (`test_support::hostile`): control
/// characters and card numbers in every body string, path segment and
/// query value of every endpoint are refused `400`, in bounded time, and
/// nothing is written.
#[tokio::test]
async fn every_endpoint_refuses_hostile_text_anywhere_in_the_request() {
    use test_support::hostile::{Endpoint, assert_all_refused};
    let app = spawn_app().await;
    let order = app.create_order(&admin()).await;
    let id = order["id"].as_str().unwrap();
    let item = order["items"][0]["id"].as_str().unwrap();
    let events = app.event_count().await;
    let orders = "/api/v1/orders".to_owned();
    let one = format!("{orders}/{id}");
    let endpoints = [
        Endpoint::new(Method::POST, &orders).body(order_body()),
        Endpoint::new(Method::GET, &orders)
            .query("status", "pending")
            .query("limit", "10"),
        Endpoint::new(Method::GET, &one),
        Endpoint::new(Method::PATCH, &one).body(
            json!({"status": "shipped", "carrier": "UPS", "tracking_number": "1Z999", "reason": "sent"}),
        ),
        Endpoint::new(Method::DELETE, &one).query("reason", "changed my mind"),
        Endpoint::new(Method::GET, format!("{one}/events")).query("limit", "5"),
        Endpoint::new(Method::POST, format!("{one}/items")).body(
            json!({"product_id": "prod_9", "quantity": 1, "unit_price": "2.50", "name": "Mug", "sku": "MUG-1"}),
        ),
        Endpoint::new(Method::PATCH, format!("{one}/items/{item}")).body(json!({"quantity": 3})),
        Endpoint::new(Method::DELETE, format!("{one}/items/{item}")),
        Endpoint::new(Method::POST, format!("{one}/returns"))
            .body(json!({"items": [{"item_id": item, "quantity": 1}], "reason": "too small"})),
        Endpoint::new(
            Method::POST,
            format!("{one}/returns/{}/receive", uuid::Uuid::new_v4()),
        ),
    ];
    let sent = assert_all_refused(&app.address, &admin(), &endpoints).await;
    assert!(sent > 200, "only {sent} cases");
    // The operators' console (its own scope).
    let ops = "/api/v1/ops";
    let console = [
        Endpoint::new(Method::GET, format!("{ops}/dead-letters"))
            .query("state", "all")
            .query("reason", "limit")
            .query("type", "payment.failed")
            .query("subject", id),
        Endpoint::new(Method::GET, format!("{ops}/dead-letters/1")),
        Endpoint::new(Method::POST, format!("{ops}/dead-letters/1/redrive")),
        Endpoint::new(Method::POST, format!("{ops}/dead-letters/1/discard")),
        Endpoint::new(Method::GET, format!("{ops}/jobs"))
            .query("state", "all")
            .query("kind", "pay"),
        Endpoint::new(Method::GET, format!("{ops}/jobs/1")),
        Endpoint::new(Method::POST, format!("{ops}/jobs/1/retry")),
        Endpoint::new(Method::POST, format!("{ops}/jobs/1/discard")),
        Endpoint::new(Method::GET, format!("{ops}/outbox")),
        Endpoint::new(Method::GET, format!("{ops}/audit"))
            .query("operator", "oncall")
            .query("target", "job:1"),
        Endpoint::new(Method::GET, format!("{ops}/orders/{id}")),
        Endpoint::new(Method::POST, format!("{ops}/projections/rebuild"))
            .body(json!({"order_id": id})),
        Endpoint::new(Method::GET, format!("/ops/orders/{id}")),
    ];
    let operator =
        test_support::tokens::TokenSpec::new(crate::helpers::AUDIENCE, "oncall", &["orders.ops"])
            .sign();
    let sent = assert_all_refused(&app.address, &operator, &console).await;
    assert!(sent > 100, "only {sent} cases");
    // Erasure (its own scope): a hostile user id is refused, never a 500.
    let officer =
        test_support::tokens::TokenSpec::new(crate::helpers::AUDIENCE, "dpo", &["orders.privacy"])
            .sign();
    let erasure = [Endpoint::new(
        Method::DELETE,
        "/api/v1/users/usr_x/personal-data".to_owned(),
    )];
    let sent = assert_all_refused(&app.address, &officer, &erasure).await;
    assert!(sent > 5, "only {sent} cases");
    assert_eq!(app.event_count().await, events, "a refused request wrote");
}
