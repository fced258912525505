//! Admission control: a service works on at most `http.max_in_flight` API
//! requests at once. One more is answered `503 overloaded` with
//! `Retry-After: 1` at once, before its body is read or a connection is
//! asked for, so memory and queues stay flat however hard clients push, and
//! a well-behaved client backs off instead of piling on. Health, readiness
//! and metrics are never refused (they are how operators see the overload).

use std::sync::Arc;

use actix_web::{
    ResponseError,
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};
use tokio::sync::Semaphore;

use crate::problem::Problem;

/// The permits of a service's API requests in flight (shared by its HTTP
/// workers).
#[derive(Debug, Clone)]
pub struct Admission(Arc<Semaphore>);

impl Admission {
    /// At most `limit` requests in flight; 0 admits everything.
    pub fn new(limit: usize) -> Self {
        Self(Arc::new(Semaphore::new(if limit == 0 {
            Semaphore::MAX_PERMITS
        } else {
            limit
        })))
    }
}

/// Middleware: admits an `/api/` request if a permit is free, else `503`.
pub async fn admit(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if !request.path().starts_with("/api/") {
        return Ok(next.call(request).await?.map_into_boxed_body());
    }
    let Some(admission) = request.app_data::<web::Data<Admission>>().cloned() else {
        return Ok(next.call(request).await?.map_into_boxed_body());
    };
    let Ok(_permit) = admission.0.clone().try_acquire_owned() else {
        metrics::counter!("http_requests_shed_total").increment(1);
        let problem = Problem::overloaded(
            "overloaded",
            "the service is working on as many requests as it takes at once; nothing was done, retry after Retry-After",
        );
        return Ok(request.into_response(problem.error_response()));
    };
    Ok(next.call(request).await?.map_into_boxed_body())
}
