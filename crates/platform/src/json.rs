//! A JSON body extractor whose every failure is a precise problem+json.
//!
//! actix's own `web::Json` reports `Json deserialize error: ...` as text/plain; a
//! client needs to know *which* field was wrong. This extractor reads the body
//! under a size limit, insists on a JSON media type, and uses
//! `serde_path_to_error` so a wrong type deep inside an array names its path
//! (`items[1].quantity`).

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::StatusCode, http::header};
use futures_util::{StreamExt, future::LocalBoxFuture};
use serde::de::DeserializeOwned;

use crate::problem::{FieldError, Problem};

/// Default maximum body size, in bytes.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// Per-app override of the body limit: `App::new().app_data(BodyLimit(1024))`.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// How long a request body may take to arrive (app data; 10 s without it).
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub std::time::Duration);

const DEFAULT_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A JSON request body of type `T`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T> ApiJson<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = Problem;
    type Future = LocalBoxFuture<'static, Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload);
        Box::pin(async move { parse_json(&body.await?).map(ApiJson) })
    }
}

/// A JSON request body as its bytes, checked like [`ApiJson`]'s (media
/// type, size, card data) but not parsed: for a handler that needs the text
/// itself (a JSON number read exactly, as [`contracts::money::Amount`]
/// does, is lost once parsed into a `serde_json::Value`).
#[derive(Debug)]
pub struct RawJson(pub Vec<u8>);

impl RawJson {
    /// Parses the body as `T`, with [`parse_json`]'s errors.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Problem> {
        parse_json(&self.0)
    }
}

impl FromRequest for RawJson {
    type Error = Problem;
    type Future = LocalBoxFuture<'static, Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload);
        Box::pin(async move { body.await.map(RawJson) })
    }
}

/// Reads a JSON body under the app's size limit, after checking its media
/// type, and refuses it if it carries card data ([`crate::card_data`]): in
/// both services, before anything parses, stores or logs it.
/// A JSON body that may be absent: no body at all (no `Content-Length`,
/// or `0`, and no chunked transfer) is `None`. A body that is sent is read
/// exactly as [`RawJson`] reads one, so it is never silently ignored: a
/// wrong media type is a `415`, card data a `400 card_data_refused`, and
/// [`OptionalJson::parse`] answers malformed JSON or unknown fields with a
/// `400`.
#[derive(Debug)]
pub struct OptionalJson(pub Option<RawJson>);

impl OptionalJson {
    /// The body parsed as `T`, or `T::default()` when none was sent.
    pub fn parse_or_default<T: DeserializeOwned + Default>(&self) -> Result<T, Problem> {
        match &self.0 {
            Some(body) => body.parse(),
            None => Ok(T::default()),
        }
    }
}

impl FromRequest for OptionalJson {
    type Error = Problem;
    type Future = LocalBoxFuture<'static, Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let headers = req.headers();
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<usize>().ok());
        let chunked = headers.contains_key(header::TRANSFER_ENCODING);
        if !chunked && declared.unwrap_or(0) == 0 {
            return Box::pin(async { Ok(OptionalJson(None)) });
        }
        let body = read_body(req, payload);
        Box::pin(async move {
            let body = body.await?;
            Ok(OptionalJson((!body.is_empty()).then_some(RawJson(body))))
        })
    }
}

fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> LocalBoxFuture<'static, Result<Vec<u8>, Problem>> {
    let limit = req
        .app_data::<BodyLimit>()
        .map_or(DEFAULT_BODY_LIMIT, |limit| limit.0);
    let deadline = tokio::time::Instant::now()
        + req
            .app_data::<BodyTimeout>()
            .map_or(DEFAULT_BODY_TIMEOUT, |timeout| timeout.0);
    let media_type_ok = is_json_media_type(req);
    let declared_length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    let mut payload = payload.take();

    Box::pin(async move {
        if !media_type_ok {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
            )
            .with_detail("the body must be JSON (Content-Type: application/json)"));
        }
        if declared_length.is_some_and(|length| length > limit) {
            return Err(Problem::payload_too_large(limit));
        }
        let mut body = Vec::with_capacity(declared_length.unwrap_or(1024).min(limit));
        loop {
            let chunk = match tokio::time::timeout_at(deadline, payload.next()).await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(_) => {
                    return Err(Problem::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "request_timeout",
                        "Request body too slow",
                    )
                    .with_detail("the request body did not arrive in time; send it again"));
                }
            };
            let chunk = chunk.map_err(|error| Problem::malformed_body(error.to_string()))?;
            if body.len() + chunk.len() > limit {
                return Err(Problem::payload_too_large(limit));
            }
            body.extend_from_slice(&chunk);
        }
        crate::card_data::refuse_hostile_text(&body)?;
        Ok(body)
    })
}

fn is_json_media_type(req: &HttpRequest) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses `body` as `T`, mapping syntax errors to `malformed_request` and data
/// errors (wrong type, missing or unknown field) to a `validation_error` naming
/// the field.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = strip_position(&inner.to_string());
                Problem::validation(vec![field_error(&path, &message)])
            }
            _ => Problem::malformed_body(format!("the body is not valid JSON: {inner}")),
        }
    })
}

/// Deserializes an already-parsed JSON value as `T`, with the same field-path
/// errors as [`parse_json`].
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, Problem> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let message = strip_position(&error.into_inner().to_string());
        Problem::validation(vec![field_error(&path, &message)])
    })
}

/// serde_json appends " at line 1 column 42"; the field path says it better.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

/// `missing field `x`` is reported at the parent's path, so the field is
/// appended; an unknown field's path already ends with it.
fn field_error(path: &str, message: &str) -> FieldError {
    let parent = if path == "." { "" } else { path };
    if message.starts_with("unknown field `") {
        return FieldError::new(parent, "is not a known field");
    }
    let named = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(|name| {
                if parent.is_empty() {
                    name.to_owned()
                } else {
                    format!("{parent}.{name}")
                }
            })
    };
    if let Some(field) = named("missing field `") {
        return FieldError::new(field, "is required");
    }
    let field = if parent.is_empty() { "body" } else { parent };
    FieldError::new(field, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        quantity: u32,
    }

    fn first_field(result: Result<Body, Problem>) -> (String, FieldError) {
        match result {
            Ok(body) => panic!("expected an error, parsed {body:?}"),
            Err(problem) => (problem.kind, problem.errors[0].clone()),
        }
    }

    #[test]
    fn a_wrong_type_names_its_path() {
        let (kind, error) = first_field(parse_json(
            br#"{"items":[{"quantity":1},{"quantity":"2"}]}"#,
        ));
        assert_eq!(kind, "validation_error");
        assert_eq!(error.field, "items[1].quantity");
        assert!(!error.message.contains("line"), "{}", error.message);
    }

    #[test]
    fn a_missing_field_is_named() {
        let (_, error) = first_field(parse_json(br#"{"items":[{}]}"#));
        assert_eq!(error, FieldError::new("items[0].quantity", "is required"));
        let (_, error) = first_field(parse_json(b"{}"));
        assert_eq!(error, FieldError::new("items", "is required"));
    }

    #[test]
    fn an_unknown_field_is_named() {
        let (_, error) = first_field(parse_json(br#"{"items":[],"itemz":1}"#));
        assert_eq!(error, FieldError::new("itemz", "is not a known field"));
        let (_, error) = first_field(parse_json(br#"{"items":[{"quantity":1,"colour":2}]}"#));
        assert_eq!(
            error,
            FieldError::new("items[0].colour", "is not a known field")
        );
    }

    #[test]
    fn broken_json_is_malformed() {
        let problem = parse_json::<Body>(b"{\"items\": [").err();
        assert_eq!(
            problem.map(|p| p.kind),
            Some("malformed_request".to_owned())
        );
    }
}
