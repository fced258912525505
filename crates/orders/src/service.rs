//! Application services: what the API asks of orders, one function per use case.
//!
//! Each use case loads what it needs, checks who may do it, lets the aggregate
//! decide, and saves the result in one transaction. Writers of the same order
//! are serialized optimistically: a write decided on a stale version fails with
//! a conflict and is retried on fresh state, so no update is ever lost.

use std::sync::Arc;

use platform::db::{self, PgPool};
use platform::idempotency::IdempotencyKey;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::catalog::{Catalog, Reservation, ReservedLine, Shortage};
use crate::domain::Money;
use crate::domain::pricing::Pricing;
use crate::domain::{CouponRefusal, Promotions, Shipment};
use crate::users::{UserCheck, UserDirectory};
use uuid::Uuid;

use crate::domain::{
    Address, Currency, LineItem, Order, OrderCommand, OrderEvent, OrderId, OrderNumber,
    OrderStatus, PlaceOrder, Recorded, RuleViolation, UserId, Violation,
};
use crate::store::{
    self, HistoryEntry, JOBS, KeyClaim, ListFilter, NewEvent, OrderNumbers, StoreError,
    StoredResponse, WriteContext,
};
use crate::view;
use platform::jobs::NewJob;
use serde::{Deserialize, Serialize};

/// How often a write that lost a race is retried before answering 409.
const MAX_ATTEMPTS: usize = 5;

/// Catalogue look-ups in flight at once for one order.
const CATALOG_CONCURRENCY: usize = 8;

/// The caller, as the application sees it.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: String,
    /// Holds `orders.admin`: sees every order, performs fulfilment.
    pub admin: bool,
    /// W3C trace context of the request, recorded with the events it causes.
    pub traceparent: Option<String>,
}

impl Actor {
    fn may_see(&self, order: &Order) -> bool {
        self.admin || order.user_id.as_str() == self.user_id
    }

    fn context(&self) -> WriteContext<'_> {
        WriteContext {
            actor: Some(&self.user_id),
            traceparent: self.traceparent.as_deref(),
            ..WriteContext::default()
        }
    }

    /// The service itself (timers such as the unpaid-order sweep).
    pub fn system() -> Actor {
        Actor {
            user_id: "svc-orders".to_owned(),
            admin: true,
            traceparent: None,
        }
    }

    /// The payments service, acting through its events.
    pub fn payments() -> Actor {
        Actor {
            user_id: "svc-payments".to_owned(),
            admin: true,
            traceparent: None,
        }
    }
}

/// A validated request to place an order, before ids are assigned.
#[derive(Debug, Clone)]
pub struct OrderDraft {
    /// Whose order it is (the caller, unless an admin places it for someone).
    pub user_id: UserId,
    /// None: the catalogue's prices say, else the configured default. The
    /// items' provisional prices are in this currency or the default.
    pub currency: Option<Currency>,
    pub items: Vec<LineItem>,
    pub shipping_address: Option<Address>,
    pub billing_address: Option<Address>,
    pub shipping_method: Option<String>,
    pub notes: Option<String>,
    /// How the customer pays, as they name it (`CREDIT_CARD`, `card`).
    pub payment_method: Option<String>,
    /// Charge the order at once with this method.
    pub payment: Option<PaymentMethod>,
    pub coupon_code: Option<String>,
}

/// A payment method: the kind and the provider token.
#[derive(Debug, Clone)]
pub struct PaymentMethod {
    pub method: String,
    pub token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("the request is invalid")]
    Invalid(Vec<Violation>),
    #[error("no such order")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Rule(RuleViolation),
    #[error("`{0}` is not an order status")]
    UnknownStatus(String),
    #[error("the order is at version {current}, not {expected}")]
    VersionMismatch { expected: u32, current: u32 },
    #[error("the order is being changed by someone else; try again")]
    Conflict,
    #[error("this Idempotency-Key was used for a different request")]
    KeyMismatch,
    #[error("a request with this Idempotency-Key is still being processed")]
    KeyInFlight,
    #[error("the order has {0} events, the most its items may be edited to")]
    HistoryFull(u32),
    #[error("user {0} does not exist")]
    UserNotFound(String),
    #[error(transparent)]
    InvalidCoupon(CouponRefusal),
    /// Products the catalogue does not have: (field, product id).
    #[error("unknown products")]
    ProductsNotFound(Vec<(String, String)>),
    #[error("not enough stock")]
    InsufficientStock(Vec<Shortage>),
    #[error("{0}")]
    CatalogUnavailable(String),
    #[error("{0}")]
    UserServiceUnavailable(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StoreError> for OrderError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict => OrderError::Conflict,
            StoreError::Duplicate => OrderError::Unexpected(anyhow::anyhow!("duplicate event")),
            StoreError::CouponLimit => {
                OrderError::Unexpected(anyhow::anyhow!("a coupon limit outside order placement"))
            }
            StoreError::Unexpected(error) => OrderError::Unexpected(error),
        }
    }
}

