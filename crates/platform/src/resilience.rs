//! How the services wait and give up: every retry of both services comes from
//! here, so there is one back-off (exponential, with jitter, from the
//! `backon` crate) and one circuit breaker.
//!
//! - [`RetryPolicy`] + [`retry`]: a bounded number of attempts of an
//!   idempotent call (User Service, catalogue, orders, the payment provider,
//!   a consumed message handled in place);
//! - [`Reconnect`]: the endless back-off of a loop holding a connection (the
//!   consumer, the relay), reset once connected;
//! - [`CircuitBreaker`]: fails fast while a dependency is down; half-open, it
//!   lets exactly one trial call through and the others keep failing fast.

use std::{
    future::Future,
    sync::Mutex,
    time::{Duration, Instant},
};

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use serde::Deserialize;

/// A bounded retry: `retries` more attempts after the first, waiting from
/// `min` doubling up to `max`, each wait jittered so that callers who failed
/// together do not come back together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct RetryPolicy {
    pub retries: usize,
    #[serde(with = "millis")]
    pub min: Duration,
    #[serde(with = "millis")]
    pub max: Duration,
}

impl RetryPolicy {
    pub fn new(retries: usize, min: Duration, max: Duration) -> Self {
        Self {
            retries,
            min,
            max: max.max(min),
        }
    }

    /// No retry at all.
    pub fn none() -> Self {
        Self::new(0, Duration::ZERO, Duration::ZERO)
    }

    fn builder(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min)
            .with_max_delay(self.max)
            .with_max_times(self.retries)
            .with_jitter()
    }

    /// The waits this policy would make, in order (for tests and logs).
    pub fn delays(&self) -> impl Iterator<Item = Duration> {
        self.builder().build()
    }
}

/// Runs `call` until it succeeds, `retryable` says an error is final, or the
/// policy's attempts are spent; returns the last outcome.
pub async fn retry<T, E, F, Fut>(
    policy: RetryPolicy,
    call: F,
    retryable: impl FnMut(&E) -> bool,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    call.retry(policy.builder())
        .when(retryable)
        .notify(|error: &E, wait: Duration| {
            tracing::debug!(error.message = %error, wait_ms = wait.as_millis() as u64, "retrying");
        })
        .await
}

/// The back-off of a loop that reconnects forever: from 100 ms doubling up
/// to a maximum, jittered; [`Reconnect::reset`] once connected again.
#[derive(Debug)]
pub struct Reconnect {
    max: Duration,
    waits: backon::ExponentialBackoff,
}

impl Reconnect {
    pub fn new(max_ms: u64) -> Self {
        let max = Duration::from_millis(max_ms.max(100));
        Self {
            max,
            waits: Self::fresh(max),
        }
    }

    fn fresh(max: Duration) -> backon::ExponentialBackoff {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(max)
            .without_max_times()
            .with_jitter()
            .build()
    }

    /// Waits the next (longer) pause.
    pub async fn wait(&mut self) {
        let pause = self.waits.next().unwrap_or(self.max);
        tokio::time::sleep(pause).await;
    }

    pub fn reset(&mut self) {
        self.waits = Self::fresh(self.max);
    }
}

/// Why a call through a breaker failed.
#[derive(Debug, thiserror::Error)]
pub enum Tripped<E> {
    /// The circuit is open: the dependency was not called.
    #[error("circuit open after repeated failures")]
    Open,
    #[error(transparent)]
    Failed(E),
}

#[derive(Debug, Clone, Copy)]
enum Circuit {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One trial call is out; everyone else fails fast until it settles.
    Trial,
}

/// Opens after `threshold` consecutive failed calls, for `open_for`; then
/// one trial call decides whether it closes again or stays open.
#[derive(Debug)]
pub struct CircuitBreaker {
    name: &'static str,
    threshold: u32,
    open_for: Duration,
    circuit: Mutex<Circuit>,
}

impl CircuitBreaker {
    pub fn new(name: &'static str, threshold: u32, open_for: Duration) -> Self {
        Self {
            name,
            threshold: threshold.max(1),
            open_for,
            circuit: Mutex::new(Circuit::Closed { failures: 0 }),
        }
    }

    /// Calls `call` if the circuit lets it through, and counts its outcome.
    /// A call dropped before it settles (its request was cancelled) gives
    /// its trial back.
    pub async fn call<T, E, Fut>(&self, call: Fut) -> Result<T, Tripped<E>>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let mut permit = self.admit().ok_or(Tripped::Open)?;
        let outcome = call.await;
        permit.settle(outcome.is_ok());
        outcome.map_err(Tripped::Failed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Circuit> {
        self.circuit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn admit(&self) -> Option<Permit<'_>> {
        let mut circuit = self.lock();
        let trial = match *circuit {
            Circuit::Closed { .. } => false,
            Circuit::Open { until } if Instant::now() >= until => {
                *circuit = Circuit::Trial;
                true
            }
            Circuit::Open { .. } | Circuit::Trial => return None,
        };
        Some(Permit {
            breaker: self,
            trial,
            settled: false,
        })
    }

    fn record(&self, succeeded: bool) {
        let mut circuit = self.lock();
        *circuit = match (*circuit, succeeded) {
            (_, true) => Circuit::Closed { failures: 0 },
            (Circuit::Closed { failures }, false) if failures + 1 < self.threshold => {
                Circuit::Closed {
                    failures: failures + 1,
                }
            }
            (Circuit::Open { until }, false) => Circuit::Open { until },
            (Circuit::Closed { .. } | Circuit::Trial, false) => {
                tracing::warn!(
                    dependency = self.name,
                    open_ms = self.open_for.as_millis() as u64,
                    "circuit opened"
                );
                metrics::counter!("circuit_opened_total", "dependency" => self.name).increment(1);
                Circuit::Open {
                    until: Instant::now() + self.open_for,
                }
            }
        };
    }
}

/// A call the breaker let through.
struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    trial: bool,
    settled: bool,
}

