//! Placing an order (`order.created`), once per Idempotency-Key.

use platform::clock::now;
use platform::db;
use platform::idempotency::IdempotencyKey;
use uuid::Uuid;

use super::commit::{evolve, new_events, record};
use super::{Actor, OrderError, Orders, jobs, metrics, stock};
use crate::domain::pricing::Pricing;
use crate::domain::{
    CouponRefusal, Currency, LineItem, Order, OrderDetails, OrderId, PlaceOrder, RuleViolation,
    Totals, UserId, Violation,
};
use crate::store::{self, Also, Cause, StoreError, StoredResponse, coupons::CouponUse};
use crate::users::UserCheck;
use crate::view;

/// A validated request to place an order, before ids are assigned.
#[derive(Debug, Clone)]
pub struct OrderDraft {
    /// Whose order it is (the caller, unless an admin places it for someone).
    pub user_id: UserId,
    /// None: the catalogue's prices say, else the configured default. The
    /// items' provisional prices are in this currency or the default.
    pub currency: Option<Currency>,
    pub items: Vec<LineItem>,
    /// Addresses, shipping method, notes, how the customer pays.
    pub details: OrderDetails,
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

/// A created order as its answer: for a new order, the body stored under
/// the key; for the same request again, the first answer byte for byte.
#[derive(Debug)]
pub struct Placed {
    pub body: Vec<u8>,
    pub replayed: bool,
    /// The order's id and version, when known without reading the body (a
    /// fresh answer); a replay reads them from the stored body.
    pub order: Option<(OrderId, u32)>,
}

impl Orders {
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
        if !actor.acts_for(draft.user_id.as_str()) {
            return Err(OrderError::Forbidden(
                "only an admin may place an order for another user".into(),
            ));
        }
        if draft.details.shipping_address.is_none()
            && self
                .pricing
                .needs_address(draft.details.shipping_method.as_deref())
        {
            return Err(OrderError::Invalid(vec![Violation::new(
                "shipping_address",
                format!(
                    "is required for shipping method `{}`",
                    draft.details.shipping_method.as_deref().unwrap_or_default()
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
        mut draft: OrderDraft,
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
        if let Some(catalog) = &self.catalog {
            let (currency, items) = stock::snapshot(catalog, draft.currency, draft.items).await?;
            draft.currency = currency;
            draft.items = items;
            stock::reserve(catalog, id, &draft.items).await?;
        }
        let placed = self.write_new(actor, id, draft, key).await;
        if placed.is_err() && self.catalog.is_some() {
            // Saga compensation: the order was not placed; release what was
            // reserved for it.
            self.release_now_or_later(id).await;
        }
        placed
    }

    /// Decides `order.created` and writes the order, its first charge, its
    /// coupon use and the answer under the key, in one transaction.
    async fn write_new(
        &self,
        actor: &Actor,
        id: OrderId,
        draft: OrderDraft,
        key: Option<&IdempotencyKey>,
    ) -> Result<Placed, OrderError> {
        let currency = draft
            .currency
            .unwrap_or_else(|| self.pricing.default_currency());
        let shipping_method = draft
            .details
            .shipping_method
            .as_deref()
            .map(Pricing::method_name);
        let mut charges = self
            .pricing
            .charges(shipping_method.as_deref(), currency)
            .map_err(|message| {
                OrderError::Invalid(vec![Violation::new("shipping_method", message)])
            })?;
        let redemption = match &draft.coupon_code {
            None => None,
            Some(code) => {
                let subtotal = Totals::compute(currency, &draft.items, &charges)
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
            details: OrderDetails {
                shipping_method,
                payment_method: draft
                    .details
                    .payment_method
                    .or_else(|| draft.payment.as_ref().map(|p| p.method.clone())),
                ..draft.details
            },
            charges,
        })
        .map_err(OrderError::Rule)?;
        let recorded = record(id, 0, events);
        let (order, snapshots) = evolve(None, &recorded)?;
        let new_events = new_events(&recorded, snapshots);
        let charge = draft.payment.map(|payment| {
            jobs::pay(jobs::PayJob {
                order_id: id.0,
                attempt: 1,
                user_id: order.user_id.to_string(),
                amount_minor: order.totals.total.minor(),
                currency: order.currency.code().to_owned(),
                method: payment.method,
                token: payment.token,
                traceparent: actor.traceparent.clone(),
            })
        });
        // The owner's data key seals the order's personal fields (created
        // with their first order).
        let data_key = self
            .sealing_key(&mut conn, order.user_id.as_str(), None, &new_events)
            .await?;
        let sealer = store::Sealer {
            ring: &self.privacy,
            key: data_key.as_ref(),
        };
        let body = serde_json::to_vec(&view::order_data(&order)).map_err(anyhow::Error::from)?;
        let stored = match (key, new_events.last()) {
            (Some(key), Some(last)) => store::sealed::seal_answer(
                sealer,
                order.user_id.as_str(),
                &actor.user_id,
                &key.key,
                &body,
                &last.snapshot.0,
            )?,
            _ => Vec::new(),
        };
        let mut also: Vec<Also<'_>> = charge.iter().map(Also::Job).collect();
        if let Some(key) = key {
            also.push(Also::Answer(StoredResponse {
                owner: &actor.user_id,
                key: &key.key,
                body: &stored,
            }));
        }
        if let Some(redemption) = &redemption {
            also.push(Also::CouponUse(CouponUse {
                code: &redemption.coupon.code,
                user_id: order.user_id.as_str(),
                limit: redemption.per_user_limit,
            }));
        }
        let cause = Cause {
            actor: &actor.user_id,
            traceparent: actor.traceparent.as_deref(),
        };
        match store::events::append(&mut conn, &order, &new_events, cause, &also, None, sealer)
            .await
        {
            Ok(()) => self.outbox.written(),
            Err(StoreError::CouponLimit) => {
                let code = redemption.map(|r| r.coupon.code).unwrap_or_default();
                return Err(OrderError::InvalidCoupon(CouponRefusal::LimitReached(code)));
            }
            Err(other) => return Err(other.into()),
        }
        if charge.is_some() {
            self.jobs.notify_one();
        }
        metrics::record_created(&order);
        Ok(Placed {
            body,
            replayed: false,
            order: Some((order.id, order.version)),
        })
    }
}
