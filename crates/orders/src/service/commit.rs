//! The one way a change of an existing order is written: load, decide,
//! commit; a lost race is decided again on the fresh state.

use diesel_async::AsyncPgConnection;
use platform::clock::now;
use platform::idempotency::IdempotencyKey;
use platform::jobs::NewJob;
use platform::privacy::DataKey;
use uuid::Uuid;

use super::{Actor, OrderError, Orders, jobs, metrics};
use crate::domain::{Order, OrderCommand, OrderEvent, OrderId, Recorded};
use crate::store::{self, Also, Cause, NewEvent, StoreError, StoredResponse};
use crate::view;

/// How often a write that lost a race is decided again before answering 409.
const MAX_ATTEMPTS: usize = 5;

/// What deciding on the current state came to.
#[derive(Debug)]
pub(super) enum Decided {
    /// Events were appended: the order after them.
    Changed(Order),
    /// Nothing to do: the order as it stands.
    Unchanged(Order),
    /// The consumed event that asked for it had been consumed before.
    AlreadyConsumed,
}

/// How a change is written besides its events.
#[derive(Debug, Clone, Copy)]
pub(super) struct Write<'a> {
    /// Who asks: only orders it may act for are found.
    pub actor: &'a Actor,
    /// The trace the change continues.
    pub traceparent: Option<&'a str>,
    /// Store the answer (the order) under the actor's claimed key.
    pub answer_under: Option<&'a IdempotencyKey>,
    /// The consumed event (id, type) that asked for it: its inbox entry.
    pub consumed: Option<(Uuid, &'a str)>,
}

impl<'a> Write<'a> {
    /// A change the actor asks for directly.
    pub fn by(actor: &'a Actor) -> Self {
        Self {
            actor,
            traceparent: actor.traceparent.as_deref(),
            answer_under: None,
            consumed: None,
        }
    }
}

