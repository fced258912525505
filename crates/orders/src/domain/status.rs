//! Where an order stands: its lifecycle and its payment.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Paid,
    Shipped,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Pending,
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Paid => "paid",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
    }

    /// The edges of the lifecycle: `pending → paid → shipped → delivered`, and
    /// `cancelled` from `pending`, `paid` or `shipped`.
    pub fn can_become(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Pending, Paid)
                | (Paid, Shipped)
                | (Shipped, Delivered)
                | (Pending | Paid | Shipped, Cancelled)
        )
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// No payment attempt has completed yet.
    Pending,
    /// The last attempt failed; the order is still payable.
    Failed,
    Paid,
    /// Manual capture: the total is held on the card; taken at shipment.
    Authorized,
    /// Manual capture: the hold was released unused.
    Voided,
    /// Part of what was paid was given back.
    PartiallyRefunded,
    /// Everything paid was given back (a cancellation, a refund in full).
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Paid => "paid",
            PaymentStatus::Authorized => "authorized",
            PaymentStatus::Voided => "voided",
            PaymentStatus::PartiallyRefunded => "partially_refunded",
            PaymentStatus::Refunded => "refunded",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            PaymentStatus::Pending,
            PaymentStatus::Failed,
            PaymentStatus::Paid,
            PaymentStatus::Authorized,
            PaymentStatus::Voided,
            PaymentStatus::PartiallyRefunded,
            PaymentStatus::Refunded,
        ]
        .into_iter()
        .find(|status| status.as_str() == value)
    }
}
