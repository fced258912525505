//! Who is acting: the caller of a request (from its verified token), or a
//! service acting on its own (a timer, a consumed event).

use crate::auth::Principal;

/// The caller, as a service's use cases see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The token's subject, or the acting service's name (`svc-orders`).
    pub user_id: String,
    /// Holds the service's admin scope: acts on every user's behalf.
    pub admin: bool,
    /// W3C trace context of the request, recorded with what it causes.
    pub traceparent: Option<String>,
}

impl Actor {
    /// The caller of the current request; `admin` when its token holds any
    /// of `admin_scopes`. The trace context is the current span's.
    pub fn of(principal: &Principal, admin_scopes: &[&str]) -> Actor {
        Actor {
            user_id: principal.subject.clone(),
            admin: admin_scopes.iter().any(|scope| principal.has(scope)),
            traceparent: crate::telemetry::traceparent(&tracing::Span::current()),
        }
    }

    /// A service acting on its own, with every right.
    pub fn service(name: &str) -> Actor {
        Actor {
            user_id: name.to_owned(),
            admin: true,
            traceparent: None,
        }
    }

    /// Whether the actor may act for `user_id`: itself, or as an admin.
    pub fn acts_for(&self, user_id: &str) -> bool {
        self.admin || self.user_id == user_id
    }
}
