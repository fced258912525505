use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{admin, problem, spawn_app, user};

#[tokio::test]
async fn a_user_lists_only_their_own_orders_newest_first() {
    let app = spawn_app().await;
    let (alice, bob) = (user("alice"), user("bob"));
    let first = app.create_order(&alice).await;
    let second = app.create_order(&alice).await;
    app.create_order(&bob).await;

    let page: Value = app
        .get(&alice, "/api/v1/orders")
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(page["total"], 2);
    assert_eq!(page["limit"], 20);
    assert_eq!(page["offset"], 0);
    let ids: Vec<&Value> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["id"])
        .collect();
    assert_eq!(ids, vec![&second["id"], &first["id"]]);
    assert_eq!(page["data"][0], second, "list items are full orders");
}

#[tokio::test]
async fn an_admin_lists_everyones_orders_and_filters_by_user_and_status() {
    let app = spawn_app().await;
    let alice_order = app.create_order(&user("alice")).await;
    app.create_order(&user("bob")).await;
    app.patch_status(&admin(), alice_order["id"].as_str().unwrap(), "paid")
        .await;

    let all: Value = app
        .get(&admin(), "/api/v1/orders")
        .await
        .json()
        .await
        .unwrap();
    let alices: Value = app
        .get(&admin(), "/api/v1/orders?user_id=alice")
        .await
        .json()
        .await
        .unwrap();
    let paid: Value = app
        .get(&admin(), "/api/v1/orders?status=paid")
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(all["total"], 2);
    assert_eq!(alices["total"], 1);
    assert_eq!(alices["data"][0]["user_id"], "alice");
    assert_eq!(paid["total"], 1);
    assert_eq!(paid["data"][0]["id"], alice_order["id"]);
}

#[tokio::test]
async fn a_user_may_not_list_another_users_orders() {
    let app = spawn_app().await;
    let response = app.get(&user("alice"), "/api/v1/orders?user_id=bob").await;
    problem(response, StatusCode::FORBIDDEN, "forbidden").await;
    let own: Value = app
        .get(&user("alice"), "/api/v1/orders?user_id=alice")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(own["total"], 0);
}

#[tokio::test]
async fn pages_cover_every_order_exactly_once() {
    let app = spawn_app().await;
    let token = user("alice");
    let mut created = Vec::new();
    for _ in 0..7 {
        created.push(app.create_order(&token).await["id"].clone());
    }

    let mut seen = Vec::new();
    for offset in [0, 3, 6] {
        let page: Value = app
            .get(&token, &format!("/api/v1/orders?limit=3&offset={offset}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(page["total"], 7);
        assert_eq!(page["limit"], 3);
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].clone()),
        );
    }
    created.reverse();
    assert_eq!(seen, created);
}