impl Orders {
    /// Loads the order the actor may act for, lets `decide` choose the events
    /// (or refuse), and commits them with what they decide. A lost race is
    /// decided again on the fresh state, up to [`MAX_ATTEMPTS`] times.
    pub(super) async fn retry_on_conflict(
        &self,
        conn: &mut AsyncPgConnection,
        id: OrderId,
        write: Write<'_>,
        decide: impl Fn(&Order) -> Result<Vec<OrderEvent>, OrderError>,
    ) -> Result<Decided, OrderError> {
        for _ in 0..MAX_ATTEMPTS {
            let (order, key) = store::events::load_order(conn, &self.privacy, id)
                .await?
                .filter(|(order, _)| write.actor.acts_for(order.user_id.as_str()))
                .ok_or(OrderError::NotFound)?;
            let events = decide(&order)?;
            if events.is_empty() {
                return Ok(Decided::Unchanged(order));
            }
            match self.commit(conn, order, key, events, write).await {
                Ok(next) => return Ok(Decided::Changed(next)),
                Err(StoreError::Conflict) => continue,
                Err(StoreError::Duplicate) if write.consumed.is_some() => {
                    return Ok(Decided::AlreadyConsumed);
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(OrderError::Conflict)
    }

    /// Appends `events`, decided on `order`, with the work they decide, and
    /// returns the order after them. A lost race is [`StoreError::Conflict`].
    async fn commit(
        &self,
        conn: &mut AsyncPgConnection,
        order: Order,
        key: Option<DataKey>,
        events: Vec<OrderEvent>,
        write: Write<'_>,
    ) -> Result<Order, StoreError> {
        let (before, version, id) = (order.status, order.version, order.id);
        let follow_up = self.follow_up(&order, &events, write.traceparent);
        let recorded = record(id, version, events);
        let (next, snapshots) = evolve(Some(order), &recorded)?;
        let new_events = new_events(&recorded, snapshots);
        // An order placed before its owner had a key (or read without one)
        // gets one when it next has something personal to seal.
        let key = self
            .sealing_key(conn, next.user_id.as_str(), key, &new_events)
            .await?;
        let sealer = store::Sealer {
            ring: &self.privacy,
            key: key.as_ref(),
        };
        let body = match (write.answer_under, new_events.last()) {
            (Some(answer_under), Some(last)) => store::sealed::seal_answer(
                sealer,
                next.user_id.as_str(),
                &write.actor.user_id,
                &answer_under.key,
                &serde_json::to_vec(&view::order_data(&next)).map_err(anyhow::Error::from)?,
                &last.snapshot.0,
            )?,
            _ => Vec::new(),
        };
        let mut also: Vec<Also<'_>> = follow_up.iter().map(Also::Job).collect();
        if let Some(key) = write.answer_under {
            also.push(Also::Answer(StoredResponse {
                owner: &write.actor.user_id,
                key: &key.key,
                body: &body,
            }));
        }
        if let Some((event_id, event_type)) = write.consumed {
            also.push(Also::Consumed {
                event_id,
                event_type,
            });
        }
        let cause = Cause {
            actor: &write.actor.user_id,
            traceparent: write.traceparent,
        };
        store::events::append(
            conn,
            &next,
            &new_events,
            cause,
            &also,
            Some(version),
            sealer,
        )
        .await?;
        self.outbox.written();
        if !follow_up.is_empty() {
            self.jobs.notify_one();
        }
        metrics::record_transition(before, &next);
        Ok(next)
    }

    /// The work a change decides besides itself, enqueued in its
    /// transaction: a cancellation releases the order's stock; a rejected
    /// charge is refunded; a shipment of an authorized order captures it; a
    /// received return is refunded and its units go back to the catalogue.
    /// The data key to seal `new_events`' personal parts with: `loaded`
    /// (the owner's, read with the order), or the owner's fetched or made
    /// now when there is something personal to seal and none was loaded (a
    /// new order, or one placed before its owner had a key).
    pub(super) async fn sealing_key(
        &self,
        conn: &mut AsyncPgConnection,
        owner: &str,
        loaded: Option<DataKey>,
        new_events: &[NewEvent<'_>],
    ) -> Result<Option<DataKey>, StoreError> {
        match loaded {
            None if new_events.iter().any(|event| event.personal.is_some()) => Ok(Some(
                store::keys::data_key(conn, &self.privacy, owner).await?,
            )),
            loaded => Ok(loaded),
        }
    }

    fn follow_up(
        &self,
        order: &Order,
        events: &[OrderEvent],
        traceparent: Option<&str>,
    ) -> Vec<NewJob> {
        let id = order.id;
        let restocks = events.iter().filter_map(|event| match event {
            OrderEvent::ReturnReceived(received) if self.catalog.is_some() => {
                Some(jobs::restock(id, received.return_id))
            }
            _ => None,
        });
        events
            .iter()
            .filter_map(|event| match event {
                OrderEvent::Cancelled(_) if self.catalog.is_some() => {
                    Some(jobs::release_stock(id.0))
                }
                OrderEvent::PaymentRejected(rejected) => {
                    Some(jobs::refund(id, rejected, traceparent))
                }
                OrderEvent::CaptureRequested(requested) => {
                    Some(jobs::capture(id, requested, traceparent))
                }
                // A received return is refunded from the paying payment
                // (an order an admin marked paid has none: refunded by hand).
                OrderEvent::ReturnReceived(received) if received.refund.minor() > 0 => {
                    let payment_id = received.payment_id?;
                    let lines = &order
                        .returns
                        .iter()
                        .find(|r| r.id == received.return_id)?
                        .lines;
                    Some(jobs::refund_return(
                        id,
                        received,
                        payment_id,
                        lines,
                        traceparent,
                    ))
                }
                _ => None,
            })
            .chain(restocks)
            .collect()
    }
}

/// Checks `If-Match` against the order's version, then lets the aggregate
/// decide `command`.
pub(super) fn decide_at(
    order: &Order,
    expected_version: Option<u32>,
    command: OrderCommand,
) -> Result<Vec<OrderEvent>, OrderError> {
    if let Some(expected) = expected_version
        && expected != order.version
    {
        return Err(OrderError::VersionMismatch {
            expected,
            current: order.version,
        });
    }
    order.handle(command).map_err(OrderError::Rule)
}

/// The order a change left (changed, or as it stood when nothing changed).
pub(super) fn changed_order(decided: Decided) -> Result<Order, OrderError> {
    match decided {
        Decided::Changed(order) | Decided::Unchanged(order) => Ok(order),
        // A change asked for over HTTP consumes no event.
        Decided::AlreadyConsumed => Err(OrderError::Unexpected(anyhow::anyhow!(
            "a request's change reported a consumed event"
        ))),
    }
}

/// Numbers new events after `version`, all stamped now.
pub(super) fn record(id: OrderId, version: u32, events: Vec<OrderEvent>) -> Vec<Recorded> {
    let occurred_at = now();
    (version + 1..)
        .zip(events)
        .map(|(sequence, event)| Recorded {
            order_id: id,
            sequence,
            occurred_at,
            event,
        })
        .collect()
}

/// Applies new events to `before` (`None` for a new order), returning the
/// resulting order and the state after each event: its public part (the
/// data each will be published with) and its personal part (sealed).
pub(super) fn evolve(
    before: Option<Order>,
    recorded: &[Recorded],
) -> anyhow::Result<(Order, Vec<view::Parts>)> {
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
        snapshots.push(view::split(order)?);
    }
    let order = state.ok_or_else(|| anyhow::anyhow!("no events to apply"))?;
    Ok((order, snapshots))
}

pub(super) fn new_events(recorded: &[Recorded], snapshots: Vec<view::Parts>) -> Vec<NewEvent<'_>> {
    recorded
        .iter()
        .zip(snapshots)
        .map(|(recorded, (snapshot, personal))| NewEvent {
            id: Uuid::now_v7(),
            recorded,
            snapshot,
            personal,
        })
        .collect()
}
