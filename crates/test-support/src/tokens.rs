//! Tokens for tests: valid ones and each way a token can be wrong.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use platform::auth::Claims;
use secrecy::SecretString;

/// The HS256 secret test services are configured with.
pub const SECRET: &str = "test-secret-test-secret-test-secret-0123456789";
pub const ISSUER: &str = "orders-platform-test";

/// The RS256 fixture key pair (public half for the service's config).
pub const RS256_PRIVATE_PEM: &str = include_str!("../fixtures/jwt-rs256.key");
pub fn rs256_public_key_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/jwt-rs256.pub")
}

/// The JWKS holding the fixture's public key as `test-key-1`.
pub const RS256_JWKS: &str = include_str!("../fixtures/jwt-rs256.jwks.json");

pub fn secret() -> SecretString {
    SecretString::from(SECRET)
}

/// What to put in a token; [`TokenSpec::sign`] makes it.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    pub subject: String,
    pub scopes: Vec<String>,
    pub audience: String,
    /// More audiences the token is also for (one token for both services).
    pub also_for: Vec<String>,
    pub issuer: String,
    /// Seconds from now; negative for an expired token.
    pub expires_in: i64,
    /// `nbf`, seconds from now.
    pub not_before_in: Option<i64>,
}

impl TokenSpec {
    pub fn new(audience: &str, subject: &str, scopes: &[&str]) -> Self {
        Self {
            subject: subject.to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            audience: audience.to_owned(),
            also_for: Vec::new(),
            issuer: ISSUER.to_owned(),
            expires_in: 600,
            not_before_in: None,
        }
    }

    /// The token is also for `audience`.
    pub fn also_for(mut self, audience: &str) -> Self {
        self.also_for.push(audience.to_owned());
        self
    }

    fn claims(&self) -> Claims {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        Claims {
            sub: self.subject.clone(),
            scope: self.scopes.join(" "),
            iss: self.issuer.clone(),
            aud: std::iter::once(&self.audience)
                .chain(&self.also_for)
                .cloned()
                .collect(),
            exp: u64::try_from(now + self.expires_in).unwrap_or(0),
            iat: u64::try_from(now).ok(),
            nbf: self
                .not_before_in
                .and_then(|seconds| u64::try_from(now + seconds).ok()),
        }
    }

    /// HS256 with the test secret.
    pub fn sign(&self) -> String {
        self.sign_hs256(SECRET)
    }

    /// HS256 with any secret (a wrong one for a bad-signature test).
    pub fn sign_hs256(&self, secret: &str) -> String {
        let key = EncodingKey::from_secret(secret.as_bytes());
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &self.claims(), &key)
            .unwrap_or_default()
    }

    /// RS256 with the fixture private key, naming it `kid` (as a JWKS
    /// lists it: `fixtures/jwt-rs256.jwks.json` has `test-key-1`).
    pub fn sign_rs256_with_kid(&self, kid: &str) -> String {
        let Ok(key) = EncodingKey::from_rsa_pem(RS256_PRIVATE_PEM.as_bytes()) else {
            return String::new();
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, &self.claims(), &key).unwrap_or_default()
    }

    /// RS256 with the fixture private key.
    pub fn sign_rs256(&self) -> String {
        let Ok(key) = EncodingKey::from_rsa_pem(RS256_PRIVATE_PEM.as_bytes()) else {
            return String::new();
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &self.claims(), &key)
            .unwrap_or_default()
    }
}