#[tokio::test]
async fn another_users_order_is_not_found_everywhere() {
    let app = spawn_app().await;
    let order = app.create_order(&user("alice")).await;
    let id = order["id"].as_str().unwrap();
    let mallory = user("mallory");

    for path in [
        format!("/api/v1/orders/{id}"),
        format!("/api/v1/orders/{id}/events"),
    ] {
        problem(
            app.get(&mallory, &path).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    problem(
        app.cancel(&mallory, id).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    problem(
        app.patch_status(&mallory, id, "cancelled").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let number = order["order_number"].as_str().unwrap();
    problem(
        app.get(&mallory, &format!("/api/v1/orders/{number}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // The owner and an admin still see it, unchanged.
    let seen: Value = app
        .get(&admin(), &format!("/api/v1/orders/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen, order);
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_not_found() {
    let app = spawn_app().await;
    let token = user("alice");
    for path in [
        "/api/v1/orders/0192f0c4-0000-7000-8000-000000000000",
        "/api/v1/orders/not-an-id",
        "/api/v1/orders/ORD-0000-0000",
        "/api/v1/orders/not-an-id/events",
    ] {
        problem(
            app.get(&token, path).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
}

/// Rewrites the snapshot stored with an order's latest event.
async fn store_snapshot(app: &crate::helpers::TestApp, id: &str, shape: i16, json: &str) {
    use diesel_async::RunQueryDsl;
    let updated = diesel::sql_query(
        "UPDATE orders.events SET snapshot = $1::json, snapshot_shape = $2 \
         WHERE order_id = $3::uuid AND sequence = \
         (SELECT version FROM orders.orders WHERE id = $3::uuid)",
    )
    .bind::<diesel::sql_types::Text, _>(json)
    .bind::<diesel::sql_types::SmallInt, _>(shape)
    .bind::<diesel::sql_types::Text, _>(id)
    .execute(&mut app.conn().await)
    .await
    .unwrap();
    assert_eq!(updated, 1);
}

#[tokio::test]
async fn an_order_is_read_as_stored_with_its_latest_event_byte_for_byte() {
    let app = spawn_app().await;
    let token = user("alice");
    let created = app.create_order(&token).await;
    let id = created["id"].as_str().unwrap();
    let paid: Value = app
        .patch_status(&admin(), id, "paid")
        .await
        .json()
        .await
        .unwrap();

    // After a change, the stored view is the latest event's, with its ETag.
    let response = app.get(&token, &format!("/api/v1/orders/{id}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["etag"], "\"2\"");
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.json::<Value>().await.unwrap(), paid);

    // What is served is the stored text itself: one marked in the current
    // shape is sent as it is (here, a recognisable edit of it), its sealed
    // personal fields appended.
    let mut edited = paid.clone();
    for personal in [
        "shipping_address",
        "billing_address",
        "notes",
        "cancellation_reason",
    ] {
        edited.as_object_mut().unwrap().remove(personal);
    }
    edited["shipping_method"] = Value::from("as stored");
    let stored = edited.to_string();
    store_snapshot(&app, id, orders::view::SHAPE, &stored).await;
    let body = app
        .get(&token, &format!("/api/v1/orders/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        body.starts_with(&stored[..stored.len() - 1]),
        "served as stored: {body}"
    );
    let served: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(served["shipping_method"], "as stored");
    assert_eq!(served["shipping_address"], paid["shipping_address"]);
    assert!(!paid["shipping_address"].is_null());
}

#[tokio::test]
async fn a_view_stored_in_another_shape_is_rendered_afresh() {
    let app = spawn_app().await;
    let token = user("alice");
    let created = app.create_order(&token).await;
    let id = created["id"].as_str().unwrap();
    let number = created["order_number"].as_str().unwrap();

    // A snapshot written by an older representation (shape 0: rows from
    // before shapes were recorded) is never served; the projections are.
    store_snapshot(&app, id, 0, r#"{"id": "old shape", "total": 1}"#).await;
    for key in [id, number] {
        let response = app.get(&token, &format!("/api/v1/orders/{key}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["etag"], "\"1\"");
        assert_eq!(response.json::<Value>().await.unwrap(), created, "{key}");
    }
    // Still the owner's only.
    problem(
        app.get(&user("mallory"), &format!("/api/v1/orders/{id}"))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

/// Keyset pages: a walk by `next_cursor` sees every order once, newest
/// first, even when new orders arrive mid-walk (they sort before the
/// cursor); `offset` still works as the contract has it; a forged cursor or
/// a deep offset is a 400.
#[tokio::test]
async fn pages_are_walked_by_cursor_without_skips_or_repeats() {
    let app = spawn_app().await;
    let alice = user("alice");
    let mut placed = Vec::new();
    for _ in 0..7 {
        placed.push(app.create_order(&alice).await["id"].clone());
    }
    placed.reverse(); // newest first
    let page = |query: String| {
        let app = &app;
        let alice = alice.clone();
        async move {
            let response = app.get(&alice, &format!("/api/v1/orders{query}")).await;
            assert_eq!(response.status(), StatusCode::OK, "{query}");
            response.json::<Value>().await.unwrap()
        }
    };
    let first = page("?limit=3".to_owned()).await;
    assert_eq!(first["has_more"], true);
    assert_eq!(first["total"], 7);
    assert_eq!(first["total_capped"], false);
    // An order placed mid-walk is not seen by this walk and shifts nothing.
    app.create_order(&alice).await;
    let mut seen: Vec<Value> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].clone())
        .collect();
    let mut cursor = first["next_cursor"].as_str().unwrap().to_owned();
    loop {
        let next = page(format!("?limit=3&cursor={cursor}")).await;
        seen.extend(
            next["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].clone()),
        );
        match next["next_cursor"].as_str() {
            Some(more) => {
                assert_eq!(next["has_more"], true);
                cursor = more.to_owned();
            }
            None => {
                assert_eq!(next["has_more"], false);
                break;
            }
        }
    }
    assert_eq!(seen, placed);

    let by_offset = page("?limit=3&offset=6".to_owned()).await;
    let ids: Vec<&Value> = by_offset["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["id"])
        .collect();
    assert_eq!(ids, vec![&placed[5], &placed[6]]);
    assert_eq!(by_offset["total"], 8);
    assert_eq!(by_offset["has_more"], false);
    assert!(by_offset.get("next_cursor").is_none());

    for bad in [
        "?cursor=nonsense",
        "?cursor=12_notauuid",
        "?cursor=zz",
        "?offset=10001",
    ] {
        let problem = problem(
            app.get(&alice, &format!("/api/v1/orders{bad}")).await,
            StatusCode::BAD_REQUEST,
            "validation_error",
        )
        .await;
        assert!(
            problem["errors"][0]["field"]
                .as_str()
                .unwrap()
                .starts_with("query."),
            "{bad}"
        );
    }
}
