//! OpenAPI conventions shared by both services.

use std::collections::{BTreeSet, HashMap};

use actix_web::{
    ResponseError,
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::StatusCode,
    middleware::Next,
    web,
};
use utoipa::openapi::{
    Content, OpenApi, RefOr, ResponseBuilder,
    path::{Operation, ParameterIn},
};

use crate::problem::{Problem, ProblemKind};

/// Adds the problem+json responses every operation of a kind can give, so
/// the documents never miss one (schemathesis checks this), and records on
/// every problem response the problem `type`s it may carry
/// (`x-problem-types`), read from the backticked slugs of its description
/// plus the standard ones:
/// - every operation: `400` (`validation_error`: control characters in the
///   path or query; `card_data_refused`: a card number in them);
/// - with a request body: `400` (`validation_error`, `malformed_request`),
///   `408`, `413`, `415`;
/// - with a path parameter: `404` (`not_found`);
/// - with `Idempotency-Key`: `409` (`idempotency_in_flight`), `422`
///   (`idempotency_key_reused`);
/// - secured: `401` (no or bad token), `403` (missing scope), `503`
///   (`overloaded`, `service_unavailable`, with `Retry-After`);
/// - every write (`POST`, `PATCH`, `PUT`, `DELETE`): `429` (rate limited,
///   with `Retry-After` and `RateLimit-*`).
///
/// [`ContractCheck`] then holds the running service to what this says.
pub struct StandardResponses;

/// The extension naming a problem response's possible `type`s.
pub const PROBLEM_TYPES: &str = "x-problem-types";

fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                crate::problem::PROBLEM_JSON,
                Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "Problem",
                )))),
            )
            .build(),
    )
}

/// Makes sure `operation` documents `status` as a problem that may carry
/// each of `types` (described by `description` if it was not documented).
fn add(operation: &mut Operation, status: &str, description: &str, types: &[&str]) {
    let response = operation
        .responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| problem(description));
    if let RefOr::T(response) = response {
        let missing: Vec<String> = types
            .iter()
            .filter(|kind| !backticked(&response.description).contains(**kind))
            .map(|kind| format!("`{kind}`"))
            .collect();
        if !missing.is_empty() {
            response.description = format!("{}; also {}", response.description, missing.join(", "));
        }
    }
}

/// The `slug`s written in backticks in a description.
fn backticked(description: &str) -> BTreeSet<&str> {
    description
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|slug| {
            !slug.is_empty()
                && slug
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
        .collect()
}

fn is_problem(response: &utoipa::openapi::Response) -> bool {
    response.content.contains_key(crate::problem::PROBLEM_JSON)
}

impl utoipa::Modify for StandardResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        bearer_scheme(openapi);
        for item in openapi.paths.paths.values_mut() {
            for (operation, write) in [
                (item.get.as_mut(), false),
                (item.post.as_mut(), true),
                (item.put.as_mut(), true),
                (item.patch.as_mut(), true),
                (item.delete.as_mut(), true),
            ]
            .into_iter()
            .filter_map(|(operation, write)| Some((operation?, write)))
            {
                standardise(operation, write);
            }
        }
    }
}

/// The `bearer` security scheme every secured operation names: a JWT whose
/// `scope` claim holds the scopes the operations list.
fn bearer_scheme(openapi: &mut OpenApi) {
    use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
    let scopes: BTreeSet<String> = openapi
        .paths
        .paths
        .values()
        .filter_map(|item| serde_json::to_value(item).ok())
        .flat_map(|item| {
            let mut found = Vec::new();
            for operation in item.as_object().into_iter().flat_map(|o| o.values()) {
                for requirement in operation["security"].as_array().into_iter().flatten() {
                    for scope in requirement["bearer"].as_array().into_iter().flatten() {
                        found.extend(scope.as_str().map(str::to_owned));
                    }
                }
            }
            found
        })
        .collect();
    let mut scheme = Http::new(HttpAuthScheme::Bearer);
    scheme.bearer_format = Some("JWT".to_owned());
    scheme.description = Some(format!(
        "JWT with an OAuth2 `scope` claim: {}",
        scopes.into_iter().collect::<Vec<_>>().join(", ")
    ));
    openapi
        .components
        .get_or_insert_with(Default::default)
        .add_security_scheme("bearer", SecurityScheme::Http(scheme));
}

