//! Consumes `order.cancelled`: refunds the order's payment.

use std::sync::Arc;

use contracts::{cloud, order::OrderData};
use futures_util::future::BoxFuture;
use platform::consumer::{Handler, Incoming, Outcome};

use crate::service::Payments;

pub struct OrderCancelled {
    pub payments: Arc<Payments>,
}

impl Handler for OrderCancelled {
    fn handle<'a>(&'a self, message: &'a Incoming) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let (meta, order) = match cloud::parse::<OrderData>(&message.body) {
                Ok(parsed) => parsed,
                Err(error) => return Outcome::DeadLetter(format!("not an order event: {error}")),
            };
            // The queue is bound to `order.cancelled` only; anything else
            // here was misrouted or forged.
            if let Err(reason) = platform::consumer::admit(
                &meta,
                message,
                contracts::order::SOURCE,
                &[contracts::order::OrderEventType::Cancelled.as_str()],
                &order.id.to_string(),
            ) {
                return Outcome::DeadLetter(reason);
            }
            match self
                .payments
                .refund_order(
                    order.id,
                    Some((meta.id, &meta.event_type)),
                    platform::telemetry::traceparent(&tracing::Span::current())
                        .as_deref()
                        .or(meta.traceparent.as_deref()),
                )
                .await
            {
                Ok(_) => Outcome::Done,
                Err(error) => Outcome::Retry(error.into()),
            }
        })
    }
}
