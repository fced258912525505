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

pub fn secret() -> SecretString {
    SecretString::from(SECRET)
}

/// What to put in a token; [`TokenSpec::sign`] makes it.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    pub subject: String,
    pub scopes: Vec<String>,
    pub audience: String,
    pub issuer: String,
    /// Seconds from now; negative for an expired token.
    pub expires_in: i64,
}

impl TokenSpec {
    pub fn new(audience: &str, subject: &str, scopes: &[&str]) -> Self {
        Self {
            subject: subject.to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            audience: audience.to_owned(),
            issuer: ISSUER.to_owned(),
            expires_in: 600,
        }
    }

    fn claims(&self) -> Claims {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        Claims {
            sub: self.subject.clone(),
            scope: self.scopes.join(" "),
            iss: self.issuer.clone(),
            aud: vec![self.audience.clone()],
            exp: u64::try_from(now + self.expires_in).unwrap_or(0),
            iat: u64::try_from(now).ok(),
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

    /// RS256 with the fixture private key.
    pub fn sign_rs256(&self) -> String {
        let Ok(key) = EncodingKey::from_rsa_pem(RS256_PRIVATE_PEM.as_bytes()) else {
            return String::new();
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &self.claims(), &key)
            .unwrap_or_default()
    }
}
