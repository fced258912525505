//! RFC 9457 `application/problem+json`: the one error shape both services answer with.
//!
//! Each service keeps its own `thiserror` enum of expected failures and converts it
//! into a [`Problem`] in exactly one place. A 5xx never carries its cause to the
//! client; the cause is logged once, with its chain, where the problem is built.

use actix_web::{HttpResponse, ResponseError, http::StatusCode, http::header};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// Where the problem is, as a path into the request: `items[0].quantity`,
    /// or `query.limit` for query parameters.
    pub field: String,
    /// What is wrong with it, for humans.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The `type` of the problem a response carries, kept in the response's
/// extensions for middleware (the contract check, metrics) to read.
#[derive(Debug, Clone)]
pub struct ProblemKind(pub String);

/// An RFC 9457 problem document.
///
/// `type` is a stable, machine-readable slug (a relative URI reference such as
/// `validation_error`); `title` is a short human summary that never changes for a
/// given `type`; `detail` explains this occurrence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    #[schema(example = "validation_error")]
    pub kind: String,
    #[schema(example = "Invalid request")]
    pub title: String,
    #[schema(example = 400)]
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Field-level details, present for `validation_error`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Extra members specific to a problem type (e.g. the current status for
    /// `invalid_transition`).
    #[serde(flatten, skip_serializing_if = "serde_json::Map::is_empty")]
    #[schema(value_type = Object)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
    /// Seconds a client should wait before retrying (sent as `Retry-After` too).
    #[serde(skip)]
    pub retry_after: Option<u64>,
    /// Further response headers (e.g. `RateLimit-*`).
    #[serde(skip)]
    pub headers: Vec<(&'static str, String)>,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, title: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: None,
            errors: Vec::new(),
            extensions: serde_json::Map::new(),
            retry_after: None,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_extension(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 400 `validation_error` listing every bad field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        let mut problem = Self::new(
            StatusCode::BAD_REQUEST,
            "validation_error",
            "Invalid request",
        )
        .with_detail(detail);
        problem.errors = errors;
        problem
    }

    /// 400 for a body that is not JSON at all or has the wrong media type.
    pub fn malformed_body(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed_request",
            "Malformed request body",
        )
        .with_detail(detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found").with_detail(detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
        )
        .with_detail(detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden").with_detail(detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict").with_detail(detail)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "Request body too large",
        )
        .with_detail(format!("the body may be at most {limit} bytes"))
    }

    pub fn service_unavailable(kind: &str, title: &str) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, kind, title)
    }

    /// 503: the service is at capacity (admission control) or cannot reach
    /// its database in time; nothing was done, retry after a second.
    pub fn overloaded(kind: &str, detail: &str) -> Self {
        Self::service_unavailable(kind, "Service unavailable")
            .with_detail(detail)
            .with_retry_after(1)
    }

    /// 500 whose cause is logged here, once, and never sent to the client;
    /// or, when the cause is a database that could not be reached in time
    /// ([`crate::db::Unavailable`]), the `503` it is, logged as a warning
    /// without its backtrace (an expected failure costs no symbolisation).
    pub fn internal(cause: &anyhow::Error) -> Self {
        if cause
            .chain()
            .any(|error| error.is::<crate::db::Unavailable>())
        {
            tracing::warn!(error.message = %cause, "answered 503: no database connection in time");
            return Self::overloaded(
                "service_unavailable",
                "the database could not be reached in time; nothing was done, retry after Retry-After",
            );
        }
        tracing::error!(error.cause_chain = ?cause, error.message = %cause, "unexpected error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal server error",
        )
        .with_detail("an unexpected error occurred; it has been logged")
    }
}

/// A database failure is the `500` (or, unreachable in time, the `503`) it
/// is; lets a handler's transaction return `Problem` directly.
impl From<diesel::result::Error> for Problem {
    fn from(error: diesel::result::Error) -> Self {
        Problem::internal(&error.into())
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.title, self.kind)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED.as_u16() {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        for (name, value) in &self.headers {
            response.insert_header((*name, value.as_str()));
        }
        // Serializing plain strings and numbers cannot fail; fall back to an empty
        // body rather than panic on a request path.
        let mut response = response.body(serde_json::to_vec(self).unwrap_or_default());
        response
            .extensions_mut()
            .insert(ProblemKind(self.kind.clone()));
        response
    }
}
