//! Per-caller rate limits on writes (GCRA, the `governor` crate).
//!
//! A limit is keyed by the *verified* token subject and a class, the kind of
//! write (`orders.create`, `orders.items`, `payments.create`, …), and it is
//! checked by the handler the request was routed to. So a path is limited
//! like the endpoint it reaches however it is spelled (`/api/v1/%6Frders`
//! included), one user cannot spend another's allowance, and a forged
//! subject gets a 401 before it gets a slot.
//!
//! Over the limit: `429 rate_limited` with `Retry-After` and the IETF
//! `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` and
//! `RateLimit-Policy` headers.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::http::StatusCode;
use governor::{
    Quota, RateLimiter as Gcra,
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
    state::keyed::DefaultKeyedStateStore,
};
use serde::Deserialize;

use crate::problem::Problem;

/// One class of writes: `burst` at once, one more every `replenish_every_ms`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    pub burst: u32,
    pub replenish_every_ms: u64,
}

struct Class {
    limiter: Gcra<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>,
    burst: u32,
    /// How long a full allowance takes to refill, in seconds.
    window_seconds: u64,
    /// How long one request's allowance takes to come back.
    period: Duration,
}

/// What a limited request left of its caller's allowance: the
/// `RateLimit-*` headers of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Allowance {
    limit: u32,
    remaining: u32,
    /// Seconds until the allowance is whole again.
    reset: u64,
    window: u64,
}

tokio::task_local! {
    /// The allowance the request being served used (set by
    /// [`RateLimits::check`], read by [`headers`]).
    static ALLOWANCE: std::cell::Cell<Option<Allowance>>;
}

/// Middleware: every answer of a route whose request was counted against a
/// limit carries `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`
/// and `RateLimit-Policy` (the IETF RateLimit header fields draft), so a
/// client can pace itself before it is refused.
pub async fn headers(
    request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let (response, allowance) = ALLOWANCE
        .scope(std::cell::Cell::new(None), async move {
            let response = next.call(request).await;
            (response, ALLOWANCE.with(std::cell::Cell::get))
        })
        .await;
    let mut response = response?;
    if let Some(allowance) = allowance {
        use actix_web::http::header::{HeaderName, HeaderValue};
        let headers = response.headers_mut();
        for (name, value) in [
            ("ratelimit-limit", allowance.limit.to_string()),
            ("ratelimit-remaining", allowance.remaining.to_string()),
            ("ratelimit-reset", allowance.reset.to_string()),
            (
                "ratelimit-policy",
                format!("{};w={}", allowance.limit, allowance.window),
            ),
        ] {
            let name = HeaderName::from_static(name);
            if !headers.contains_key(&name)
                && let Ok(value) = HeaderValue::from_str(&value)
            {
                headers.insert(name, value);
            }
        }
    }
    Ok(response)
}

/// Every class of a service; checks are lock-free and shared by all workers.
pub struct RateLimits {
    enabled: bool,
    classes: HashMap<&'static str, Class>,
    checks: AtomicU64,
}

/// Forget idle callers every this many checks (their state is a few bytes
/// each, and only verified subjects get one).
const SWEEP_EVERY: u64 = 10_000;

impl RateLimits {
    /// `classes`: each class's name and limit. Disabled, every check passes.
    pub fn new(enabled: bool, classes: &[(&'static str, LimitConfig)]) -> anyhow::Result<Self> {
        let mut built = HashMap::new();
        for (name, config) in classes {
            let burst = NonZeroU32::new(config.burst)
                .ok_or_else(|| anyhow::anyhow!("rate_limit.{name}.burst must be at least 1"))?;
            let period = Duration::from_millis(config.replenish_every_ms.max(1));
            let quota = Quota::with_period(period)
                .ok_or_else(|| anyhow::anyhow!("rate_limit.{name}: invalid period"))?
                .allow_burst(burst);
            let window = period.saturating_mul(config.burst);
            built.insert(
                *name,
                Class {
                    limiter: Gcra::keyed(quota).with_middleware::<StateInformationMiddleware>(),
                    period,
                    burst: config.burst,
                    window_seconds: window.as_secs().max(1),
                },
            );
        }
        Ok(Self {
            enabled,
            classes: built,
            checks: AtomicU64::new(0),
        })
    }

    /// Takes one slot of `class` for `subject`, or refuses with a 429.
    pub fn check(&self, class: &str, subject: &str) -> Result<(), Problem> {
        if !self.enabled {
            return Ok(());
        }
        let Some(limit) = self.classes.get(class) else {
            // A handler naming a class nobody configured is a programming
            // error; failing closed would turn it into an outage.
            tracing::error!(class, "no rate limit is configured for this class");
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            for class in self.classes.values() {
                class.limiter.retain_recent();
            }
        }
        let key = subject.to_owned();
        match limit.limiter.check_key(&key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let used = limit.burst.saturating_sub(remaining);
                let reset = limit.period.saturating_mul(used);
                let allowance = Allowance {
                    limit: limit.burst,
                    remaining,
                    reset: reset.as_secs() + u64::from(reset.subsec_nanos() > 0),
                    window: limit.window_seconds,
                };
                // Outside a request (tests, jobs) there is nowhere to say it.
                let _ = ALLOWANCE.try_with(|cell| cell.set(Some(allowance)));
                Ok(())
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
                Err(Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "Too many requests",
                )
                .with_detail(format!(
                    "too many requests of this kind ({class}); retry in {seconds} s"
                ))
                .with_extension("limit_class", class)
                .with_retry_after(seconds)
                .with_header("RateLimit-Limit", limit.burst.to_string())
                .with_header("RateLimit-Remaining", "0")
                .with_header("RateLimit-Reset", seconds.to_string())
                .with_header(
                    "RateLimit-Policy",
                    format!("{};w={}", limit.burst, limit.window_seconds),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(burst: u32) -> RateLimits {
        RateLimits::new(
            true,
            &[(
                "writes",
                LimitConfig {
                    burst,
                    replenish_every_ms: 60_000,
                },
            )],
        )
        .unwrap()
    }

    #[test]
    fn each_subject_has_its_own_allowance() {
        let limits = limits(2);
        assert!(limits.check("writes", "alice").is_ok());
        assert!(limits.check("writes", "alice").is_ok());
        let refused = limits.check("writes", "alice").unwrap_err();
        assert_eq!(refused.status, 429);
        assert!(refused.retry_after.is_some_and(|s| (1..=60).contains(&s)));
        let names: Vec<&str> = refused.headers.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "RateLimit-Policy"
            ]
        );
        assert!(limits.check("writes", "bob").is_ok());
    }

    #[test]
    fn disabled_limits_pass_everything() {
        let limits = RateLimits::new(false, &[]).unwrap();
        for _ in 0..100 {
            assert!(limits.check("anything", "alice").is_ok());
        }
    }

    #[test]
    fn a_zero_burst_is_refused_at_start() {
        assert!(
            RateLimits::new(
                true,
                &[(
                    "x",
                    LimitConfig {
                        burst: 0,
                        replenish_every_ms: 1
                    }
                )]
            )
            .is_err()
        );
    }
}