fn standardise(operation: &mut Operation, write: bool) {
    let parameters: Vec<_> = operation
        .parameters
        .iter()
        .flatten()
        .filter_map(|parameter| match parameter {
            RefOr::T(parameter) => Some(parameter.clone()),
            RefOr::Ref(_) => None,
        })
        .collect();
    let has = |place: ParameterIn| parameters.iter().any(|p| p.parameter_in == place);
    let has_key = parameters
        .iter()
        .any(|p| p.parameter_in == ParameterIn::Header && p.name == "Idempotency-Key");
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let invalid = "Invalid request";
    add(
        operation,
        "400",
        invalid,
        &["validation_error", "card_data_refused"],
    );
    if write {
        add(
            operation,
            "429",
            "Too many requests of this kind from this caller; see Retry-After and RateLimit-*",
            &["rate_limited"],
        );
    }
    if operation.request_body.is_some() {
        add(operation, "400", invalid, &["malformed_request"]);
        add(
            operation,
            "413",
            "Request body too large",
            &["payload_too_large"],
        );
        add(
            operation,
            "415",
            "Request body is not JSON",
            &["unsupported_media_type"],
        );
        add(
            operation,
            "408",
            "The request body did not arrive within http.body_timeout_ms",
            &["request_timeout"],
        );
    }
    if has(ParameterIn::Path) {
        add(operation, "404", "No such resource", &["not_found"]);
    }
    if has_key {
        add(
            operation,
            "409",
            "A request with this Idempotency-Key is still in flight",
            &[contracts::problem::IDEMPOTENCY_IN_FLIGHT],
        );
        add(
            operation,
            "422",
            "Idempotency-Key reused with another body",
            &["idempotency_key_reused"],
        );
    }
    if secured {
        add(
            operation,
            "401",
            "No valid token (or its subject is not a user id)",
            &["unauthorized"],
        );
        add(operation, "403", "Missing scope", &["forbidden"]);
        add(
            operation,
            "503",
            "At capacity (`overloaded`: http.max_in_flight) or the database not reached in time (`service_unavailable`); nothing was done, retry after Retry-After",
            &["overloaded", "service_unavailable"],
        );
    }
    for response in operation.responses.responses.values_mut() {
        if let RefOr::T(response) = response
            && is_problem(response)
        {
            let types: Vec<serde_json::Value> = backticked(&response.description)
                .into_iter()
                .map(serde_json::Value::from)
                .collect();
            response
                .extensions
                .get_or_insert_with(Default::default)
                .insert(PROBLEM_TYPES.to_owned(), serde_json::Value::Array(types));
        }
    }
}

/// An operation's documented statuses, each with the problem `type`s it
/// may carry (`None`: not a problem).
type Answers = HashMap<u16, Option<BTreeSet<String>>>;

/// What the OpenAPI document promises each operation answers: by method and
/// route template, each documented status with, for a problem, the `type`s
/// it may carry.
#[derive(Debug, Default)]
pub struct ContractCheck {
    operations: HashMap<(String, String), Answers>,
}

impl ContractCheck {
    pub fn new(openapi: &OpenApi) -> Self {
        let mut operations = HashMap::new();
        for (path, item) in &openapi.paths.paths {
            for (method, operation) in [
                ("GET", item.get.as_ref()),
                ("POST", item.post.as_ref()),
                ("PUT", item.put.as_ref()),
                ("PATCH", item.patch.as_ref()),
                ("DELETE", item.delete.as_ref()),
            ] {
                let Some(operation) = operation else { continue };
                let answers = operation
                    .responses
                    .responses
                    .iter()
                    .filter_map(|(status, response)| {
                        let status = status.parse::<u16>().ok()?;
                        let RefOr::T(response) = response else {
                            return Some((status, None));
                        };
                        let types = response
                            .extensions
                            .as_ref()
                            .and_then(|extensions| extensions.get(PROBLEM_TYPES))
                            .and_then(serde_json::Value::as_array)
                            .map(|types| {
                                types
                                    .iter()
                                    .filter_map(|kind| Some(kind.as_str()?.to_owned()))
                                    .collect()
                            });
                        Some((status, types))
                    })
                    .collect();
                operations.insert((method.to_owned(), path.clone()), answers);
            }
        }
        Self { operations }
    }

    /// Whether some method of `route` is described.
    fn describes(&self, route: &str) -> bool {
        self.operations.keys().any(|(_, known)| known == route)
    }

