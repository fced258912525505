//! Integration tests of the payments API: the real service on a random port,
//! its own database, its own exchange and queue names, and a double of the
//! orders service answering the order look-ups.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod capture;
mod charges;
mod helpers;
mod hostile;
mod keys;
mod reconcile;
mod refunds;