/// A page of orders.
#[derive(Debug)]
pub struct Page {
    pub orders: Vec<Order>,
    pub total: u64,
}

/// What an item edit did.
#[derive(Debug)]
pub enum ItemsChanged {
    Changed(Box<Order>),
    /// The same request (Idempotency-Key) again: the first answer.
    Replayed(Placed),
}

/// The answer to `POST /api/v1/orders`: for a new order, the body stored
/// under the key; for the same request again, the first answer byte for byte.
#[derive(Debug)]
pub struct Placed {
    pub status: u16,
    pub body: Vec<u8>,
    pub replayed: bool,
    /// The order's id and version, when known without reading the body (a
    /// fresh answer); a replay reads them from the stored body.
    pub order: Option<(OrderId, u32)>,
}

/// Job kinds of schema `orders`.
pub const PAY: &str = "pay";
pub const RELEASE_STOCK: &str = "release_stock";
pub const REFUND: &str = "refund";

/// Payload of a `pay` job: charge the order through payments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PayJob {
    pub order_id: Uuid,
    pub attempt: i32,
    pub user_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub method: String,
    /// The provider token; deleted with the job once payments has it.
    pub token: String,
    #[serde(default)]
    pub traceparent: Option<String>,
}

/// Payload of a `release_stock` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseJob {
    pub reservation_id: Uuid,
}

/// Payload of a `refund` job: have payments refund a charge the order
/// rejected.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefundJob {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub reason: String,
    #[serde(default)]
    pub traceparent: Option<String>,
}

/// Idempotency-Key policy.
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    /// How long a key is remembered.
    pub ttl: time::Duration,
    /// A request in flight this long is presumed dead; a retry takes over.
    pub stale_after: time::Duration,
}

/// The orders use cases, shared by all HTTP workers.
pub struct Orders {
    pool: PgPool,
    numbers: OrderNumbers,
    keys: KeyPolicy,
    /// Validates users before their orders are placed, when configured.
    users: Option<UserDirectory>,
    /// Tax and shipping rates.
    pricing: Pricing,
    /// Coupons.
    promotions: Promotions,
    /// Prices and stock, when configured.
    catalog: Option<Catalog>,
    /// Wakes this instance's job worker when work is enqueued.
    jobs: Arc<Notify>,
    /// Item edits stop once an order has this many events (payments,
    /// fulfilment and cancellation are always recorded).
    max_events: u32,
    max_history_page: u32,
}

/// What consuming an event did.
#[derive(Debug, PartialEq, Eq)]
pub enum Consumed {
    /// It changed the order (events appended).
    Applied,
    /// It was recorded but changed nothing.
    NoChange,
    /// It had been consumed before: no second effect.
    Duplicate,
}

impl Orders {
    pub fn new(
        pool: PgPool,
        jobs: Arc<Notify>,
        keys: KeyPolicy,
        users: Option<UserDirectory>,
        pricing: Pricing,
        promotions: Promotions,
        catalog: Option<Catalog>,
    ) -> Self {
        Self {
            pool,
            numbers: OrderNumbers::default(),
            keys,
            users,
            pricing,
            promotions,
            catalog,
            jobs,
            max_events: u32::MAX,
            max_history_page: 500,
        }
    }

    /// Caps the events item edits may add to one order, and the page of
    /// its history one request reads.
    pub fn with_history_limits(mut self, max_events: u32, max_page: u32) -> Self {
        self.max_events = max_events.max(2);
        self.max_history_page = max_page.max(1);
        self
    }

    /// The largest page of an order's history.
    pub fn max_history_page(&self) -> u32 {
        self.max_history_page
    }

    /// Cancels pending orders placed more than `unpaid_for` ago
    /// (`order.cancelled`, reason `payment_timeout`); returns how many.
    pub async fn expire_unpaid(&self, unpaid_for: time::Duration) -> Result<usize, OrderError> {
        let mut conn = db::connection(&self.pool).await?;
        let actor = Actor::system();
        let mut expired = 0;
        for id in store::pending_placed_before(&mut conn, now() - unpaid_for, 100).await? {
            for _ in 0..MAX_ATTEMPTS {
                let Some(order) = store::load_order(&mut conn, id).await? else {
                    break;
                };
                let events = order
                    .handle(OrderCommand::Expire)
                    .map_err(OrderError::Rule)?;
                if events.is_empty() {
                    break;
                }
                match self
                    .commit(&mut conn, order, events, actor.context(), None)
                    .await
                {
                    Ok(_) => {
                        expired += 1;
                        tracing::info!(order.id = %id, "unpaid order cancelled");
                        break;
                    }
                    Err(StoreError::Conflict) => continue,
                    Err(other) => return Err(other.into()),
                }
            }
        }
        Ok(expired)
    }

