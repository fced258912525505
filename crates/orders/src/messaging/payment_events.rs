//! Consumes `payment.*`: a success pays the order (if amount and currency
//! match its total), a failure is recorded and leaves it payable, a refund is
//! recorded in its history. Each event is recorded in the inbox in the
//! transaction of its effect, so a redelivery has no second effect; decisions
//! rest on the order's current state, so events arriving out of order are
//! handled correctly (a late failure never undoes a success).

use std::sync::Arc;

use contracts::{
    cloud,
    money::{Currency, Money},
    payment::{PaymentData, PaymentEventType},
};
use futures_util::future::BoxFuture;
use platform::consumer::{Handler, Incoming, Outcome};

use crate::domain::{OrderCommand, OrderId};
use crate::service::{OrderError, Orders};

pub struct PaymentEvents {
    pub orders: Arc<Orders>,
}

impl Handler for PaymentEvents {
    fn handle<'a>(&'a self, message: &'a Incoming) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let (meta, payment) = match cloud::parse::<PaymentData>(&message.body) {
                Ok(parsed) => parsed,
                Err(error) => return Outcome::DeadLetter(format!("not a payment event: {error}")),
            };
            let expected: Vec<&str> = PaymentEventType::ALL.iter().map(|t| t.as_str()).collect();
            if let Err(reason) = platform::consumer::admit(
                &meta,
                message,
                contracts::payment::SOURCE,
                &expected,
                &payment.order_id.to_string(),
            ) {
                return Outcome::DeadLetter(reason);
            }
            let Some(event_type) = PaymentEventType::parse(&meta.event_type) else {
                return Outcome::DeadLetter(format!("unknown event type {}", meta.event_type));
            };
            let amount = match Currency::parse(&payment.currency)
                .and_then(|currency| Money::parse(&payment.amount, currency))
            {
                Ok(amount) => amount,
                Err(error) => return Outcome::DeadLetter(format!("invalid amount: {error}")),
            };
            let command = match event_type {
                PaymentEventType::Successful => OrderCommand::ConfirmPayment {
                    payment_id: payment.id,
                    amount,
                },
                PaymentEventType::Authorized => OrderCommand::ConfirmAuthorization {
                    payment_id: payment.id,
                    amount,
                },
                PaymentEventType::Captured => {
                    match payment
                        .captured_amount
                        .as_deref()
                        .map(|captured| Money::parse(captured, amount.currency()))
                    {
                        Some(Ok(captured)) => OrderCommand::RecordCapture {
                            payment_id: payment.id,
                            amount: captured,
                        },
                        _ => {
                            return Outcome::DeadLetter(
                                "payment.captured without a valid captured_amount".to_owned(),
                            );
                        }
                    }
                }
                PaymentEventType::Voided => OrderCommand::RecordVoid {
                    payment_id: payment.id,
                    reason: payment.failure_reason.clone(),
                },
                PaymentEventType::Failed => OrderCommand::RecordPaymentFailure {
                    payment_id: Some(payment.id),
                    reason: payment
                        .failure_reason
                        .unwrap_or_else(|| "unknown".to_owned()),
                },
                PaymentEventType::Refunded => match &payment.refund {
                    Some(refund) => match Money::parse(&refund.amount, amount.currency()) {
                        Ok(refunded) if refund.payment_id == payment.id => {
                            OrderCommand::RecordRefund {
                                payment_id: payment.id,
                                refund_id: Some(refund.id),
                                amount: refunded,
                            }
                        }
                        Ok(_) => {
                            return Outcome::DeadLetter("a refund of another payment".to_owned());
                        }
                        Err(error) => {
                            return Outcome::DeadLetter(format!("invalid refund amount: {error}"));
                        }
                    },
                    // Written before refunds had ids: the payment in full.
                    None => OrderCommand::RecordRefund {
                        payment_id: payment.id,
                        refund_id: None,
                        amount,
                    },
                },
            };
            // The events this causes continue the trace of this message's span.
            let current = platform::telemetry::traceparent(&tracing::Span::current());
            let traceparent = current
                .as_deref()
                .or(meta.traceparent.as_deref())
                .or(message.traceparent.as_deref());
            match self
                .orders
                .apply_payment_event(
                    OrderId(payment.order_id),
                    command,
                    (meta.id, &meta.event_type),
                    traceparent,
                )
                .await
            {
                Ok(consumed) => {
                    tracing::info!(
                        order.id = %payment.order_id,
                        payment.id = %payment.id,
                        event.id = %meta.id,
                        event.r#type = %meta.event_type,
                        outcome = ?consumed,
                        "payment event consumed"
                    );
                    Outcome::Done
                }
                Err(OrderError::NotFound) => {
                    Outcome::DeadLetter(format!("order {} does not exist", payment.order_id))
                }
                Err(error) => Outcome::Retry(error.into()),
            }
        })
    }
}
