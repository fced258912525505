//! `orders.coupon_uses`: how many of a coupon's uses a user holds.

use diesel::sql_types::{Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use platform::db::Prepared;

/// One use of a coupon by a user, taken when an order is placed with it.
#[derive(Debug, Clone, Copy)]
pub struct CouponUse<'a> {
    pub code: &'a str,
    pub user_id: &'a str,
    /// Uses one user may hold at once; None: unlimited (still counted).
    pub limit: Option<u32>,
}

/// Takes one use (part of the order's write); 0 rows when the user already
/// holds as many as the limit allows.
pub(super) async fn take(
    conn: &AsyncPgConnection,
    taken: &CouponUse<'_>,
) -> diesel::QueryResult<usize> {
    Prepared(
        diesel::sql_query(
            "INSERT INTO orders.coupon_uses AS u (code, user_id, uses) VALUES ($1, $2, 1) \
         ON CONFLICT (code, user_id) DO UPDATE SET uses = u.uses + 1 WHERE u.uses < $3",
        )
        .bind::<Text, _>(taken.code)
        .bind::<Text, _>(taken.user_id)
        .bind::<Integer, _>(
            taken
                .limit
                .map_or(i32::MAX, |limit| i32::try_from(limit).unwrap_or(i32::MAX)),
        ),
    )
    .execute(&mut &*conn)
    .await
}

/// Gives one use back (a cancelled order's).
pub(super) async fn give_back(
    conn: &AsyncPgConnection,
    code: &str,
    user_id: &str,
) -> diesel::QueryResult<usize> {
    Prepared(
        diesel::sql_query(
            "UPDATE orders.coupon_uses SET uses = uses - 1 \
         WHERE code = $1 AND user_id = $2 AND uses > 0",
        )
        .bind::<Text, _>(code)
        .bind::<Text, _>(user_id),
    )
    .execute(&mut &*conn)
    .await
}