    /// Whether prices and stock come from a catalogue.
    pub fn has_catalog(&self) -> bool {
        self.catalog.is_some()
    }

    /// The currency of an order that names none and has no catalogue.
    pub fn default_currency(&self) -> Currency {
        self.pricing.default_currency()
    }

    /// The work a change decides besides itself, enqueued in its
    /// transaction: a cancellation releases the order's stock; a rejected
    /// charge is refunded.
    fn follow_up(
        &self,
        id: OrderId,
        events: &[OrderEvent],
        traceparent: Option<&str>,
    ) -> Vec<NewJob> {
        events
            .iter()
            .filter_map(|event| match event {
                OrderEvent::Cancelled(_) if self.catalog.is_some() => Some(release_job(id.0)),
                OrderEvent::PaymentRejected(rejected) => Some(NewJob::now(
                    REFUND,
                    rejected.payment_id.to_string(),
                    serde_json::json!(RefundJob {
                        payment_id: rejected.payment_id,
                        order_id: id.0,
                        reason: rejected.reason.clone(),
                        traceparent: traceparent.map(str::to_owned),
                    }),
                )),
                _ => None,
            })
            .collect()
    }

    /// Appends `events`, decided on `order`, with the work they decide, and
    /// returns the order after them. A lost race is [`StoreError::Conflict`]:
    /// decide again on fresh state. With `respond_under`, the answer (`201`
    /// with the order) is stored under that owner's reserved Idempotency-Key
    /// in the same transaction.
    async fn commit(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
        order: Order,
        events: Vec<OrderEvent>,
        context: WriteContext<'_>,
        respond_under: Option<(&str, &IdempotencyKey)>,
    ) -> Result<Order, StoreError> {
        let (before, version, id) = (order.status, order.version, order.id);
        let jobs = self.follow_up(id, &events, context.traceparent);
        let recorded = record(id, version, now(), events);
        let (next, snapshots) = evolve(Some(order), &recorded)?;
        let new_events = new_events(&recorded, snapshots);
        let body = match respond_under {
            Some(_) => serde_json::to_vec(&view::order_data(&next)).map_err(anyhow::Error::from)?,
            None => Vec::new(),
        };
        let context = WriteContext {
            jobs: &jobs,
            idempotency: respond_under.map(|(owner, key)| StoredResponse {
                owner,
                key: &key.key,
                status: 201,
                body: &body,
            }),
            ..context
        };
        store::save(conn, &next, &new_events, context, Some(version)).await?;
        if !jobs.is_empty() {
            self.jobs.notify_one();
        }
        record_transition(before, &next);
        Ok(next)
    }

    /// Releases a reservation at once, or records it for the job worker.
    async fn release_now_or_later(&self, id: OrderId) {
        let Some(catalog) = &self.catalog else {
            return;
        };
        if catalog.release(id.0).await.is_ok() {
            return;
        }
        let recorded = async {
            let conn = db::connection(&self.pool).await?;
            platform::jobs::enqueue(&conn, JOBS, &release_job(id.0))
                .await
                .map_err(StoreError::from)?;
            Ok::<_, OrderError>(())
        }
        .await;
        match recorded {
            Ok(()) => self.jobs.notify_one(),
            Err(error) => {
                tracing::error!(order.id = %id, error.message = %error, "could not release or record a stock reservation")
            }
        }
    }

    /// The `release_stock` job: releases a reservation at the catalogue
    /// (keyed by the order id, so releasing twice releases once).
    pub async fn release_stock(&self, job: ReleaseJob) -> platform::jobs::Outcome {
        let Some(catalog) = &self.catalog else {
            return platform::jobs::Outcome::Done;
        };
        match catalog.release(job.reservation_id).await {
            Ok(()) => platform::jobs::Outcome::Done,
            Err(error) => platform::jobs::Outcome::Retry(error.to_string()),
        }
    }

    /// Forgets expired Idempotency-Keys; returns how many.
    pub async fn sweep_keys(&self) -> Result<usize, OrderError> {
        let mut conn = db::connection(&self.pool).await?;
        Ok(store::sweep_keys(&mut conn, now() - self.keys.ttl).await?)
    }

