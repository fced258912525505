//! Orders' part of the operators' console ([`platform::ops`]): an order's
//! whole story across both services, and rebuilding the read model.
//!
//! The story is told from what each service recorded: orders' events
//! (with who caused each and its trace id), its unfinished jobs and dead
//! letters, and payments' own part, asked of payments' console with the
//! operator's own token (so an operator sees payments' side only with the
//! right to see it there: `payments.ops`, and an audience that includes
//! payments). What could not be told is said, never silently left out.

use std::time::Duration;

use anyhow::Context;
use contracts::ops::{OrderStory, ServiceStory, Step, StepKind};
use platform::ops::Console;
use uuid::Uuid;

use crate::store::{self, StoreError, rebuild::Difference};

/// Asks payments' console for its part of a story.
pub struct PaymentsConsole {
    http: reqwest::Client,
    base: String,
}

impl PaymentsConsole {
    pub fn new(config: &crate::payments_client::PaymentsClientConfig) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_millis(config.timeout_ms.max(100)))
                .build()
                .context("building an HTTP client")?,
            base: config.url.trim_end_matches('/').to_owned(),
        })
    }

    async fn story(&self, order_id: Uuid, authorization: &str) -> Result<ServiceStory, String> {
        let response = self
            .http
            .get(format!("{}/api/v1/ops/orders/{order_id}", self.base))
            .header(reqwest::header::AUTHORIZATION, authorization)
            .send()
            .await
            .map_err(|error| format!("payments could not be reached ({error})"))?;
        let status = response.status();
        match status.as_u16() {
            200 => response
                .json()
                .await
                .map_err(|error| format!("payments answered an unreadable story ({error})")),
            401 => Err("payments refused the token (its audience must include payments)".into()),
            403 => Err("the token lacks payments.ops, so payments' side is not shown".into()),
            _ => Err(format!("payments answered {status}")),
        }
    }
}

/// Why a story could not be told.
#[derive(Debug, thiserror::Error)]
pub enum StoryError {
    #[error("no such order")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Order `order_id`'s whole story, in time order.
pub async fn story(
    console: &Console,
    payments: &PaymentsConsole,
    order_id: Uuid,
    authorization: &str,
) -> Result<OrderStory, StoryError> {
    let mut conn = platform::db::connection(&console.pool).await?;
    let events = store::story::events(&mut conn, order_id).await?;
    let Some(last) = events.last().cloned() else {
        return Err(StoryError::NotFound);
    };
    let mut steps: Vec<Step> = events
        .into_iter()
        .map(|event| Step {
            at: event.occurred_at,
            service: "orders".to_owned(),
            kind: StepKind::Event,
            summary: format!(
                "#{} status {}, payment {}, total {} {}",
                event.sequence, event.status, event.payment_status, event.total, event.currency
            ),
            name: event.event_type,
            actor: event.actor,
            trace_id: contracts::ops::trace_id(event.traceparent.as_deref()),
        })
        .collect();
    steps.extend(
        platform::ops::story::common_steps(&mut conn, &console.ops, &order_id.to_string(), &[])
            .await?,
    );
    drop(conn);
    let mut missing = Vec::new();
    let mut paid = Vec::new();
    match payments.story(order_id, authorization).await {
        Ok(theirs) => {
            steps.extend(theirs.steps);
            paid = theirs.payments;
        }
        Err(why) => missing.push(why),
    }
    contracts::ops::in_time_order(&mut steps);
    Ok(OrderStory {
        order_id,
        order_number: last.order_number,
        status: last.status,
        payment_status: last.payment_status,
        total: last.total,
        currency: last.currency,
        steps,
        payments: paid,
        missing,
    })
}

/// What a rebuild checked and found.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RebuildReport {
    /// Orders compared.
    pub checked: usize,
    /// Orders whose rows differed from their events.
    pub differing: usize,
    /// Whether the differing orders were rewritten.
    pub applied: bool,
    /// Every difference, field by field (personal data masked).
    pub differences: Vec<Difference>,
    /// Where the next page starts (`after`), when there may be more.
    pub next_after: Option<Uuid>,
}

/// Rebuilds one order, or a page of up to `limit` orders after `after`.
pub async fn rebuild(
    console: &Console,
    order_id: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
    apply: bool,
) -> Result<RebuildReport, StoryError> {
    let mut conn = platform::db::connection(&console.pool).await?;
    let ids = match order_id {
        Some(id) => vec![id],
        None => store::rebuild::order_ids(&mut conn, after, limit).await?,
    };
    let mut differences = Vec::new();
    let mut differing = 0;
    for id in &ids {
        let found = store::rebuild::rebuild_order(&mut conn, *id, apply).await?;
        if !found.is_empty() {
            differing += 1;
            tracing::warn!(order.id = %id, differences = found.len(), applied = apply, "projection differs from its events");
        }
        differences.extend(found);
    }
    let next_after = (order_id.is_none() && i64::try_from(ids.len()).unwrap_or(0) == limit)
        .then(|| ids.last().copied())
        .flatten();
    Ok(RebuildReport {
        checked: ids.len(),
        differing,
        applied: apply,
        differences,
        next_after,
    })
}
