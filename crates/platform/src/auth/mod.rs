//! JWT bearer authentication and OAuth2 scopes.
//!
//! Tokens are verified locally (stateless): signature (HS256 with a shared
//! secret for development; RS256 or ES256 with a PEM public key or a JWKS URL
//! for production), `exp`, `nbf`, `iss`, `aud`, and a maximum lifetime.
//! With `auth.production` a service refuses to start on HS256 or on any
//! secret known from this repository, and refuses to mint tokens. The `scope` claim is the OAuth2 space-separated list;
//! `sub` is the caller's user id.
//!
//! Handlers take an [`Authenticated`] argument; a request without a valid token
//! never reaches them (401), and [`Principal::require`] turns a missing scope
//! into a 403.

use std::{collections::BTreeSet, path::PathBuf};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::problem::Problem;

mod service;
mod verifier;

pub use service::{ServiceCredentials, mint_hs256};
pub use verifier::JwtVerifier;

/// The longest subject a token may carry (the length of a user id).
pub const MAX_SUBJECT: usize = 128;

/// `auth:` section of a service's configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthConfig {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud` (the token must name this audience).
    pub audience: String,
    /// Shared secret for HS256 (development). Never logged.
    #[serde(default)]
    pub hs256_secret: Option<SecretString>,
    /// PEM file with the RS256/ES256 public key (production). Takes precedence
    /// over the shared secret when set.
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
    /// `RS256` (default for a public key) or `ES256`.
    #[serde(default)]
    pub public_key_algorithm: Option<String>,
    /// JWKS endpoint of the identity provider (production): keys are
    /// cached by `kid` and fetched again when a token names an unknown one
    /// (at most every `jwks_refresh_seconds`). Wins over the other keys.
    #[serde(default)]
    pub jwks_url: Option<String>,
    #[serde(default = "default_jwks_refresh")]
    pub jwks_refresh_seconds: u64,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// Tokens valid for longer than this (from `iat`, or from now) are
    /// refused: a stolen token cannot live for ever.
    #[serde(default = "default_max_lifetime")]
    pub max_token_lifetime_seconds: u64,
    /// Production: no HS256, no secret known from this repository, no
    /// minted tokens.
    #[serde(default)]
    pub production: bool,
}

fn default_leeway() -> u64 {
    30
}

fn default_jwks_refresh() -> u64 {
    30
}

fn default_max_lifetime() -> u64 {
    86_400
}

/// Development secrets written in this repository (justfile, compose,
/// scripts, tests): refused in production even though they are long enough.
pub const KNOWN_SECRETS: &[&str] = &[
    "local-development-secret-do-not-use-in-production",
    "compose-development-secret-change-me",
    "compose-development-secret-change-me-0123456789",
    "contracts-check-secret-contracts-check-0001",
    "test-secret-test-secret-test-secret-0123456789",
];

impl AuthConfig {
    /// What production refuses: HS256 (or no asymmetric key), a known
    /// secret.
    pub fn check_production(&self) -> anyhow::Result<()> {
        if !self.production {
            return Ok(());
        }
        if let Some(secret) = &self.hs256_secret {
            anyhow::ensure!(
                !KNOWN_SECRETS.contains(&secret.expose_secret()),
                "auth.production: the HS256 secret is one published in this repository"
            );
        }
        anyhow::ensure!(
            self.jwks_url.is_some() || self.public_key_file.is_some(),
            "auth.production: HS256 is for development; configure auth.jwks_url or auth.public_key_file"
        );
        Ok(())
    }

    /// Whether development tokens may be minted (`token` subcommand).
    pub fn may_mint(&self) -> anyhow::Result<&SecretString> {
        anyhow::ensure!(
            !self.production,
            "auth.production: tokens come from the identity provider, never from this binary"
        );
        self.hs256_secret
            .as_ref()
            .context("tokens can only be minted with auth.hs256_secret (development)")
    }
}

/// The claims a minted token carries.
#[derive(Debug, Clone, Serialize)]
pub struct Claims {
    pub sub: String,
    pub scope: String,
    pub iss: String,
    /// One or more audiences.
    pub aud: Vec<String>,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// What we read from a verified token; `exp`, `iss` and `aud` (a string or an
/// array) are checked by `jsonwebtoken` itself. `scope` may be absent.
#[derive(Debug, Deserialize)]
struct VerifiedClaims {
    sub: String,
    #[serde(default)]
    scope: String,
    exp: u64,
    #[serde(default)]
    iat: Option<u64>,
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The `sub` claim: the user id (or a service's id).
    pub subject: String,
    pub scopes: BTreeSet<String>,
}

impl Principal {
    pub fn has(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// 403 unless the caller holds `scope` (or one of `alternatives`).
    pub fn require(&self, scope: &str, alternatives: &[&str]) -> Result<(), Problem> {
        if self.has(scope) || alternatives.iter().any(|s| self.has(s)) {
            Ok(())
        } else {
            Err(Problem::forbidden(format!(
                "this operation needs the `{scope}` scope"
            )))
        }
    }
}

/// Extractor: the verified caller of this request.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl FromRequest for Authenticated {
    type Error = Problem;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = bearer(req);
        Box::pin(async move {
            let (verifier, token) = found?;
            verifier.verify(&token).await.map(Authenticated)
        })
    }
}

fn bearer(req: &HttpRequest) -> Result<(web::Data<JwtVerifier>, String), Problem> {
    let verifier = req
        .app_data::<web::Data<JwtVerifier>>()
        .cloned()
        .ok_or_else(|| Problem::internal(&anyhow::anyhow!("JwtVerifier is not registered")))?;
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| Problem::unauthorized("send a bearer token in the Authorization header"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            Problem::unauthorized("the Authorization header must be `Bearer <token>`")
        })?;
    Ok((verifier, token.to_owned()))
}
