//! Order numbers without a round trip per order.
//!
//! A database sequence hands out *blocks* of [`BLOCK`] numbers (hi/lo): each
//! service instance takes a block and numbers its next orders from it locally.
//! Blocks never overlap, so numbers are unique across instances; a restart
//! leaves the rest of a block unused, which is harmless.

use platform::db::Prepared;
use std::sync::Mutex;

use anyhow::Context;
use diesel::{QueryableByName, sql_types::BigInt};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::domain::OrderNumber;

const BLOCK: u64 = 64;

#[derive(Debug, Default)]
pub struct OrderNumbers {
    /// The next value and the end (exclusive) of the current block.
    block: Mutex<(u64, u64)>,
}

#[derive(QueryableByName)]
struct Block {
    #[diesel(sql_type = BigInt)]
    block: i64,
}

impl OrderNumbers {
    pub async fn next(&self, conn: &mut AsyncPgConnection) -> anyhow::Result<OrderNumber> {
        loop {
            if let Some(value) = self.take() {
                return OrderNumber::from_sequence(value).context("order numbers are exhausted");
            }
            let Block { block } = Prepared(diesel::sql_query(
                "SELECT nextval('orders.order_number_blocks') AS block",
            ))
            .get_result::<Block>(conn)
            .await
            .context("reserving a block of order numbers")?;
            let start = u64::try_from(block - 1).context("negative block")? * BLOCK;
            self.refill(start);
        }
    }

    fn take(&self) -> Option<u64> {
        let mut block = self
            .block
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (next, end) = *block;
        (next < end).then(|| {
            block.0 += 1;
            next
        })
    }

    /// Installs a fresh block unless another task already did.
    fn refill(&self, start: u64) {
        let mut block = self
            .block
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if block.0 >= block.1 {
            *block = (start, start + BLOCK);
        }
    }
}