    /// Why answering `status` (a problem of type `kind`, if one) to `method
    /// route` breaks the contract; `None` if it does not, or if the route is
    /// not an operation of the document.
    pub fn breach(
        &self,
        method: &str,
        route: &str,
        status: u16,
        kind: Option<&str>,
    ) -> Option<String> {
        let Some(answers) = self.operations.get(&(method.to_owned(), route.to_owned())) else {
            // The API's own routes must all be described; the rest
            // (`/docs/`, unknown paths) are not operations, and a method a
            // described route does not have is the router's `405`.
            return (route.starts_with("/api/") && !self.describes(route)).then(|| {
                format!("{method} {route} is served but its OpenAPI does not describe it")
            });
        };
        let answer = match kind {
            Some(kind) => format!("{status} `{kind}`"),
            None => status.to_string(),
        };
        match (answers.get(&status), kind) {
            (None, _) => Some(format!(
                "{method} {route} answered {answer}, a status its OpenAPI does not list"
            )),
            (Some(Some(types)), Some(kind)) if !types.contains(kind) => Some(format!(
                "{method} {route} answered {answer}, a problem type its OpenAPI does not list for {status}"
            )),
            _ => None,
        }
    }
}

/// Middleware (with `http.check_contract`): an answer the OpenAPI document
/// does not list for its operation (status, or problem `type`), or any
/// answer of an `/api/` route it does not describe, is logged
/// and replaced by `500 undocumented_answer`, so a test suite run with the
/// check fails on every answer a client generated from the document could
/// not expect.
pub async fn check_contract(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let check = match request.app_data::<web::Data<ContractCheck>>() {
        Some(check) if !check.operations.is_empty() => check.clone(),
        _ => return Ok(next.call(request).await?.map_into_boxed_body()),
    };
    let method = request.method().as_str().to_owned();
    let route = crate::http::MatchedRoute::of(&request);
    let response = next.call(request).await?.map_into_boxed_body();
    let kind = response
        .response()
        .extensions()
        .get::<ProblemKind>()
        .map(|kind| kind.0.clone());
    let status = response.status().as_u16();
    let Some(breach) = check.breach(&method, &route, status, kind.as_deref()) else {
        return Ok(response);
    };
    tracing::error!(breach, "an answer its OpenAPI does not list");
    let problem = Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "undocumented_answer",
        "An answer the API description does not list",
    )
    .with_detail(breach);
    let (request, _) = response.into_parts();
    Ok(ServiceResponse::new(request, problem.error_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> OpenApi {
        let mut openapi: OpenApi = serde_json::from_value(serde_json::json!({
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1"},
            "paths": {"/api/v1/things/{id}": {"get": {
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "security": [{"bearer": ["things.read"]}],
                "responses": {
                    "200": {"description": "The thing"},
                    "409": {"description": "Busy (`thing_busy`)",
                            "content": {"application/problem+json": {}}}
                }
            }}}
        }))
        .unwrap_or_else(|error| panic!("{error}"));
        utoipa::Modify::modify(&StandardResponses, &mut openapi);
        openapi
    }

    #[test]
    fn the_check_holds_each_answer_to_its_operations_list() {
        let check = ContractCheck::new(&document());
        let route = "/api/v1/things/{id}";
        for (status, kind) in [
            (200, None),
            (409, Some("thing_busy")),
            (404, Some("not_found")),
            (401, Some("unauthorized")),
            (403, Some("forbidden")),
            (400, Some("card_data_refused")),
            (400, Some("validation_error")),
        ] {
            assert_eq!(check.breach("GET", route, status, kind), None, "{status}");
        }
        for (status, kind) in [
            (500, Some("internal_error")),
            (409, Some("conflict")),
            (201, None),
            (429, Some("rate_limited")),
            (413, Some("payload_too_large")),
        ] {
            assert!(
                check.breach("GET", route, status, kind).is_some(),
                "{status} {kind:?}"
            );
        }
        // An API route nobody described is a breach; a method the route
        // lacks (405) and what is not the API are not operations.
        assert!(check.breach("GET", "/api/v1/other", 200, None).is_some());
        assert_eq!(check.breach("DELETE", route, 405, None), None);
        assert_eq!(check.breach("GET", "/docs/{_:.*}", 200, None), None);
        assert_eq!(
            check.breach("GET", "unmatched", 404, Some("not_found")),
            None
        );
    }

    #[test]
    fn standard_answers_are_added_with_their_types() {
        let openapi = document();
        let document = serde_json::to_value(&openapi).unwrap_or_default();
        let responses = &document["paths"]["/api/v1/things/{id}"]["get"]["responses"];
        assert_eq!(
            responses["409"][PROBLEM_TYPES],
            serde_json::json!(["thing_busy"])
        );
        assert_eq!(
            responses["400"][PROBLEM_TYPES],
            serde_json::json!(["card_data_refused", "validation_error"])
        );
        assert!(responses["200"].get(PROBLEM_TYPES).is_none());
        assert!(
            responses["400"]["description"]
                .as_str()
                .is_some_and(|text| text.contains("`card_data_refused`"))
        );
    }
}
