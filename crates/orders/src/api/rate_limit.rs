//! Per-user rate limiting of order creation (actix-governor, GCRA).
//!
//! The key is the *verified* subject of the caller's token, so one user cannot
//! exhaust another's allowance and a forged subject gets a 401, not a slot.
//! Over the limit: `429 rate_limited` with `Retry-After`.

use actix_governor::{
    GovernorConfig, GovernorConfigBuilder, KeyExtractor,
    governor::{
        NotUntil,
        clock::{Clock, DefaultClock, QuantaInstant},
        middleware::NoOpMiddleware,
    },
};
use actix_web::{
    HttpResponse, HttpResponseBuilder, ResponseError, dev::ServiceRequest, http::Method,
    http::StatusCode, web,
};
use platform::{Problem, auth::JwtVerifier};
use serde::Deserialize;

/// `rate_limit:` section of the orders configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitConfig {
    /// Turn the limit off (e.g. behind a gateway that limits already).
    pub enabled: bool,
    /// One more order is allowed every this many milliseconds…
    pub replenish_every_ms: u64,
    /// …up to this many in a burst.
    pub burst: u32,
}

/// Keys requests by the verified token subject.
#[derive(Debug, Clone, Copy)]
pub struct UserKey;

/// The path whose POSTs are limited: placing orders. Other requests get a
/// whitelisted key and pass untouched.
const LIMITED_PATH: &str = "/api/v1/orders";
const NOT_LIMITED: &str = "";

impl KeyExtractor for UserKey {
    type Key = String;
    type KeyExtractionError = Problem;

    fn whitelisted_keys(&self) -> Vec<String> {
        vec![NOT_LIMITED.to_owned()]
    }

    fn extract(&self, request: &ServiceRequest) -> Result<String, Problem> {
        if request.path().trim_end_matches('/') != LIMITED_PATH {
            return Ok(NOT_LIMITED.to_owned());
        }
        let verifier = request
            .app_data::<web::Data<JwtVerifier>>()
            .ok_or_else(|| Problem::internal(&anyhow::anyhow!("JwtVerifier is not registered")))?;
        let token = request
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| {
                Problem::unauthorized("send a bearer token in the Authorization header")
            })?;
        Ok(verifier.verify(token)?.subject)
    }

    fn exceed_rate_limit_response(
        &self,
        negative: &NotUntil<QuantaInstant>,
        _response: HttpResponseBuilder,
    ) -> HttpResponse {
        let wait = negative.wait_time_from(DefaultClock::default().now());
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests",
        )
        .with_detail(format!("too many orders; retry in {seconds} s"))
        .with_retry_after(seconds.max(1))
        .error_response()
    }
}

/// The limiter's shared state; one per process, shared by every worker.
pub type Limiter = GovernorConfig<UserKey, NoOpMiddleware<QuantaInstant>>;

/// The limiter of POST requests (whether it applies is `config.enabled`).
pub fn limiter(config: &RateLimitConfig) -> anyhow::Result<Limiter> {
    GovernorConfigBuilder::default()
        .period(std::time::Duration::from_millis(
            config.replenish_every_ms.max(1),
        ))
        .burst_size(config.burst.max(1))
        .methods(vec![Method::POST])
        .key_extractor(UserKey)
        .finish()
        .ok_or_else(|| anyhow::anyhow!("invalid rate_limit settings"))
}
