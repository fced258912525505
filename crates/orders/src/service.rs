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

use crate::catalog::{Catalog, Reservation, Shortage};
use crate::domain::Money;
use crate::domain::pricing::Pricing;
use crate::users::{UserCheck, UserDirectory};
use diesel_async::AsyncConnection;
use uuid::Uuid;

use crate::domain::{
    Address, Currency, LineItem, Order, OrderCommand, OrderEvent, OrderId, OrderNumber,
    OrderStatus, PlaceOrder, Recorded, RuleViolation, UserId, Violation,
};
use crate::store::{
    self, HistoryEntry, ListFilter, NewEvent, OrderNumbers, PaymentRequest, StoreError,
    StoredResponse, WriteContext,
};
use crate::view;

/// How often a write that lost a race is retried before answering 409.
const MAX_ATTEMPTS: usize = 5;

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
    pub currency: Currency,
    pub items: Vec<LineItem>,
    pub shipping_address: Address,
    pub billing_address: Address,
    pub shipping_method: Option<String>,
    pub notes: Option<String>,
    /// Charge the order at once with this method.
    pub payment: Option<PaymentMethod>,
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
    #[error("this Idempotency-Key was used with a different request body")]
    KeyMismatch,
    #[error("the Idempotency-Key is taken")]
    KeyTaken,
    #[error("user {0} does not exist")]
    UserNotFound(String),
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
            StoreError::KeyTaken => OrderError::KeyTaken,
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

/// The orders use cases, shared by all HTTP workers.
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

