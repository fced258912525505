//! What the clients of orders' dependencies (User Service, Catalog) share:
//! how they authenticate as a service.

use platform::auth;
use secrecy::{ExposeSecret, SecretString};

/// How orders authenticates to a dependency.
pub enum Credentials {
    /// A token from configuration (production: issued by the identity provider).
    Static(SecretString),
    /// Short-lived HS256 tokens minted with the development secret.
    Minted {
        secret: SecretString,
        issuer: String,
        audience: &'static str,
        scopes: &'static [&'static str],
    },
}

impl Credentials {
    pub fn new(
        token: Option<&SecretString>,
        secret: Option<&SecretString>,
        issuer: &str,
        audience: &'static str,
        scopes: &'static [&'static str],
    ) -> anyhow::Result<Credentials> {
        match (token, secret) {
            (Some(token), _) => Ok(Credentials::Static(token.clone())),
            (None, Some(secret)) => Ok(Credentials::Minted {
                secret: secret.clone(),
                issuer: issuer.to_owned(),
                audience,
                scopes,
            }),
            (None, None) => anyhow::bail!("configure a service token for {audience}"),
        }
    }

    pub fn token(&self) -> anyhow::Result<String> {
        match self {
            Credentials::Static(token) => Ok(token.expose_secret().to_owned()),
            Credentials::Minted {
                secret,
                issuer,
                audience,
                scopes,
            } => auth::mint_hs256(
                secret,
                issuer,
                &[(*audience).to_owned()],
                "svc-orders",
                scopes,
                300,
            ),
        }
    }
}

/// `base` + path segments, each percent-encoded.
pub fn url(base: &str, segments: &[&str]) -> anyhow::Result<reqwest::Url> {
    let mut url = reqwest::Url::parse(base)?;
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("{base} cannot have paths"))?
        .extend(segments);
    Ok(url)
}
