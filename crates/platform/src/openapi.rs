//! OpenAPI conventions shared by both services.

use utoipa::openapi::{Content, OpenApi, RefOr, ResponseBuilder, path::Operation};

/// Adds the problem+json responses every operation of a kind can give, so
/// the documents never miss one (schemathesis checks this):
/// - with a request body: `400` (invalid), `413` (too large), `415` (not JSON);
/// - secured: `401` (no or bad token), `403` (missing scope);
/// - every write (`POST`, `PATCH`, `PUT`, `DELETE`): `429` (rate limited,
///   with `Retry-After` and `RateLimit-*`).
pub struct StandardResponses;

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

fn add(operation: &mut Operation, status: &str, description: &str) {
    operation
        .responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| problem(description));
}

impl utoipa::Modify for StandardResponses {
    fn modify(&self, openapi: &mut OpenApi) {
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
                if write {
                    add(
                        operation,
                        "429",
                        "Too many requests of this kind from this caller; see Retry-After and RateLimit-*",
                    );
                }
                if operation.request_body.is_some() {
                    add(operation, "400", "Invalid request");
                    add(operation, "413", "Request body too large");
                    add(operation, "415", "Request body is not JSON");
                    add(
                        operation,
                        "408",
                        "The request body did not arrive within http.body_timeout_ms (request_timeout)",
                    );
                }
                if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    add(
                        operation,
                        "401",
                        "No valid token (or its subject is not a user id)",
                    );
                    add(operation, "403", "Missing scope");
                }
            }
        }
    }
}
