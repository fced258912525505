//! The source documents' examples (`../shared/specs/`), sent as a client
//! written from each would send them, through the real API, with the
//! development doubles (`deploy/local/stubs.py`) and the development
//! configuration (`deploy/local/orders.yaml`) that `just up` runs.
//!
//! It writes `docs/source-documents.md`: every request and the answer it
//! got. A page that no longer matches the system fails the test; refresh it
//! with `just source-documents` (`UPDATE_DOCS=1`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use orders::domain::promotions::PromotionsConfig;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{TestApp, admin, spawn_app_with, user};

const PAGE: &str = "docs/source-documents.md";

/// The development doubles, on a free port, for this test only.
struct Doubles {
    child: Child,
    url: String,
}

impl Doubles {
    fn start() -> Doubles {
        let root = workspace_root();
        let mut child = Command::new("python3")
            .arg(root.join("deploy/local/stubs.py"))
            .arg("0")
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs deploy/local/stubs.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the doubles print their port");
        Doubles {
            child,
            url: format!("http://127.0.0.1:{}", line.trim()),
        }
    }
}

impl Drop for Doubles {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The coupons `just up` runs with.
fn development_promotions() -> PromotionsConfig {
    #[derive(serde::Deserialize)]
    struct File {
        promotions: PromotionsConfig,
    }
    let text = std::fs::read_to_string(workspace_root().join("deploy/local/orders.yaml"))
        .expect("deploy/local/orders.yaml");
    serde_yaml::from_str::<File>(&text)
        .expect("the development configuration parses")
        .promotions
}

async fn spawn_with_doubles(doubles: &Doubles) -> TestApp {
    let url = doubles.url.clone();
    spawn_app_with(move |settings| {
        settings.user_service.url = Some(url.clone());
        settings.catalog.url = Some(url);
        settings.promotions = development_promotions();
    })
    .await
}

/// The page being written, and the names given to generated values.
struct Page {
    text: String,
    /// Generated ids → `<id-N>` (the documents' own ids stay).
    ids: HashMap<String, String>,
}

/// Ids the documents themselves use: shown as they are.
const DOCUMENT_IDS: [&str; 3] = [
    "123e4567-e89b-12d3-a456-426614174000",
    "123e4567-e89b-12d3-a456-426614174001",
    "123e4567-e89b-12d3-a456-426614174002",
];

impl Page {
    fn new() -> Page {
        Page {
            text: String::new(),
            ids: HashMap::new(),
        }
    }

    fn say(&mut self, markdown: &str) {
        self.text.push_str(markdown.trim_matches('\n'));
        self.text.push_str("\n\n");
    }

    /// Replaces generated values (ids, times, order numbers) with stable
    /// names, so the page changes only when behaviour does.
    fn normalize(&mut self, value: &mut Value) {
        match value {
            Value::String(text) => *text = self.normalize_text(text),
            Value::Array(items) => items.iter_mut().for_each(|item| self.normalize(item)),
            Value::Object(fields) => {
                for (name, field) in fields.iter_mut() {
                    if name == "next_cursor" {
                        *field = Value::from("<cursor>");
                    } else {
                        self.normalize(field);
                    }
                }
            }
            _ => {}
        }
    }

    fn normalize_text(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while !rest.is_empty() {
            let candidate = rest.get(..36).filter(|c| uuid::Uuid::try_parse(c).is_ok());
            if let Some(id) = candidate {
                if DOCUMENT_IDS.contains(&id) {
                    out.push_str(id);
                } else {
                    let next = self.ids.len() + 1;
                    let name = self
                        .ids
                        .entry(id.to_owned())
                        .or_insert_with(|| format!("<id-{next}>"));
                    out.push_str(name);
                }
                rest = &rest[36..];
                continue;
            }
            let mut chars = rest.chars();
            out.extend(chars.next());
            rest = chars.as_str();
        }
        if time::OffsetDateTime::parse(&out, &time::format_description::well_known::Rfc3339).is_ok()
        {
            return "<time>".to_owned();
        }
        if out.len() == 13 && out.starts_with("ORD-") {
            return "ORD-XXXX-XXXX".to_owned();
        }
        out
    }

