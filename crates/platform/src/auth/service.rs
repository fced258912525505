//! Tokens a service mints or carries to call another.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::Context;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};

use super::*;

/// Signs an HS256 development token: what `just token` prints and tests use.
pub fn mint_hs256(
    secret: &SecretString,
    issuer: &str,
    audience: &[String],
    subject: &str,
    scopes: &[&str],
    ttl_seconds: i64,
) -> anyhow::Result<String> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = Claims {
        sub: subject.to_owned(),
        scope: scopes.join(" "),
        iss: issuer.to_owned(),
        aud: audience.to_vec(),
        exp: u64::try_from(now + ttl_seconds).unwrap_or(0),
        iat: u64::try_from(now).ok(),
        nbf: None,
    };
    let key = EncodingKey::from_secret(secret.expose_secret().as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).context("signing the token")
}

/// How a service authenticates to another.
#[derive(Clone)]
pub enum ServiceCredentials {
    /// A token issued by the identity provider (production).
    Static(SecretString),
    /// Short-lived HS256 tokens minted with the shared development secret.
    Minted {
        secret: SecretString,
        issuer: String,
        /// The called service's audience.
        audience: String,
        /// The calling service's subject, e.g. `svc-orders`.
        subject: &'static str,
        scopes: &'static [&'static str],
        /// The last token minted and when: reused for most of its life, so
        /// a call does not sign a token each time.
        cache: Arc<Mutex<Option<(String, Instant)>>>,
    },
}

/// Lifetime of a minted service token, and how long one is reused.
const MINTED_TTL_SECONDS: i64 = 300;
const MINTED_REUSE: Duration = Duration::from_secs(240);

impl ServiceCredentials {
    /// `configured` when set, else minted from the development secret, else
    /// an error naming the setting to provide.
    pub fn resolve(
        configured: Option<&SecretString>,
        auth: &AuthConfig,
        audience: &str,
        subject: &'static str,
        scopes: &'static [&'static str],
        setting: &str,
    ) -> anyhow::Result<Self> {
        match (configured, &auth.hs256_secret) {
            (Some(token), _) => Ok(ServiceCredentials::Static(token.clone())),
            (None, _) if auth.production => {
                anyhow::bail!("{setting} is required in production (tokens are never minted there)")
            }
            (None, Some(secret)) => Ok(ServiceCredentials::Minted {
                secret: secret.clone(),
                issuer: auth.issuer.clone(),
                audience: audience.to_owned(),
                subject,
                scopes,
                cache: Arc::default(),
            }),
            (None, None) => {
                anyhow::bail!("{setting} is required when auth.hs256_secret is not set")
            }
        }
    }

    /// The bearer token to send now.
    pub fn token(&self) -> anyhow::Result<String> {
        match self {
            ServiceCredentials::Static(token) => Ok(token.expose_secret().to_owned()),
            ServiceCredentials::Minted {
                secret,
                issuer,
                audience,
                subject,
                scopes,
                cache,
            } => {
                let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some((token, minted)) = cache.as_ref()
                    && minted.elapsed() < MINTED_REUSE
                {
                    return Ok(token.clone());
                }
                let token = mint_hs256(
                    secret,
                    issuer,
                    std::slice::from_ref(audience),
                    subject,
                    scopes,
                    MINTED_TTL_SECONDS,
                )?;
                *cache = Some((token.clone(), Instant::now()));
                Ok(token)
            }
        }
    }
}