    /// Claims the caller's Idempotency-Key before anything else happens: a
    /// completed request is replayed (whatever has changed since), one in
    /// flight is refused, one for another request is a mismatch.
    async fn claim(
        &self,
        actor: &Actor,
        key: &IdempotencyKey,
    ) -> Result<Option<Placed>, OrderError> {
        let mut conn = db::connection(&self.pool).await?;
        match store::claim_key(
            &mut conn,
            &actor.user_id,
            &key.key,
            &key.request_hash,
            now(),
            self.keys.ttl,
            self.keys.stale_after,
        )
        .await?
        {
            KeyClaim::New => Ok(None),
            KeyClaim::Done { status, body } => Ok(Some(Placed {
                status,
                body,
                replayed: true,
                order: None,
            })),
            KeyClaim::InFlight => Err(OrderError::KeyInFlight),
            KeyClaim::Mismatch => Err(OrderError::KeyMismatch),
        }
    }

    /// Frees a claimed key after its request failed (best effort: an
    /// unreleased key is taken over once stale).
    async fn release(&self, actor: &Actor, key: Option<&IdempotencyKey>) {
        let Some(key) = key else { return };
        let released = async {
            let mut conn = db::connection(&self.pool).await?;
            store::release_key(&mut conn, &actor.user_id, &key.key).await?;
            Ok::<_, OrderError>(())
        }
        .await;
        if let Err(error) = released {
            tracing::warn!(error.message = %error, "could not release an Idempotency-Key");
        }
    }

    /// Places an order (`order.created`), once per Idempotency-Key.
    ///
    /// Authorization first, then the key (claimed before any side effect: a
    /// retry of a completed request replays its answer without asking the
    /// User Service or reserving stock again), then the user and the
    /// catalogue, then one transaction that writes the order, its events,
    /// the charge to make and the answer under the key.
    pub async fn place(
        &self,
        actor: &Actor,
        draft: OrderDraft,
        key: Option<IdempotencyKey>,
    ) -> Result<Placed, OrderError> {
        if draft.user_id.as_str() != actor.user_id && !actor.admin {
            return Err(OrderError::Forbidden(
                "only an admin may place an order for another user".into(),
            ));
        }
        if draft.shipping_address.is_none()
            && self.pricing.needs_address(draft.shipping_method.as_deref())
        {
            return Err(OrderError::Invalid(vec![Violation::new(
                "shipping_address",
                format!(
                    "is required for shipping method `{}`",
                    draft.shipping_method.as_deref().unwrap_or_default()
                ),
            )]));
        }
        if let Some(key) = &key
            && let Some(replayed) = self.claim(actor, key).await?
        {
            return Ok(replayed);
        }
        let placed = self.place_claimed(actor, draft, key.as_ref()).await;
        if placed.is_err() {
            self.release(actor, key.as_ref()).await;
        }
        placed
    }

    async fn place_claimed(
        &self,
        actor: &Actor,
        draft: OrderDraft,
        key: Option<&IdempotencyKey>,
    ) -> Result<Placed, OrderError> {
        if let Some(users) = &self.users {
            match users.check(draft.user_id.as_str()).await {
                Ok(UserCheck::Exists) => {}
                Ok(UserCheck::Unknown) => {
                    return Err(OrderError::UserNotFound(draft.user_id.to_string()));
                }
                Err(unavailable) => {
                    tracing::warn!(error.message = %unavailable, "could not validate a user");
                    return Err(OrderError::UserServiceUnavailable(unavailable.to_string()));
                }
            }
        }
        let id = OrderId(Uuid::now_v7());
        let mut draft = draft;
        if let Some(catalog) = &self.catalog {
            let (currency, items) = snapshot(catalog, draft.currency, draft.items).await?;
            draft.currency = currency;
            draft.items = items;
            reserve(catalog, id, &draft.items).await?;
        }
        let placed = self.place_once(actor, id, draft, key).await;
        if placed.is_err() && self.catalog.is_some() {
            // Saga compensation: the order was not placed; release what was
            // reserved for it.
            self.release_now_or_later(id).await;
        }
        placed
    }

