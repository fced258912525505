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

use std::{
    collections::BTreeSet,
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use anyhow::Context;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::problem::Problem;

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

/// Verifies tokens; shared by all workers as `web::Data<JwtVerifier>`.
pub struct JwtVerifier {
    keys: Keys,
    validation: Validation,
    max_lifetime: u64,
}

enum Keys {
    One(DecodingKey),
    Jwks(Jwks),
}

/// The identity provider's keys by `kid`, fetched when a token names one
/// not yet known (and at most every `refresh`, so random `kid`s cannot make
/// us hammer the provider).
struct Jwks {
    url: String,
    client: reqwest::Client,
    refresh: std::time::Duration,
    keys: std::sync::RwLock<std::collections::HashMap<String, DecodingKey>>,
    fetched: tokio::sync::Mutex<Option<std::time::Instant>>,
}

impl Jwks {
    fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().ok()?.get(kid).cloned()
    }

    async fn refresh(&self) {
        let mut fetched = self.fetched.lock().await;
        if fetched.is_some_and(|at| at.elapsed() < self.refresh) {
            return;
        }
        *fetched = Some(std::time::Instant::now());
        let set = async {
            self.client
                .get(&self.url)
                .send()
                .await?
                .error_for_status()?
                .json::<jsonwebtoken::jwk::JwkSet>()
                .await
        }
        .await;
        match set {
            Ok(set) => {
                let keys: std::collections::HashMap<String, DecodingKey> = set
                    .keys
                    .iter()
                    .filter_map(|jwk| {
                        Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?))
                    })
                    .collect();
                tracing::info!(keys = keys.len(), "JWKS fetched");
                if let Ok(mut known) = self.keys.write() {
                    *known = keys;
                }
            }
            Err(error) => tracing::warn!(error.message = %error, "could not fetch the JWKS"),
        }
    }
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    pub fn from_config(config: &AuthConfig) -> anyhow::Result<Self> {
        config.check_production()?;
        let (keys, algorithms) = match (
            &config.jwks_url,
            &config.public_key_file,
            &config.hs256_secret,
        ) {
            (Some(url), _, _) => (
                Keys::Jwks(Jwks {
                    url: url.clone(),
                    client: reqwest::Client::builder()
                        .timeout(std::time::Duration::from_secs(5))
                        .build()
                        .context("building the JWKS client")?,
                    refresh: std::time::Duration::from_secs(config.jwks_refresh_seconds.max(1)),
                    keys: std::sync::RwLock::default(),
                    fetched: tokio::sync::Mutex::default(),
                }),
                vec![Algorithm::RS256, Algorithm::ES256],
            ),
            (None, Some(path), _) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("reading the JWT public key {}", path.display()))?;
                match config.public_key_algorithm.as_deref().unwrap_or("RS256") {
                    "RS256" => (
                        Keys::One(
                            DecodingKey::from_rsa_pem(&pem)
                                .context("parsing the RSA public key")?,
                        ),
                        vec![Algorithm::RS256],
                    ),
                    "ES256" => (
                        Keys::One(
                            DecodingKey::from_ec_pem(&pem).context("parsing the EC public key")?,
                        ),
                        vec![Algorithm::ES256],
                    ),
                    other => anyhow::bail!("unsupported JWT algorithm {other}; use RS256 or ES256"),
                }
            }
            (None, None, Some(secret)) => {
                let secret = secret.expose_secret();
                anyhow::ensure!(
                    secret.len() >= 32,
                    "the HS256 secret must be at least 32 bytes"
                );
                (
                    Keys::One(DecodingKey::from_secret(secret.as_bytes())),
                    vec![Algorithm::HS256],
                )
            }
            (None, None, None) => {
                anyhow::bail!("configure auth.jwks_url, auth.public_key_file or auth.hs256_secret")
            }
        };
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms;
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = config.leeway_seconds;
        Ok(Self {
            keys,
            validation,
            max_lifetime: config.max_token_lifetime_seconds,
        })
    }

    /// The verified caller of `token`.
    pub async fn verify(&self, token: &str) -> Result<Principal, Problem> {
        match &self.keys {
            Keys::One(key) => self.verify_with(token, key, &self.validation),
            Keys::Jwks(jwks) => {
                let header = jsonwebtoken::decode_header(token)
                    .map_err(|_| Problem::unauthorized("the token is malformed"))?;
                let kid = header
                    .kid
                    .ok_or_else(|| Problem::unauthorized("the token names no signing key (kid)"))?;
                // One algorithm per check: the one the header names, if we
                // accept it (jsonwebtoken refuses a key of another family).
                if !self.validation.algorithms.contains(&header.alg) {
                    return Err(Problem::unauthorized(
                        "the token is signed with another algorithm",
                    ));
                }
                let key = match jwks.key(&kid) {
                    Some(key) => key,
                    None => {
                        jwks.refresh().await;
                        jwks.key(&kid).ok_or_else(|| {
                            Problem::unauthorized("the token is signed with an unknown key")
                        })?
                    }
                };
                let mut validation = self.validation.clone();
                validation.algorithms = vec![header.alg];
                self.verify_with(token, &key, &validation)
            }
        }
    }

    fn verify_with(
        &self,
        token: &str,
        key: &DecodingKey,
        validation: &Validation,
    ) -> Result<Principal, Problem> {
        let data =
            jsonwebtoken::decode::<VerifiedClaims>(token, key, validation).map_err(|error| {
                let reason = match error.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired",
                    ErrorKind::InvalidAudience => "the token is not meant for this service",
                    ErrorKind::InvalidIssuer => "the token was issued by an unknown issuer",
                    ErrorKind::InvalidSignature => "the token's signature is invalid",
                    ErrorKind::InvalidAlgorithm => "the token is signed with another algorithm",
                    ErrorKind::ImmatureSignature => "the token is not valid yet",
                    ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim",
                    _ => "the token is malformed",
                };
                Problem::unauthorized(reason)
            })?;
        let claims = data.claims;
        if claims.sub.trim().is_empty() {
            return Err(Problem::unauthorized("the token has an empty subject"));
        }
        // A subject is a user id: what every service stores and compares.
        if claims.sub.chars().count() > MAX_SUBJECT
            || claims
                .sub
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(Problem::unauthorized(
                "the token's subject is not a user id (at most 128 characters, no spaces or control characters)",
            ));
        }
        let now = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
        let issued = claims.iat.unwrap_or(now).min(now);
        if claims.exp.saturating_sub(issued) > self.max_lifetime {
            return Err(Problem::unauthorized(format!(
                "the token lives longer than {} s; ask for a shorter-lived one",
                self.max_lifetime
            )));
        }
        Ok(Principal {
            subject: claims.sub,
            scopes: claims.scope.split_whitespace().map(str::to_owned).collect(),
        })
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