impl Permit<'_> {
    fn settle(&mut self, succeeded: bool) {
        self.settled = true;
        self.breaker.record(succeeded);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.trial && !self.settled {
            // The trial was cancelled: open again at once, so the next
            // caller after it becomes the trial.
            *self.breaker.lock() = Circuit::Open {
                until: Instant::now(),
            };
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn retries_until_success_and_stops_on_a_final_error() {
        let policy = RetryPolicy::new(3, Duration::from_millis(1), Duration::from_millis(4));
        let calls = AtomicUsize::new(0);
        let outcome: Result<usize, String> = retry(
            policy,
            || async {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                if n < 2 {
                    Err("transient".to_owned())
                } else {
                    Ok(n)
                }
            },
            |_| true,
        )
        .await;
        assert_eq!(outcome, Ok(2));

        let calls = AtomicUsize::new(0);
        let outcome: Result<(), String> = retry(
            policy,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("final".to_owned())
            },
            |error| error != "final",
        )
        .await;
        assert!(outcome.is_err());
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "a final error is not retried"
        );

        let calls = AtomicUsize::new(0);
        let _: Result<(), String> = retry(
            policy,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("always".to_owned())
            },
            |_| true,
        )
        .await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            4,
            "the first attempt and 3 retries"
        );
    }

    #[test]
    fn waits_are_jittered_and_bounded() {
        let policy = RetryPolicy::new(6, Duration::from_millis(10), Duration::from_millis(80));
        let delays: Vec<Duration> = policy.delays().collect();
        assert_eq!(delays.len(), 6);
        // backon's jitter adds up to one minimum delay on top of each wait.
        assert!(
            delays
                .iter()
                .all(|d| *d >= Duration::from_millis(10) && *d <= Duration::from_millis(160)),
            "{delays:?}"
        );
        let runs: std::collections::HashSet<Vec<Duration>> =
            (0..20).map(|_| policy.delays().collect()).collect();
        assert!(runs.len() > 1, "two callers do not wait alike");
    }

    #[tokio::test]
    async fn opens_after_the_threshold_and_lets_one_trial_through() {
        let breaker = CircuitBreaker::new("test", 2, Duration::from_millis(30));
        for _ in 0..2 {
            let failed: Result<(), Tripped<&str>> = breaker.call(async { Err("down") }).await;
            assert!(matches!(failed, Err(Tripped::Failed("down"))));
        }
        let open: Result<(), Tripped<&str>> = breaker.call(async { Ok(()) }).await;
        assert!(matches!(open, Err(Tripped::Open)), "fails fast while open");

        tokio::time::sleep(Duration::from_millis(40)).await;
        // Half-open: the first caller is the trial; while it runs, others fail fast.
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let trial = breaker.call(async move {
            let _ = wait.await;
            Ok::<_, &str>(())
        });
        let others = async {
            tokio::task::yield_now().await;
            let second: Result<(), Tripped<&str>> = breaker.call(async { Ok(()) }).await;
            assert!(
                matches!(second, Err(Tripped::Open)),
                "only one trial at a time"
            );
            let _ = release.send(());
        };
        let (trial, ()) = tokio::join!(trial, others);
        assert!(trial.is_ok());
        let closed: Result<(), Tripped<&str>> = breaker.call(async { Ok(()) }).await;
        assert!(closed.is_ok(), "a successful trial closes the circuit");
    }

    #[tokio::test]
    async fn a_failed_trial_opens_again_and_a_dropped_one_frees_the_next() {
        let breaker = CircuitBreaker::new("test", 1, Duration::from_millis(20));
        let _: Result<(), Tripped<&str>> = breaker.call(async { Err("down") }).await;
        tokio::time::sleep(Duration::from_millis(25)).await;
        let _: Result<(), Tripped<&str>> = breaker.call(async { Err("still down") }).await;
        let open: Result<(), Tripped<&str>> = breaker.call(async { Ok(()) }).await;
        assert!(
            matches!(open, Err(Tripped::Open)),
            "a failed trial opens again"
        );

        tokio::time::sleep(Duration::from_millis(25)).await;
        {
            let trial = breaker.call(std::future::pending::<Result<(), &str>>());
            let _ = tokio::time::timeout(Duration::from_millis(5), trial).await;
        }
        let next: Result<(), Tripped<&str>> = breaker.call(async { Ok(()) }).await;
        assert!(next.is_ok(), "a cancelled trial lets the next caller try");
    }
}