    async fn place_once(
        &self,
        actor: &Actor,
        id: OrderId,
        draft: OrderDraft,
        key: Option<&IdempotencyKey>,
    ) -> Result<Placed, OrderError> {
        let currency = draft
            .currency
            .unwrap_or_else(|| self.pricing.default_currency());
        let shipping_method = draft.shipping_method.as_deref().map(Pricing::method_name);
        let mut charges = self
            .pricing
            .charges(shipping_method.as_deref(), currency)
            .map_err(|message| {
                OrderError::Invalid(vec![Violation::new("shipping_method", message)])
            })?;
        let redemption = match &draft.coupon_code {
            None => None,
            Some(code) => {
                let subtotal = crate::domain::Totals::compute(currency, &draft.items, &charges)
                    .map_err(|_| OrderError::Rule(RuleViolation::TotalTooLarge))?
                    .subtotal;
                Some(
                    self.promotions
                        .redeem(code, subtotal, now())
                        .map_err(OrderError::InvalidCoupon)?,
                )
            }
        };
        charges.coupon = redemption.as_ref().map(|r| r.coupon.clone());
        let mut conn = db::connection(&self.pool).await?;
        let number = self.numbers.next(&mut conn).await?;
        let events = Order::place(PlaceOrder {
            id,
            number,
            user_id: draft.user_id,
            currency,
            items: draft.items,
            shipping_address: draft.shipping_address,
            billing_address: draft.billing_address,
            shipping_method,
            notes: draft.notes,
            payment_method: draft
                .payment_method
                .or_else(|| draft.payment.as_ref().map(|p| p.method.clone())),
            charges,
        })
        .map_err(OrderError::Rule)?;
        let recorded = record(id, 0, now(), events);
        let (order, snapshots) = evolve(None, &recorded)?;
        let new_events = new_events(&recorded, snapshots);
        let jobs: Vec<NewJob> = draft
            .payment
            .map(|payment| {
                NewJob::now(
                    PAY,
                    format!("{}:1", id.0),
                    serde_json::json!(PayJob {
                        order_id: id.0,
                        attempt: 1,
                        user_id: order.user_id.to_string(),
                        amount_minor: order.totals.total.minor(),
                        currency: order.currency.code().to_owned(),
                        method: payment.method,
                        token: payment.token,
                        traceparent: actor.traceparent.clone(),
                    }),
                )
            })
            .into_iter()
            .collect();
        let body = serde_json::to_vec(&view::order_data(&order)).map_err(anyhow::Error::from)?;
        let context = WriteContext {
            jobs: &jobs,
            idempotency: key.map(|key| StoredResponse {
                owner: &actor.user_id,
                key: &key.key,
                status: 201,
                body: &body,
            }),
            coupon_use: redemption.as_ref().map(|r| store::CouponUse {
                code: &r.coupon.code,
                user_id: order.user_id.as_str(),
                limit: r.per_user_limit,
            }),
            ..actor.context()
        };
        match store::save(&mut conn, &order, &new_events, context, None).await {
            Ok(()) => {}
            Err(StoreError::CouponLimit) => {
                let code = redemption.map(|r| r.coupon.code).unwrap_or_default();
                return Err(OrderError::InvalidCoupon(CouponRefusal::LimitReached(code)));
            }
            Err(other) => return Err(other.into()),
        }
        if !jobs.is_empty() {
            self.jobs.notify_one();
        }
        record_created(&order);
        Ok(Placed {
            status: 201,
            body,
            replayed: false,
            order: Some((order.id, order.version)),
        })
    }

