//! Money is part of the shared contract; see `contracts::money`.

pub use contracts::money::*;
