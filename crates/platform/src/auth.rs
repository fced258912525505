//! JWT bearer authentication and OAuth2 scopes.
//!
//! Tokens are verified locally (stateless): signature (HS256 with a shared
//! secret for development, RS256 or ES256 with a PEM public key for production),
//! `exp`, `iss` and `aud`. The `scope` claim is the OAuth2 space-separated list;
//! `sub` is the caller's user id.
//!
//! Handlers take an [`Authenticated`] argument; a request without a valid token
//! never reaches them (401), and [`Principal::require`] turns a missing scope
//! into a 403.

use std::{collections::BTreeSet, path::PathBuf};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use anyhow::Context;
use futures_util::future::{Ready, ready};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::problem::Problem;

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
    /// Clock skew tolerated on `exp`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
}

fn default_leeway() -> u64 {
    30
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
}

/// What we read from a verified token; `exp`, `iss` and `aud` (a string or an
/// array) are checked by `jsonwebtoken` itself. `scope` may be absent.
#[derive(Debug, Deserialize)]
struct VerifiedClaims {
    sub: String,
    #[serde(default)]
    scope: String,
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
    key: DecodingKey,
    validation: Validation,
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
        let (key, algorithm) = match (&config.public_key_file, &config.hs256_secret) {
            (Some(path), _) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("reading the JWT public key {}", path.display()))?;
                match config.public_key_algorithm.as_deref().unwrap_or("RS256") {
                    "RS256" => (
                        DecodingKey::from_rsa_pem(&pem).context("parsing the RSA public key")?,
                        Algorithm::RS256,
                    ),
                    "ES256" => (
                        DecodingKey::from_ec_pem(&pem).context("parsing the EC public key")?,
                        Algorithm::ES256,
                    ),
                    other => anyhow::bail!("unsupported JWT algorithm {other}; use RS256 or ES256"),
                }
            }
            (None, Some(secret)) => {
                let secret = secret.expose_secret();
                anyhow::ensure!(
                    secret.len() >= 32,
                    "the HS256 secret must be at least 32 bytes"
                );
                (
                    DecodingKey::from_secret(secret.as_bytes()),
                    Algorithm::HS256,
                )
            }
            (None, None) => {
                anyhow::bail!("configure auth.public_key_file or auth.hs256_secret")
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = config.leeway_seconds;
        Ok(Self { key, validation })
    }

    pub fn verify(&self, token: &str) -> Result<Principal, Problem> {
        let data = jsonwebtoken::decode::<VerifiedClaims>(token, &self.key, &self.validation)
            .map_err(|error| {
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
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req).map(Authenticated))
    }
}

fn authenticate(req: &HttpRequest) -> Result<Principal, Problem> {
    let verifier = req
        .app_data::<web::Data<JwtVerifier>>()
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
    verifier.verify(token)
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
    },
}

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
            (None, Some(secret)) => Ok(ServiceCredentials::Minted {
                secret: secret.clone(),
                issuer: auth.issuer.clone(),
                audience: audience.to_owned(),
                subject,
                scopes,
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
            } => mint_hs256(
                secret,
                issuer,
                std::slice::from_ref(audience),
                subject,
                scopes,
                300,
            ),
        }
    }
}