    /// Applies what payments reported (`payment.*`) to an order, recording
    /// the event in the inbox in the same transaction.
    pub async fn apply_payment_event(
        &self,
        id: OrderId,
        command: OrderCommand,
        event: (Uuid, &str),
        traceparent: Option<&str>,
    ) -> Result<Consumed, OrderError> {
        let mut conn = db::connection(&self.pool).await?;
        let actor = Actor::payments();
        let context = WriteContext {
            actor: Some(&actor.user_id),
            traceparent,
            consumed: Some(event),
            ..WriteContext::default()
        };
        for _ in 0..MAX_ATTEMPTS {
            let order = store::load_order(&mut conn, id)
                .await?
                .ok_or(OrderError::NotFound)?;
            let events = order.handle(command.clone()).map_err(OrderError::Rule)?;
            if events.is_empty() {
                return Ok(
                    match store::record_consumed(&mut conn, event.0, event.1).await? {
                        true => Consumed::NoChange,
                        false => Consumed::Duplicate,
                    },
                );
            }
            match self.commit(&mut conn, order, events, context, None).await {
                Ok(_) => return Ok(Consumed::Applied),
                Err(StoreError::Duplicate) => return Ok(Consumed::Duplicate),
                Err(StoreError::Conflict) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(OrderError::Conflict)
    }

    /// Records that an order could not be charged at all (payments refused
    /// the request itself), so the failure shows in its history.
    pub async fn record_payment_refused(
        &self,
        id: OrderId,
        reason: String,
    ) -> Result<(), OrderError> {
        let mut conn = db::connection(&self.pool).await?;
        let actor = Actor::payments();
        for _ in 0..MAX_ATTEMPTS {
            let order = store::load_order(&mut conn, id)
                .await?
                .ok_or(OrderError::NotFound)?;
            let command = OrderCommand::RecordPaymentFailure {
                payment_id: None,
                reason: reason.clone(),
            };
            let events = order.handle(command).map_err(OrderError::Rule)?;
            if events.is_empty() {
                return Ok(());
            }
            match self
                .commit(&mut conn, order, events, actor.context(), None)
                .await
            {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(OrderError::Conflict)
    }

    /// An order by id or order number, if the actor may see it.
    pub async fn find(&self, actor: &Actor, key: &str) -> Result<Order, OrderError> {
        let mut conn = db::connection(&self.pool).await?;
        let id = match Uuid::parse_str(key) {
            Ok(id) => OrderId(id),
            Err(_) => {
                let number = OrderNumber::parse(key).map_err(|_| OrderError::NotFound)?;
                store::find_id_by_number(&mut conn, &number)
                    .await?
                    .ok_or(OrderError::NotFound)?
            }
        };
        store::find_order(&mut conn, id)
            .await?
            .filter(|order| actor.may_see(order))
            .ok_or(OrderError::NotFound)
    }

    /// The orders the actor may see, newest first.
    pub async fn list(&self, actor: &Actor, mut filter: ListFilter) -> Result<Page, OrderError> {
        if !actor.admin {
            match &filter.user_id {
                Some(user) if user.as_str() != actor.user_id => {
                    return Err(OrderError::Forbidden(
                        "only an admin may list another user's orders".into(),
                    ));
                }
                _ => {
                    filter.user_id =
                        Some(UserId::parse(&actor.user_id).map_err(anyhow::Error::msg)?)
                }
            }
        }
        let mut conn = db::connection(&self.pool).await?;
        let (orders, total) = store::list_orders(&mut conn, &filter).await?;
        Ok(Page { orders, total })
    }

    /// Moves an order to `status` (`PATCH`), or cancels it (`DELETE`).
    ///
    /// `expected_version` (from `If-Match`) makes the change conditional: it
    /// applies only to that version. Without it a lost race is retried on the
    /// fresh state, which may then refuse the change (e.g. ship after cancel).
    pub async fn change_status(
        &self,
        actor: &Actor,
        id: OrderId,
        status: &str,
        reason: Option<String>,
        shipment: Shipment,
        expected_version: Option<u32>,
    ) -> Result<Order, OrderError> {
        let target = OrderStatus::parse(status)
            .ok_or_else(|| OrderError::UnknownStatus(status.to_owned()))?;
        if target != OrderStatus::Shipped && shipment != Shipment::default() {
            return Err(OrderError::Invalid(vec![Violation::new(
                "carrier",
                "carrier and tracking_number go with status `shipped` only",
            )]));
        }
        self.execute(actor, id, expected_version, None, |order| {
            let command = OrderCommand::to_reach(target, reason.clone(), shipment.clone()).ok_or(
                OrderError::Rule(RuleViolation::InvalidTransition {
                    from: order.status,
                    to: target,
                }),
            )?;
            if target != OrderStatus::Cancelled && !actor.admin {
                return Err(OrderError::Forbidden(format!(
                    "only an admin (scope orders.admin) may mark an order {target}"
                )));
            }
            Ok(command)
        })
        .await
    }

    /// Adds, changes or removes a line of a pending order (the owner or an
    /// admin), conditional on `expected_version` like a status change.
    /// `decide` builds the command from the loaded order (e.g. parses a
    /// price in the order's currency).
    ///
    /// With a catalogue, an added line is priced by it, and the order's
    /// reservation is re-reserved with the new quantities before the change
    /// is committed, on the version it was decided on.
    ///
    /// With an Idempotency-Key, the answer is stored with the change and a
    /// repeated request replays it.
    pub async fn change_items(
        &self,
        actor: &Actor,
        id: OrderId,
        expected_version: Option<u32>,
        key: Option<IdempotencyKey>,
        decide: impl Fn(&Order) -> Result<OrderCommand, OrderError>,
    ) -> Result<ItemsChanged, OrderError> {
        if let Some(key) = &key
            && let Some(replayed) = self.claim(actor, key).await?
        {
            return Ok(ItemsChanged::Replayed(replayed));
        }
        let max_events = self.max_events;
        let capped = move |order: &Order| {
            if order.version >= max_events {
                return Err(OrderError::HistoryFull(order.version));
            }
            decide(order)
        };
        let changed = self
            .edit_items(actor, id, expected_version, key.as_ref(), capped)
            .await;
        match changed {
            Ok(order) => Ok(ItemsChanged::Changed(Box::new(order))),
            Err(error) => {
                self.release(actor, key.as_ref()).await;
                Err(error)
            }
        }
    }

    async fn edit_items(
        &self,
        actor: &Actor,
        id: OrderId,
        expected_version: Option<u32>,
        key: Option<&IdempotencyKey>,
        decide: impl Fn(&Order) -> Result<OrderCommand, OrderError>,
    ) -> Result<Order, OrderError> {
        let Some(catalog) = &self.catalog else {
            return self.execute(actor, id, expected_version, key, decide).await;
        };
        let mut conn = db::connection(&self.pool).await?;
        let current = store::load_order(&mut conn, id)
            .await?
            .filter(|order| actor.may_see(order))
            .ok_or(OrderError::NotFound)?;
        drop(conn);
        let mut command = decide(&current)?;
        if let OrderCommand::AddItem { item } = &mut command {
            let (_, priced) = snapshot(catalog, Some(current.currency), vec![item.clone()]).await?;
            if let Some(priced) = priced.into_iter().next() {
                *item = priced;
            }
        }
        let events = current.handle(command.clone()).map_err(OrderError::Rule)?;
        if events.is_empty() {
            return Ok(current);
        }
        let mut next = current.clone();
        for recorded in record(id, current.version, now(), events) {
            next.apply(&recorded).map_err(anyhow::Error::from)?;
        }
        reserve(catalog, id, &next.items).await?;
        let version = expected_version.unwrap_or(current.version);
        self.execute(actor, id, Some(version), key, |_| Ok(command.clone()))
            .await
    }

    /// Loads the order the actor may see, lets `decide` pick the command
    /// (and refuse it), checks `If-Match`, lets the aggregate decide, and
    /// commits. A lost race is decided again on the fresh state.
    async fn execute(
        &self,
        actor: &Actor,
        id: OrderId,
        expected_version: Option<u32>,
        key: Option<&IdempotencyKey>,
        decide: impl Fn(&Order) -> Result<OrderCommand, OrderError>,
    ) -> Result<Order, OrderError> {
        let mut conn = db::connection(&self.pool).await?;
        for _ in 0..MAX_ATTEMPTS {
            let order = store::load_order(&mut conn, id)
                .await?
                .filter(|order| actor.may_see(order))
                .ok_or(OrderError::NotFound)?;
            let command = decide(&order)?;
            if let Some(expected) = expected_version
                && expected != order.version
            {
                return Err(OrderError::VersionMismatch {
                    expected,
                    current: order.version,
                });
            }
            let events = order.handle(command).map_err(OrderError::Rule)?;
            if events.is_empty() {
                return Ok(order);
            }
            let respond_under = key.map(|key| (actor.user_id.as_str(), key));
            match self
                .commit(&mut conn, order, events, actor.context(), respond_under)
                .await
            {
                Ok(next) => return Ok(next),
                // Lost a race: decide again on the fresh state (which also
                // reports an accurate version to an `If-Match` caller).
                Err(StoreError::Conflict) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(OrderError::Conflict)
    }

    /// The audit trail of an order the actor may see.
    pub async fn history(
        &self,
        actor: &Actor,
        id: OrderId,
        after: u32,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, OrderError> {
        // Ownership is checked on the projection (cheap); the trail itself is
        // read from the event store.
        self.find(actor, &id.to_string()).await?;
        let mut conn = db::connection(&self.pool).await?;
        Ok(store::history_entries(&mut conn, id, after, limit).await?)
    }
}

/// Replaces each line's price, name and SKU with the catalogue's (client
/// values are never trusted when a catalogue is configured).
///
/// The order's currency is `currency`, or else the first product's (None
/// only without items); a product sold in another is refused.
async fn snapshot(
    catalog: &Catalog,
    currency: Option<Currency>,
    items: Vec<LineItem>,
) -> Result<(Option<Currency>, Vec<LineItem>), OrderError> {
    use futures_util::StreamExt;
    // At most CATALOG_CONCURRENCY look-ups in flight per order.
    let products: Vec<_> = futures_util::stream::iter(items.iter().map(|item| {
        catalog.product(
            item.product_id.as_str(),
            item.variant_id.as_ref().map(|v| v.as_str()),
        )
    }))
    .buffered(CATALOG_CONCURRENCY)
    .collect()
    .await;
    let mut currency = currency;
    let mut unknown = Vec::new();
    let mut violations = Vec::new();
    let mut priced = Vec::with_capacity(items.len());
    for (index, (mut item, product)) in items.into_iter().zip(products).enumerate() {
        match product.map_err(|error| OrderError::CatalogUnavailable(error.to_string()))? {
            None => unknown.push((
                format!(
                    "items[{index}].{}",
                    if item.variant_id.is_some() {
                        "variant_id"
                    } else {
                        "product_id"
                    }
                ),
                match &item.variant_id {
                    Some(variant) => format!("{} variant {variant}", item.product_id),
                    None => item.product_id.to_string(),
                },
            )),
            Some(product) => {
                let price = Currency::parse(&product.currency)
                    .and_then(|product_currency| Money::parse(&product.price, product_currency))
                    .map_err(|error| {
                        OrderError::CatalogUnavailable(format!(
                            "unreadable price of {}: {error}",
                            product.id
                        ))
                    })?;
                let currency = *currency.get_or_insert(price.currency());
                if price.currency() == currency {
                    item.unit_price = price;
                    item.name = Some(product.name);
                    item.sku = product.sku;
                } else {
                    violations.push(Violation::new(
                        format!("items[{index}].product_id"),
                        format!(
                            "is sold in {}, the order is in {currency}",
                            price.currency()
                        ),
                    ));
                }
            }
        }
        priced.push(item);
    }
    if !unknown.is_empty() {
        return Err(OrderError::ProductsNotFound(unknown));
    }
    if !violations.is_empty() {
        return Err(OrderError::Invalid(violations));
    }
    Ok((currency, priced))
}

/// Reserves every line's quantity for the order, all or nothing.
async fn reserve(catalog: &Catalog, id: OrderId, items: &[LineItem]) -> Result<(), OrderError> {
    let lines: Vec<ReservedLine<'_>> = items
        .iter()
        .map(|item| ReservedLine {
            product_id: item.product_id.as_str(),
            variant_id: item.variant_id.as_ref().map(|v| v.as_str()),
            quantity: item.quantity.get(),
        })
        .collect();
    match catalog.reserve(id.0, &lines).await {
        Ok(Reservation::Reserved) => Ok(()),
        Ok(Reservation::Insufficient(shortages)) => Err(OrderError::InsufficientStock(shortages)),
        Err(error) => Err(OrderError::CatalogUnavailable(error.to_string())),
    }
}

fn release_job(reservation_id: Uuid) -> NewJob {
    NewJob::now(
        RELEASE_STOCK,
        reservation_id.to_string(),
        serde_json::json!(ReleaseJob { reservation_id }),
    )
}

/// `orders_created_total` and `order_value` (in major units of the currency:
/// an observation, never money arithmetic).
fn record_created(order: &Order) {
    let currency = order.currency.code();
    metrics::counter!("orders_created_total", "currency" => currency).increment(1);
    let scale = 10_f64.powi(i32::try_from(order.currency.exponent()).unwrap_or(2));
    metrics::histogram!("order_value", "currency" => currency)
        .record(order.totals.total.minor() as f64 / scale);
}

/// `order_status_transitions_total{from,to}` and `orders_cancelled_total`.
fn record_transition(before: OrderStatus, after: &Order) {
    if before == after.status {
        return;
    }
    metrics::counter!(
        "order_status_transitions_total",
        "from" => before.as_str(),
        "to" => after.status.as_str()
    )
    .increment(1);
    if after.status == OrderStatus::Cancelled {
        metrics::counter!("orders_cancelled_total").increment(1);
    }
}

/// The current time at the database's precision (microseconds), so an order
/// answered now and the same order read back later are identical.
fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

/// Numbers new events after `version`, all stamped `now`.
fn record(
    id: OrderId,
    version: u32,
    now: OffsetDateTime,
    events: Vec<OrderEvent>,
) -> Vec<Recorded> {
    (version + 1..)
        .zip(events)
        .map(|(sequence, event)| Recorded {
            order_id: id,
            sequence,
            occurred_at: now,
            event,
        })
        .collect()
}

/// Applies new events to `before` (`None` for a new order), returning the
/// resulting order and the public state after each event (the data each will
/// be published with).
fn evolve(
    before: Option<Order>,
    recorded: &[Recorded],
) -> anyhow::Result<(Order, Vec<serde_json::Value>)> {
    let mut state = before;
    let mut snapshots = Vec::with_capacity(recorded.len());
    for event in recorded {
        let order = match state.as_mut() {
            Some(order) => {
                order.apply(event)?;
                order
            }
            None => state.insert(Order::created(event)?),
        };
        snapshots.push(serde_json::to_value(view::order_data(order))?);
    }
    let order = state.ok_or_else(|| anyhow::anyhow!("no events to apply"))?;
    Ok((order, snapshots))
}

fn new_events(recorded: &[Recorded], snapshots: Vec<serde_json::Value>) -> Vec<NewEvent<'_>> {
    recorded
        .iter()
        .zip(snapshots)
        .map(|(recorded, snapshot)| NewEvent {
            id: Uuid::now_v7(),
            recorded,
            snapshot,
        })
        .collect()
}
