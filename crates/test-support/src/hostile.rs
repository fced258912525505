//! The hostile-input suite both services run: every string a client can
//! send (each string of a body, each path segment, each query value, and a
//! query parameter of its own) is replaced in turn by each hostile value,
//! and every endpoint must refuse every case with the expected `400`
//! problem+json, in bounded time. A service's test lists its endpoints
//! (concrete requests that would otherwise be valid); this module does the
//! rest.

use std::time::{Duration, Instant};

use serde_json::Value;

/// What a client may send that no text field may hold, and the problem
/// `type` each must be refused with.
pub const HOSTILE: &[(&str, &str)] = &[
    ("nul\u{0}byte", "validation_error"),
    ("bell\u{7}", "validation_error"),
    ("\u{1b}[31mred", "validation_error"),
    ("del\u{7f}", "validation_error"),
    ("c1\u{9b}control", "validation_error"),
    ("card 4242 4242 4242 4242", "card_data_refused"),
    ("4111-1111-1111-1111", "card_data_refused"),
];

/// How long any one refusal may take.
pub const BOUND: Duration = Duration::from_secs(5);

/// One request a service serves: otherwise valid, so that only the hostile
/// value can be why it is refused.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub method: reqwest::Method,
    /// The concrete path, e.g. `/api/v1/orders/5c1e…`.
    pub path: String,
    /// Query parameters, in order.
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl Endpoint {
    pub fn new(method: reqwest::Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
        }
    }

    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
}

/// One hostile request: where the value went, and the request.
#[derive(Debug, Clone)]
pub struct Case {
    pub place: String,
    pub endpoint: Endpoint,
    pub expected: &'static str,
}

/// Every hostile variant of `endpoint`.
pub fn cases(endpoint: &Endpoint) -> Vec<Case> {
    let mut cases = Vec::new();
    for &(value, expected) in HOSTILE {
        let mut case = |place: String, endpoint: Endpoint| {
            cases.push(Case {
                place,
                endpoint,
                expected,
            });
        };
        if let Some(body) = &endpoint.body {
            for (pointer, mutated) in each_string_replaced(body, value) {
                case(
                    format!("body {pointer}"),
                    Endpoint {
                        body: Some(mutated),
                        ..endpoint.clone()
                    },
                );
            }
        }
        let segments: Vec<&str> = endpoint.path.split('/').collect();
        // The segments after `/api/v1/<collection>`: ids and actions.
        for index in 4..segments.len() {
            let mut mutated = segments.clone();
            let encoded = encode(value);
            mutated[index] = &encoded;
            case(
                format!("path segment {index}"),
                Endpoint {
                    path: mutated.join("/"),
                    ..endpoint.clone()
                },
            );
        }
        for index in 0..endpoint.query.len() {
            let mut query = endpoint.query.clone();
            query[index].1 = value.to_owned();
            case(
                format!("query {}", query[index].0),
                Endpoint {
                    query,
                    ..endpoint.clone()
                },
            );
        }
        let mut query = endpoint.query.clone();
        query.push(("note".to_owned(), value.to_owned()));
        case(
            "query note".to_owned(),
            Endpoint {
                query,
                ..endpoint.clone()
            },
        );
    }
    cases
}

/// Sends every hostile case of every endpoint with `bearer` (a token
/// allowed to make the request) and panics listing each that was not
/// refused `400` with its problem type within [`BOUND`]. Returns how many
/// cases were sent.
pub async fn assert_all_refused(address: &str, bearer: &str, endpoints: &[Endpoint]) -> usize {
    let client = reqwest::Client::builder()
        .timeout(BOUND)
        .build()
        .unwrap_or_else(|error| panic!("a client: {error}"));
    let mut failures = Vec::new();
    let mut sent = 0;
    for endpoint in endpoints {
        for case in cases(endpoint) {
            sent += 1;
            if let Err(why) = refused(&client, address, bearer, &case).await {
                failures.push(format!(
                    "{} {} ({}): {why}",
                    case.endpoint.method, endpoint.path, case.place
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {sent} hostile requests were not refused as they must be:\n{}",
        failures.len(),
        failures.join("\n")
    );
    sent
}

async fn refused(
    client: &reqwest::Client,
    address: &str,
    bearer: &str,
    case: &Case,
) -> Result<(), String> {
    let endpoint = &case.endpoint;
    let query: String = endpoint
        .query
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    let url = if query.is_empty() {
        format!("{address}{}", endpoint.path)
    } else {
        format!("{address}{}?{query}", endpoint.path)
    };
    let mut request = client
        .request(endpoint.method.clone(), url)
        .bearer_auth(bearer);
    if let Some(body) = &endpoint.body {
        request = request.json(body);
    }
    let started = Instant::now();
    let response = request.send().await.map_err(|error| error.to_string())?;
    let status = response.status().as_u16();
    let media = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let problem: Value = response.json().await.unwrap_or(Value::Null);
    let elapsed = started.elapsed();
    if status != 400 || media != "application/problem+json" || problem["type"] != case.expected {
        return Err(format!(
            "answered {status} {media} {problem} (expected 400 `{}`)",
            case.expected
        ));
    }
    if elapsed > BOUND {
        return Err(format!("took {elapsed:?}"));
    }
    Ok(())
}

/// Each string of `value` (at any depth) replaced by `hostile`, with the
/// JSON pointer of what was replaced.
pub fn each_string_replaced(value: &Value, hostile: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    walk(value, String::new(), &mut |pointer| {
        let mut mutated = value.clone();
        if let Some(slot) = mutated.pointer_mut(&pointer) {
            *slot = Value::String(hostile.to_owned());
        }
        out.push((pointer, mutated));
    });
    out
}

fn walk(value: &Value, pointer: String, found: &mut impl FnMut(String)) {
    match value {
        Value::String(_) => found(pointer),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                walk(item, format!("{pointer}/{index}"), found);
            }
        }
        Value::Object(fields) => {
            for (name, item) in fields {
                let escaped = name.replace('~', "~0").replace('/', "~1");
                walk(item, format!("{pointer}/{escaped}"), found);
            }
        }
        _ => {}
    }
}

/// Percent-encodes everything but unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_of_a_body_is_replaced_once() {
        let body = serde_json::json!({"a": "x", "b": [1, "y"], "c": {"d/e": "z"}, "n": 3});
        let mutated = each_string_replaced(&body, "!");
        let pointers: Vec<&str> = mutated.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(pointers, ["/a", "/b/1", "/c/d~1e"]);
        assert_eq!(mutated[2].1["c"]["d/e"], "!");
        assert_eq!(mutated[2].1["a"], "x");
    }

    #[test]
    fn paths_queries_and_bodies_each_get_every_value() {
        let endpoint = Endpoint::new(reqwest::Method::PATCH, "/api/v1/things/abc/items/def")
            .query("reason", "r")
            .body(serde_json::json!({"name": "n"}));
        // Per value: 1 body string, 3 path segments, 1 query value, 1 added query.
        assert_eq!(cases(&endpoint).len(), HOSTILE.len() * 6);
    }
}