pub struct Orders {
    pool: PgPool,
    numbers: OrderNumbers,
    /// How long an Idempotency-Key is remembered.
    key_ttl: time::Duration,
    /// Validates users before their orders are placed, when configured.
    users: Option<UserDirectory>,
    /// Tax and shipping rates.
    pricing: Pricing,
    /// Prices and stock, when configured.
    catalog: Option<Catalog>,
    /// Wakes the payment dispatcher when a payment request is written.
    dispatcher: Arc<Notify>,
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
        dispatcher: Arc<Notify>,
        key_ttl: time::Duration,
        users: Option<UserDirectory>,
        pricing: Pricing,
        catalog: Option<Catalog>,
    ) -> Self {
        Self {
            pool,
            numbers: OrderNumbers::default(),
            key_ttl,
            users,
            pricing,
            catalog,
            dispatcher,
        }
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
                let context = self.releasing_stock(actor.context(), id, &events);
                match commit(&mut conn, order, events, context, None).await {
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

    /// A cancellation releases the order's stock (in its own transaction).
    fn releasing_stock<'a>(
        &self,
        context: WriteContext<'a>,
        id: OrderId,
        events: &[OrderEvent],
    ) -> WriteContext<'a> {
        let cancels = events
            .iter()
            .any(|event| matches!(event, OrderEvent::Cancelled(_)));
        WriteContext {
            stock_release: (self.catalog.is_some() && cancels).then_some(id.0),
            ..context
        }
    }

    /// Releases a reservation at once, or records it for the release worker.
    async fn release_now_or_later(&self, id: OrderId) {
        let Some(catalog) = &self.catalog else {
            return;
        };
        if catalog.release(id.0).await.is_ok() {
            return;
        }
        let recorded = async {
            let mut conn = db::connection(&self.pool).await?;
            store::request_release(&mut conn, id.0, now()).await?;
            Ok::<_, OrderError>(())
        }
        .await;
        if let Err(error) = recorded {
            tracing::error!(order.id = %id, error.message = %error, "could not release or record a stock reservation");
        }
    }

    /// Releases due reservations at the catalogue, retrying failures with
    /// back-off; returns how many were handled.
    pub async fn release_due_stock(&self) -> Result<usize, OrderError> {
        let Some(catalog) = &self.catalog else {
            return Ok(0);
        };
        let mut conn = db::connection(&self.pool).await?;
        let handled = conn
            .transaction(async |conn| -> Result<usize, StoreError> {
                let due = store::lock_due_releases(conn, now(), 32).await?;
                let outcomes = futures_util::future::join_all(
                    due.iter().map(|r| catalog.release(r.reservation_id)),
                )
                .await;
                let settled: Vec<store::StockRelease> = due
                    .into_iter()
                    .zip(outcomes)
                    .map(|(mut release, outcome)| {
                        release.tries += 1;
                        release.updated_at = now();
                        match outcome {
                            Ok(()) => {
                                release.state = "done".to_owned();
                                release.last_error = None;
                            }
                            Err(error) => {
                                let exponent =
                                    u32::try_from(release.tries.clamp(1, 10) - 1).unwrap_or(0);
                                release.next_attempt_at = release.updated_at
                                    + time::Duration::milliseconds(
                                        200 * i64::from(1_u32 << exponent),
                                    );
                                release.last_error = Some(error.to_string());
                            }
                        }
                        release
                    })
                    .collect();
                store::update_releases(conn, &settled).await?;
                Ok(settled.len())
            })
            .await?;
        Ok(handled)
    }

    /// Forgets expired Idempotency-Keys; returns how many.
    pub async fn sweep_keys(&self) -> Result<usize, OrderError> {
        let mut conn = db::connection(&self.pool).await?;
        Ok(store::sweep_keys(&mut conn, now() - self.key_ttl).await?)
    }

    /// What a taken key answers: the stored response, or a mismatch. `None`
    /// when the key expired (it is forgotten, and the request runs afresh).
    async fn replay(
        &self,
        actor: &Actor,
        key: &IdempotencyKey,
    ) -> Result<Option<Placed>, OrderError> {
        let mut conn = db::connection(&self.pool).await?;
        let Some(record) = store::find_key(&mut conn, &actor.user_id, &key.key).await? else {
            return Ok(None);
        };
        if record.created_at < now() - self.key_ttl {
            store::delete_key(&mut conn, &actor.user_id, &key.key).await?;
            return Ok(None);
        }
        if record.request_hash != key.request_hash {
            return Err(OrderError::KeyMismatch);
        }
        Ok(Some(Placed {
            status: u16::try_from(record.response_status).unwrap_or(201),
            body: record.response_body,
            replayed: true,
            order: None,
        }))
    }

    /// Places an order (`order.created`), once per Idempotency-Key: a request
    /// repeating a key replays the first answer. Two requests racing with the
    /// same key serialize on the key's row: the second waits, then replays.
    pub async fn place(
        &self,
        actor: &Actor,
        draft: OrderDraft,
        key: Option<IdempotencyKey>,
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
            draft.items = snapshot(catalog, draft.currency, draft.items).await?;
            reserve(catalog, id, &draft.items).await?;
        }
        let placed = self.place_with_key(actor, id, draft, key).await;
        if self.catalog.is_some()
            && !matches!(
                &placed,
                Ok(Placed {
                    replayed: false,
                    ..
                })
            )
        {
            // Saga compensation: the order was not placed (or an earlier
            // request with the same key was): release what was reserved.
            self.release_now_or_later(id).await;
        }
        placed
    }

    async fn place_with_key(
        &self,
        actor: &Actor,
        id: OrderId,
        draft: OrderDraft,
        key: Option<IdempotencyKey>,
    ) -> Result<Placed, OrderError> {
        for _ in 0..2 {
            match self
                .place_once(actor, id, draft.clone(), key.as_ref())
                .await
            {
                Err(OrderError::KeyTaken) => {
                    let Some(key) = &key else {
                        return Err(OrderError::Conflict);
                    };
                    if let Some(replayed) = self.replay(actor, key).await? {
                        return Ok(replayed);
                    }
                }
                other => return other,
            }
        }
        Err(OrderError::Conflict)
    }

    async fn place_once(
        &self,
        actor: &Actor,
        id: OrderId,
        draft: OrderDraft,
        key: Option<&IdempotencyKey>,
    ) -> Result<Placed, OrderError> {
        if draft.user_id.as_str() != actor.user_id && !actor.admin {
            return Err(OrderError::Forbidden(
                "only an admin may place an order for another user".into(),
            ));
        }
        let charges = self
            .pricing
            .charges(draft.shipping_method.as_deref(), draft.currency)
            .map_err(|message| {
                OrderError::Invalid(vec![Violation::new("shipping_method", message)])
            })?;
        let mut conn = db::connection(&self.pool).await?;
        let number = self.numbers.next(&mut conn).await?;
        let events = Order::place(PlaceOrder {
            id,
            number,
            user_id: draft.user_id,
            currency: draft.currency,
            items: draft.items,
            shipping_address: draft.shipping_address,
            billing_address: draft.billing_address,
            shipping_method: draft.shipping_method,
            notes: draft.notes,
            payment_method: draft.payment.as_ref().map(|p| p.method.clone()),
            charges,
        })
        .map_err(OrderError::Rule)?;
        let recorded = record(id, 0, now(), events);
        let (order, snapshots) = evolve(None, &recorded)?;
        let new_events = new_events(&recorded, snapshots);
        let payment_request = draft.payment.map(|payment| PaymentRequest {
            order_id: id.0,
            attempt: 1,
            user_id: order.user_id.to_string(),
            amount_minor: order.totals.total.minor(),
            currency: order.currency.code().to_owned(),
            method: payment.method,
            token: Some(payment.token),
            state: "pending".to_owned(),
            tries: 0,
            next_attempt_at: order.created_at,
            last_error: None,
            traceparent: actor.traceparent.clone(),
            created_at: order.created_at,
            updated_at: order.created_at,
        });
        let body = serde_json::to_vec(&view::order_data(&order)).map_err(anyhow::Error::from)?;
        let context = WriteContext {
            payment_request: payment_request.as_ref(),
            idempotency: key.map(|key| StoredResponse {
                owner: &actor.user_id,
                key: &key.key,
                request_hash: &key.request_hash,
                status: 201,
                body: &body,
                at: order.created_at,
            }),
            ..actor.context()
        };
        store::save(&mut conn, &order, &new_events, context, None).await?;
        if payment_request.is_some() {
            self.dispatcher.notify_one();
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
            match commit(&mut conn, order, events, context, None).await {
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
            match commit(&mut conn, order, events, actor.context(), None).await {
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
        expected_version: Option<u32>,
    ) -> Result<Order, OrderError> {
        let target = OrderStatus::parse(status)
            .ok_or_else(|| OrderError::UnknownStatus(status.to_owned()))?;
        self.execute(actor, id, expected_version, None, |order| {
            let command = OrderCommand::to_reach(target, reason.clone()).ok_or(
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
            && let Some(replayed) = self.replay(actor, key).await?
        {
            return Ok(ItemsChanged::Replayed(replayed));
        }
        match self
            .edit_items(actor, id, expected_version, key.as_ref(), decide)
            .await
        {
            Err(OrderError::KeyTaken) => match &key {
                Some(key) => self
                    .replay(actor, key)
                    .await?
                    .map(ItemsChanged::Replayed)
                    .ok_or(OrderError::Conflict),
                None => Err(OrderError::Conflict),
            },
            other => other.map(|order| ItemsChanged::Changed(Box::new(order))),
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
            let priced = snapshot(catalog, current.currency, vec![item.clone()]).await?;
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
            let context = self.releasing_stock(actor.context(), id, &events);
            let respond_under = key.map(|key| (actor.user_id.as_str(), key));
            match commit(&mut conn, order, events, context, respond_under).await {
                Ok(next) => return Ok(next),
                Err(StoreError::KeyTaken) => return Err(OrderError::KeyTaken),
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
    ) -> Result<Vec<HistoryEntry>, OrderError> {
        // Ownership is checked on the projection (cheap); the trail itself is
        // read from the event store.
        self.find(actor, &id.to_string()).await?;
        let mut conn = db::connection(&self.pool).await?;
        Ok(store::history_entries(&mut conn, id).await?)
    }
}

/// Replaces each line's price, name and SKU with the catalogue's (client
/// values are never trusted when a catalogue is configured).
async fn snapshot(
    catalog: &Catalog,
    currency: Currency,
    items: Vec<LineItem>,
) -> Result<Vec<LineItem>, OrderError> {
    let products = futures_util::future::join_all(
        items
            .iter()
            .map(|item| catalog.product(item.product_id.as_str())),
    )
    .await;
    let mut unknown = Vec::new();
    let mut violations = Vec::new();
    let mut priced = Vec::with_capacity(items.len());
    for (index, (mut item, product)) in items.into_iter().zip(products).enumerate() {
        match product.map_err(|error| OrderError::CatalogUnavailable(error.to_string()))? {
            None => unknown.push((
                format!("items[{index}].product_id"),
                item.product_id.to_string(),
            )),
            Some(product) => {
                let price = Currency::parse(&product.currency)
                    .and_then(|product_currency| Money::parse(&product.price, product_currency));
                match price {
                    Ok(price) if price.currency() == currency => {
                        item.unit_price = price;
                        item.name = Some(product.name);
                        item.sku = product.sku;
                    }
                    Ok(price) => violations.push(Violation::new(
                        format!("items[{index}].product_id"),
                        format!(
                            "is sold in {}, the order is in {currency}",
                            price.currency()
                        ),
                    )),
                    Err(error) => {
                        return Err(OrderError::CatalogUnavailable(format!(
                            "unreadable price of {}: {error}",
                            product.id
                        )));
                    }
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
    Ok(priced)
}

/// Reserves every line's quantity for the order, all or nothing.
async fn reserve(catalog: &Catalog, id: OrderId, items: &[LineItem]) -> Result<(), OrderError> {
    let lines: Vec<(String, u32)> = items
        .iter()
        .map(|item| (item.product_id.to_string(), item.quantity.get()))
        .collect();
    match catalog.reserve(id.0, &lines).await {
        Ok(Reservation::Reserved) => Ok(()),
        Ok(Reservation::Insufficient(shortages)) => Err(OrderError::InsufficientStock(shortages)),
        Err(error) => Err(OrderError::CatalogUnavailable(error.to_string())),
    }
}

/// Appends `events`, decided on `order`, and returns the order after them.
/// A lost race is [`StoreError::Conflict`]: decide again on fresh state.
/// With `respond_under`, the answer (`201` with the order) is stored under
/// that owner's Idempotency-Key in the same transaction.
async fn commit(
    conn: &mut diesel_async::AsyncPgConnection,
    order: Order,
    events: Vec<OrderEvent>,
    context: WriteContext<'_>,
    respond_under: Option<(&str, &IdempotencyKey)>,
) -> Result<Order, StoreError> {
    let (before, version, id) = (order.status, order.version, order.id);
    let recorded = record(id, version, now(), events);
    let (next, snapshots) = evolve(Some(order), &recorded)?;
    let new_events = new_events(&recorded, snapshots);
    let body = match respond_under {
        Some(_) => serde_json::to_vec(&view::order_data(&next)).map_err(anyhow::Error::from)?,
        None => Vec::new(),
    };
    let context = WriteContext {
        idempotency: respond_under.map(|(owner, key)| StoredResponse {
            owner,
            key: &key.key,
            request_hash: &key.request_hash,
            status: 201,
            body: &body,
            at: next.updated_at,
        }),
        ..context
    };
    store::save(conn, &next, &new_events, context, Some(version)).await?;
    record_transition(before, &next);
    Ok(next)
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