    /// Sends `body` exactly as written (a JSON number stays a number) and
    /// records the exchange; fails unless the answer is `expected`.
    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &mut self,
        app: &TestApp,
        title: &str,
        method: Method,
        path: &str,
        caller: Option<(&str, &str)>,
        body: Option<&str>,
        expected: StatusCode,
    ) -> Value {
        let mut request = app.client.request(method.clone(), app.url(path));
        if let Some((_, token)) = caller {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.expect("a body");
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(status, expected, "{title}: {text}");

        let shown_path = self.normalize_text(path);
        let mut block = format!("#### {title}\n\n```http\n{method} {shown_path}\n");
        match caller {
            Some((who, _)) => block.push_str(&format!("Authorization: Bearer <{who}>\n")),
            None => block.push_str("(no Authorization header)\n"),
        }
        if let Some(body) = body {
            block.push_str("Content-Type: application/json\n\n");
            block.push_str(body.trim());
            block.push('\n');
        }
        block.push_str("```\n\n");
        let mut shown = answer.clone();
        self.normalize(&mut shown);
        block.push_str(&format!(
            "→ `{} {}`\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or_default()
        ));
        if !shown.is_null() {
            block.push_str(&format!(
                "\n```json\n{}\n```\n",
                serde_json::to_string_pretty(&shown).expect("JSON")
            ));
        }
        self.say(&block);
        answer
    }
}

#[tokio::test]
async fn every_source_document_example_works_as_written() {
    let doubles = Doubles::start();
    let app = spawn_with_doubles(&doubles).await;
    let mut page = Page::new();
    page.say(INTRO);

    // ---- SPEC-0003 ---------------------------------------------------------
    page.say(
        "## SPEC-0003 Order Service (`000_00fb59f8d123c7c7.txt`, the order-service spec)\n\n\
         Its order object and scenarios, sent as written: `unit_price` as a JSON number, no \
         currency, no address.",
    );
    let abc = user("usr_abc123");
    let as_abc = Some(("token of usr_abc123", abc.as_str()));
    let admin_token = admin();
    let as_admin = Some(("token of an admin (orders.admin)", admin_token.as_str()));
    let spec_order = r#"{"user_id": "usr_abc123", "items": [{"product_id": "prod_123", "quantity": 2, "unit_price": 29.99}]}"#;
    let order = page
        .exchange(
            &app,
            "Valid user: the order is created in `pending`",
            Method::POST,
            "/api/v1/orders",
            as_abc,
            Some(spec_order),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(order["total"], "59.98");
    assert_eq!(order["currency"], "USD");
    assert_eq!(order["status"], "pending");
    let id = order["id"].as_str().expect("an id").to_owned();

    let nobody = user("usr_nonexistent");
    let problem = page
        .exchange(
            &app,
            "Invalid user: 400 \"User not found\"",
            Method::POST,
            "/api/v1/orders",
            Some(("token of usr_nonexistent", nobody.as_str())),
            Some(
                r#"{"user_id": "usr_nonexistent", "items": [{"product_id": "prod_123", "quantity": 2, "unit_price": 29.99}]}"#,
            ),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(problem["title"], "User not found");

    {
        let unavailable = spawn_app_with(|settings| {
            settings.user_service.url = Some("http://127.0.0.1:9".to_owned());
            settings.user_service.retries = 0;
        })
        .await;
        let problem = page
            .exchange(
                &unavailable,
                "User Service unavailable: 503 \"Unable to validate user\"",
                Method::POST,
                "/api/v1/orders",
                as_abc,
                Some(spec_order),
                StatusCode::SERVICE_UNAVAILABLE,
            )
            .await;
        assert_eq!(problem["title"], "Unable to validate user");
    }

    page.exchange(
        &app,
        "Get order",
        Method::GET,
        &format!("/api/v1/orders/{id}"),
        as_abc,
        None,
        StatusCode::OK,
    )
    .await;
    let list = page
        .exchange(
            &app,
            "List orders for user",
            Method::GET,
            "/api/v1/orders?user_id=usr_abc123",
            as_abc,
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(list["total"], 1);
    let paid = page
        .exchange(
            &app,
            "Order state transition: `pending` → `paid` (an operator; payments does it through events)",
            Method::PATCH,
            &format!("/api/v1/orders/{id}"),
            as_admin,
            Some(r#"{"status": "paid"}"#),
            StatusCode::OK,
        )
        .await;
    assert_eq!(paid["status"], "paid");
    for status in ["shipped", "delivered"] {
        page.exchange(
            &app,
            &format!("Then `{status}`"),
            Method::PATCH,
            &format!("/api/v1/orders/{id}"),
            as_admin,
            Some(&format!(r#"{{"status": "{status}"}}"#)),
            StatusCode::OK,
        )
        .await;
    }
    let problem = page
        .exchange(
            &app,
            "Invalid state transition: `delivered` → `pending` is 400 (cannot go backwards)",
            Method::PATCH,
            &format!("/api/v1/orders/{id}"),
            as_admin,
            Some(r#"{"status": "pending"}"#),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(problem["type"], "invalid_transition");
    let history = page
        .exchange(
            &app,
            "Event structure and ordering: the order's events, by sequence",
            Method::GET,
            &format!("/api/v1/orders/{id}/events"),
            as_abc,
            None,
            StatusCode::OK,
        )
        .await;
    let types: Vec<&str> = history["data"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|event| event["type"].as_str())
        .collect();
    assert_eq!(
        types,
        [
            "order.created",
            "order.paid",
            "order.shipped",
            "order.delivered"
        ]
    );
    let second = app
        .post_order(&abc, &serde_json::from_str(spec_order).expect("JSON"))
        .await;
    assert_eq!(second.status(), StatusCode::CREATED);
    let second: Value = second.json().await.expect("an order");
    let cancelled = page
        .exchange(
            &app,
            "Cancel order (another one, still `pending`)",
            Method::DELETE,
            &format!("/api/v1/orders/{}", second["id"].as_str().expect("an id")),
            as_abc,
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(cancelled["status"], "cancelled");

    // ---- PROP-0004 ---------------------------------------------------------
    page.say(PROPOSAL);

    // ---- Order Management System -----------------------------------------
    page.say(
        "## Order Management System (`002_440822f2331f9a7d.txt`, the order-management overview)\n\n\
         Its partial OpenAPI names the owner `customerId` and lists items as strings; both are \
         accepted (an item given as a product id alone is one unit of it). Paths are under \
         `/api/v1`.",
    );
    let overview = page
        .exchange(
            &app,
            "POST /orders with `customerId` and items as strings",
            Method::POST,
            "/api/v1/orders",
            as_abc,
            Some(r#"{"customerId": "usr_abc123", "items": ["prod_123"]}"#),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(overview["total"], "29.99");
    page.exchange(
        &app,
        "GET /orders?limit=&offset=",
        Method::GET,
        "/api/v1/orders?limit=1&offset=0",
        as_abc,
        None,
        StatusCode::OK,
    )
    .await;
    let problem = page
        .exchange(
            &app,
            "`validation_error` if the payload is invalid",
            Method::POST,
            "/api/v1/orders",
            as_abc,
            Some(r#"{"customerId": "usr_abc123", "items": []}"#),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(problem["type"], "validation_error");
    let problem = page
        .exchange(
            &app,
            "`not_found` if the order doesn't exist",
            Method::GET,
            "/api/v1/orders/00000000-0000-7000-8000-000000000000",
            as_abc,
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
    assert_eq!(problem["type"], "not_found");

    // ---- Technical design -----------------------------------------------
    page.say(
        "## Order Service Technical Design (`003_2e6cb355140791c8.txt`, the technical design)\n\n\
         Its CreateOrder request verbatim: a UUID user, a product variant, addresses with its \
         field names and an alpha-3 country, `payment_method` as a name, `STANDARD` shipping and \
         the coupon `SUMMER10` (10% off, a development coupon of `deploy/local/orders.yaml`). The \
         caller is the user the request names.",
    );
    let td_user = user("123e4567-e89b-12d3-a456-426614174000");
    let as_td_user = Some((
        "token of 123e4567-e89b-12d3-a456-426614174000",
        td_user.as_str(),
    ));
    let created = page
        .exchange(
            &app,
            "7.1 CreateOrder",
            Method::POST,
            "/api/v1/orders",
            as_td_user,
            Some(TD_CREATE_ORDER),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(created["items"][0]["unit_price"], "44.99");
    assert_eq!(created["items"][0]["sku"], "PROD-001-VAR-002");
    assert_eq!(created["items"][0]["name"], "Product Name - Variant Name");
    assert_eq!(
        created["items"][0]["variant_id"],
        "123e4567-e89b-12d3-a456-426614174002"
    );
    assert_eq!(created["subtotal"], "89.98");
    assert_eq!(created["discount"], "9.00");
    assert_eq!(created["total"], "80.98");
    assert_eq!(created["coupon_code"], "SUMMER10");
    assert_eq!(created["payment_method"], "CREDIT_CARD");
    assert_eq!(created["shipping_method"], "standard");
    assert_eq!(created["shipping_address"]["country"], "US");
    assert_eq!(created["shipping_address"]["address_line1"], "123 Main St");
    assert_eq!(created["billing_address"]["address_type"], "BILLING");
    let td_id = created["id"].as_str().expect("an id").to_owned();
    page.exchange(
        &app,
        "7.2 GetOrder",
        Method::GET,
        &format!("/api/v1/orders/{td_id}"),
        as_td_user,
        None,
        StatusCode::OK,
    )
    .await;
    let paid = app.patch_status(&admin_token, &td_id, "paid").await;
    assert_eq!(paid.status(), StatusCode::OK);
    let shipped = page
        .exchange(
            &app,
            "5.2 Fulfilment: shipped, with the carrier and tracking number (after it was paid)",
            Method::PATCH,
            &format!("/api/v1/orders/{td_id}"),
            as_admin,
            Some(r#"{"status": "shipped", "carrier": "UPS", "tracking_number": "1Z999AA10123456784"}"#),
            StatusCode::OK,
        )
        .await;
    assert_eq!(shipped["carrier"], "UPS");
    assert_eq!(shipped["tracking_number"], "1Z999AA10123456784");

    // ---- Django README -----------------------------------------------------
    page.say(
        "## The Django order service's README (`004_71543ba993a63cac.txt`)\n\n\
         Its create-order body: an integer product id, no currency, no address. The owner is the \
         token's subject (an integer user id there). Paths are under `/api/v1` rather than the \
         gateway's `/orders/`.",
    );
    let django_user = user("42");
    let as_django_user = Some(("token of user 42", django_user.as_str()));
    let django = page
        .exchange(
            &app,
            "Create Order (JWT Required)",
            Method::POST,
            "/api/v1/orders",
            as_django_user,
            Some(r#"{"items": [{"product_id": 1, "quantity": 2}]}"#),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(django["total"], "1999.98");
    page.exchange(
        &app,
        "Product not found: 400",
        Method::POST,
        "/api/v1/orders",
        as_django_user,
        Some(r#"{"items": [{"product_id": 999, "quantity": 2}]}"#),
        StatusCode::BAD_REQUEST,
    )
    .await;
    page.exchange(
        &app,
        "Insufficient stock: 409 (the doubles hold one `prod_limited`)",
        Method::POST,
        "/api/v1/orders",
        as_django_user,
        Some(r#"{"items": [{"product_id": "prod_limited", "quantity": 2}]}"#),
        StatusCode::CONFLICT,
    )
    .await;
    page.exchange(
        &app,
        "Missing JWT: 401",
        Method::POST,
        "/api/v1/orders",
        None,
        Some(r#"{"items": [{"product_id": 1, "quantity": 2}]}"#),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    page.exchange(
        &app,
        "Invalid request: 400",
        Method::POST,
        "/api/v1/orders",
        as_django_user,
        Some(r#"{"items": [{"product_id": 1, "quantity": 0}]}"#),
        StatusCode::BAD_REQUEST,
    )
    .await;

    page.say(DECISIONS);

    let path = workspace_root().join(PAGE);
    let text = page.text.trim_end().to_owned() + "\n";
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &text).expect("the page is written");
    } else {
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == text,
            "{PAGE} is stale: the system answers the source documents' examples differently now. \
             Review the change and run `just source-documents` to refresh it."
        );
    }
}

const TD_CREATE_ORDER: &str = r#"{
  "user_id": "123e4567-e89b-12d3-a456-426614174000",
  "items": [
    {
      "product_id": "123e4567-e89b-12d3-a456-426614174001",
      "variant_id": "123e4567-e89b-12d3-a456-426614174002",
      "quantity": 2
    }
  ],
  "shipping_address": {
    "address_type": "SHIPPING",
    "first_name": "John",
    "last_name": "Doe",
    "address_line1": "123 Main St",
    "address_line2": "Apt 4B",
    "city": "New York",
    "state": "NY",
    "postal_code": "10001",
    "country": "USA",
    "phone": "555-123-4567",
    "email": "john.doe@example.com"
  },
  "billing_address": {
    "address_type": "BILLING",
    "first_name": "John",
    "last_name": "Doe",
    "address_line1": "123 Main St",
    "address_line2": "Apt 4B",
    "city": "New York",
    "state": "NY",
    "postal_code": "10001",
    "country": "USA",
    "phone": "555-123-4567",
    "email": "john.doe@example.com"
  },
  "payment_method": "CREDIT_CARD",
  "shipping_method": "STANDARD",
  "notes": "Please leave package at the door",
  "coupon_code": "SUMMER10"
}"#;

const INTRO: &str = r#"
# The source documents, example by example

<!-- Generated by crates/orders/tests/api/source_documents.rs: do not edit by hand.
     `just source-documents` refreshes it; a stale page fails `just test`. -->

The product was commissioned from the documents in `../shared/specs/` (see their
README). A client written from any of them must work as written, so this page sends
each of their example requests, as the document writes it, to the real orders
service, with the development doubles of the User Service and the Catalog
(`deploy/local/stubs.py`) and the development configuration
(`deploy/local/orders.yaml`) that `just up` runs, and shows the answer. Generated
values are replaced by names (`<id-1>`, `<time>`, `ORD-XXXX-XXXX`, `<cursor>`); the documents'
own ids are kept.

We accept their forms and answer in ours: money is a decimal string in every
answer (a JSON number in a request is read exactly from its text), statuses are
lower case, errors are RFC 9457 problems. Where the documents disagree with each
other or with the design brief, the decisions are at the end.
"#;

const PROPOSAL: &str = r#"
## PROP-0004 Order Service (`001_5643db875a79b1dd.txt`, the order-service proposal)

It has no request examples. What it recommends is what runs: the order is
event-sourced, and its lifecycle `OrderCreated → OrderPaid → OrderShipped →
OrderDelivered` (or `OrderCancelled`) is the history shown above under "Event
structure and ordering" (`order.created`, `order.paid`, `order.shipped`,
`order.delivered`, `order.cancelled`), each event carrying the full order state
when published.
"#;

const DECISIONS: &str = r#"
## Where the documents disagree, and what we decided

| The documents say | We do | Why |
|---|---|---|
| Money as JSON numbers (`29.99`, `"total_amount": 99.99`) | Accept a number or a decimal string in requests, read exactly from the number's text (`2.999e1` is 29.99; `29.999` in USD is a 400); answer decimal strings (`"59.98"`) | Floats cannot hold 0.10; the design brief fixes decimal strings on the wire |
| `total_amount`, `tax_amount`, `shipping_amount`, `discount_amount` (technical design) | `total`, `tax`, `shipping`, `discount` | The approved order-service spec names `total`; one name per field |
| `address_line1`, `address_line2`, `state` (technical design) vs our earlier `line1`, `line2`, `region` | Answer the technical design's names; accept both | The document named them first |
| Addresses in an `addresses` array (technical design) | `shipping_address` and `billing_address` objects, each with its `address_type` | The design brief's wire shape; one address of each type per order either way |
| Countries as `"USA"` | Accept ISO 3166-1 alpha-2 or alpha-3; answer alpha-2 (`"US"`) | One spelling in storage and events |
| Statuses `CREATED`, `CONFIRMED`, `PENDING`, `PAID` in upper case; a `processing` step (technical design, Django README) | `pending → paid → shipped → delivered`, or `cancelled`, lower case | The approved spec and the design brief; an order is "confirmed" when it is `paid` |
| `order.updated` on every change (overview) | One event type per change: `order.paid`, `order.shipped`, … | Subscribers bind the changes they care about; `order.*` gets them all |
| gRPC between services (technical design) | HTTP for payment initiation, RabbitMQ for outcomes | The design brief |
| SQLite, Redis caching (Django README, technical design) | PostgreSQL only, one schema per service | The design brief; reads are primary-key lookups on a projection |
| Paths `/orders`, `/orders/orders/` behind a gateway | `/api/v1/orders` | The design brief's base path; a gateway maps its own prefix |
| `user_id` stored as an integer (Django README), a UUID (technical design), `usr_…` (spec) | Any user id of 1–128 printable characters, the token's `sub` | Each User Service has its own ids |
| The body's `user_id` names the owner | The token's subject is the owner; naming another user needs `orders.admin` (403 otherwise) | A user may only act for themselves |
| Marking an order `paid` with `PATCH` (spec scenario) | Allowed to operators (`orders.admin`); customers' orders become `paid` when payments reports the charge | Nobody pays by saying so |
| `customerId` and items as strings (overview's partial OpenAPI) | Accepted (`customerId` is `user_id`; a string item is one unit of that product); answered as `user_id` and item objects | Its schema is a sketch without quantities or prices |
| `payment_method: "CREDIT_CARD"` (technical design) | Recorded as given; a charge is made only with a provider token (`payment: {"method", "token"}`) | Card data never reaches us; a name alone cannot be charged |
| Unknown coupon codes silently ignored? (not said) | `400 invalid_coupon`, also when expired, not yet valid, in another currency, below its minimum subtotal, or over its per-user limit | A shopper must know the discount did not apply |
"#;
