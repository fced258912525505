//! Verifying tokens: one key, or an identity provider's JWKS.

use anyhow::Context;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use secrecy::ExposeSecret;

use crate::problem::Problem;

use super::*;

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
