//! Layered configuration: built-in defaults → an optional YAML file →
//! environment variables (12-factor).
//!
//! Every service embeds its defaults (`config/default.yaml` in its crate), so the
//! binary runs without any file. A file given by `--config` or `<PREFIX>CONFIG`
//! overrides them, and `<PREFIX><SECTION>__<KEY>` environment variables override
//! both: `ORDERS_DATABASE__URL`, `ORDERS_HTTP__PORT`.

use std::path::Path;

use figment::{
    Figment,
    providers::{Env, Format, Yaml},
};
use serde::de::DeserializeOwned;

/// Only the built-in defaults: what tests start from, so that nothing in the
/// environment of whoever runs them changes what they test.
pub fn defaults<T: DeserializeOwned>(defaults: &str) -> Result<T, figment::Error> {
    Figment::from(Yaml::string(defaults)).extract()
}

/// Loads `T` from `defaults` (YAML text), then `file`, then the environment
/// variables starting with `env_prefix` (e.g. `"ORDERS_"`).
pub fn load<T: DeserializeOwned>(
    defaults: &str,
    file: Option<&Path>,
    env_prefix: &str,
) -> Result<T, figment::Error> {
    let mut figment = Figment::from(Yaml::string(defaults));
    if let Some(file) = file {
        figment = figment.merge(Yaml::file_exact(file));
    }
    figment
        .merge(Env::prefixed(env_prefix).split("__").ignore(&["CONFIG"]))
        .extract()
}
