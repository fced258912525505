//! Personal data at rest: crypto-shredding.
//!
//! Every data subject (a user) has a **data key** of their own (AES-256-GCM,
//! random), stored only **wrapped**: encrypted by a **key-encryption key**
//! from the configuration (`privacy.keys`, the one named by
//! `privacy.active_key` wraps new data keys). Personal fields are sealed
//! with the subject's data key; destroying that key (erasure) leaves every
//! copy of them, in every row and backup, unreadable, while everything else
//! stays as it was.
//!
//! - A sealed value is `1 ‖ data-key id (16) ‖ nonce (12) ‖ ciphertext ‖ tag`,
//!   its associated data chosen by the caller (where the value lives, so a
//!   sealed value moved to another row does not open).
//! - A wrapped data key is `nonce (12) ‖ ciphertext ‖ tag`, its associated
//!   data the subject and the data key's id (a wrapped key moved to another
//!   subject does not unwrap).
//! - Rotating the key-encryption key rewraps data keys only (a few bytes per
//!   subject); no sealed value is rewritten.
//!
//! This module knows nothing of orders: the stores decide what is personal.

use std::collections::BTreeMap;

use anyhow::{Context, bail, ensure};
use base64::Engine;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use uuid::Uuid;

const KEY_LEN: usize = 32;
const SEALED_VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 16 + NONCE_LEN;

/// Key-encryption keys known from this repository (examples and
/// development): with `auth.production` set, left out of the ring (and
/// refused as the active key).
pub const KNOWN_KEYS: &[&str] = &["ZGV2ZWxvcG1lbnQta2V5LWVuY3J5cHRpb24ta2V5ISE="];

/// `privacy:` in a service's settings.
#[derive(Clone, Deserialize)]
pub struct PrivacyConfig {
    /// Key-encryption keys by id: 32 random bytes each, base64. Keep every
    /// key that still wraps a data key until rotation has rewrapped them.
    pub keys: BTreeMap<String, SecretString>,
    /// The id of the key that wraps new data keys (and that rotation
    /// rewraps the others with).
    pub active_key: String,
}

impl std::fmt::Debug for PrivacyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivacyConfig")
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .field("active_key", &self.active_key)
            .finish()
    }
}

/// Why a sealed value did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// It was sealed with another data key of the subject: the one it was
    /// sealed with was destroyed (the data was erased).
    #[error("sealed with a data key that no longer exists (erased)")]
    Erased,
    /// The value or its associated data was altered, or it is not a sealed
    /// value at all.
    #[error("the sealed value was altered or is not one")]
    Tampered,
}

/// The key-encryption keys, by id.
pub struct KeyRing {
    active: String,
    keys: BTreeMap<String, LessSafeKey>,
    random: SystemRandom,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("active", &self.active)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A data key, wrapped for storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub id: Uuid,
    /// The key-encryption key that wraps it.
    pub kek_id: String,
    pub wrapped: Vec<u8>,
}

/// A subject's data key, unwrapped (in memory only).
pub struct DataKey {
    id: Uuid,
    key: LessSafeKey,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey").field("id", &self.id).finish()
    }
}

fn aead_key(bytes: &[u8]) -> anyhow::Result<LessSafeKey> {
    ensure!(
        bytes.len() == KEY_LEN,
        "a key must be {KEY_LEN} bytes, not {}",
        bytes.len()
    );
    let unbound =
        UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| anyhow::anyhow!("not an AES-256 key"))?;
    Ok(LessSafeKey::new(unbound))
}

fn wrap_aad(subject: &str, id: Uuid) -> Vec<u8> {
    let mut aad = Vec::with_capacity(subject.len() + 17);
    aad.extend_from_slice(subject.as_bytes());
    aad.push(0);
    aad.extend_from_slice(id.as_bytes());
    aad
}

impl KeyRing {
    /// The configured keys; refuses an active key that is not among them and
    /// a key that is not 32 bytes of base64. In `production` a key known from
    /// this repository is left out (the built-in defaults hold one), so it
    /// can be neither active nor open anything.
    pub fn new(config: &PrivacyConfig, production: bool) -> anyhow::Result<Self> {
        ensure!(
            !config.keys.is_empty(),
            "privacy.keys is empty: personal data cannot be sealed without a key-encryption key"
        );
        let mut keys = BTreeMap::new();
        for (id, encoded) in &config.keys {
            let encoded = encoded.expose_secret().trim();
            if production && KNOWN_KEYS.contains(&encoded) {
                if *id == config.active_key {
                    bail!(
                        "privacy.keys.{id} is the development key from this repository; with auth.production set, make a key of your own active"
                    );
                }
                continue;
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .with_context(|| format!("privacy.keys.{id} is not base64"))?;
            keys.insert(
                id.clone(),
                aead_key(&bytes).with_context(|| format!("privacy.keys.{id}"))?,
            );
        }
        ensure!(
            keys.contains_key(&config.active_key),
            "privacy.active_key `{}` is not one of privacy.keys ({})",
            config.active_key,
            config.keys.keys().cloned().collect::<Vec<_>>().join(", ")
        );
        Ok(Self {
            active: config.active_key.clone(),
            keys,
            random: SystemRandom::new(),
        })
    }

    /// The id of the key that wraps new data keys.
    pub fn active(&self) -> &str {
        &self.active
    }

    fn nonce(&self) -> anyhow::Result<[u8; NONCE_LEN]> {
        let mut nonce = [0; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| anyhow::anyhow!("the system's random source failed"))?;
        Ok(nonce)
    }

    /// A fresh data key for `subject`, and its wrapped form to store.
    pub fn new_data_key(&self, subject: &str) -> anyhow::Result<(DataKey, WrappedKey)> {
        let mut bytes = [0; KEY_LEN];
        self.random
            .fill(&mut bytes)
            .map_err(|_| anyhow::anyhow!("the system's random source failed"))?;
        let id = Uuid::new_v4();
        let wrapped = self.wrap(&self.active, subject, id, &bytes)?;
        let key = aead_key(&bytes)?;
        bytes.fill(0);
        Ok((DataKey { id, key }, wrapped))
    }

    fn wrap(
        &self,
        kek_id: &str,
        subject: &str,
        id: Uuid,
        bytes: &[u8],
    ) -> anyhow::Result<WrappedKey> {
        let kek = self
            .keys
            .get(kek_id)
            .with_context(|| format!("no key-encryption key `{kek_id}`"))?;
        let nonce = self.nonce()?;
        let mut wrapped = bytes.to_vec();
        kek.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(wrap_aad(subject, id)),
            &mut wrapped,
        )
        .map_err(|_| anyhow::anyhow!("wrapping a data key failed"))?;
        let mut stored = nonce.to_vec();
        stored.append(&mut wrapped);
        Ok(WrappedKey {
            id,
            kek_id: kek_id.to_owned(),
            wrapped: stored,
        })
    }

    fn unwrap_bytes(&self, subject: &str, wrapped: &WrappedKey) -> anyhow::Result<Vec<u8>> {
        let kek = self.keys.get(&wrapped.kek_id).with_context(|| {
            format!(
                "the data key of a subject is wrapped by key-encryption key `{}`, which privacy.keys does not hold",
                wrapped.kek_id
            )
        })?;
        ensure!(
            wrapped.wrapped.len() > NONCE_LEN,
            "a wrapped data key is too short"
        );
        let (nonce, sealed) = wrapped.wrapped.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| anyhow::anyhow!("a wrapped data key's nonce is malformed"))?;
        let mut bytes = sealed.to_vec();
        let opened = kek
            .open_in_place(nonce, Aad::from(wrap_aad(subject, wrapped.id)), &mut bytes)
            .map_err(|_| {
                anyhow::anyhow!(
                    "a data key does not unwrap with key-encryption key `{}`: the key is wrong, or the row was altered",
                    wrapped.kek_id
                )
            })?
            .len();
        bytes.truncate(opened);
        Ok(bytes)
    }

    /// `subject`'s data key from its stored form.
    pub fn unwrap(&self, subject: &str, wrapped: &WrappedKey) -> anyhow::Result<DataKey> {
        let mut bytes = self.unwrap_bytes(subject, wrapped)?;
        let key = aead_key(&bytes);
        bytes.fill(0);
        Ok(DataKey {
            id: wrapped.id,
            key: key?,
        })
    }

    /// The same data key wrapped by the active key-encryption key (key
    /// rotation; the sealed values are untouched).
    pub fn rewrap(&self, subject: &str, wrapped: &WrappedKey) -> anyhow::Result<WrappedKey> {
        let mut bytes = self.unwrap_bytes(subject, wrapped)?;
        let rewrapped = self.wrap(&self.active, subject, wrapped.id, &bytes);
        bytes.fill(0);
        rewrapped
    }

    /// Seals `plaintext` with `key` (a fresh random nonce each time).
    pub fn seal(&self, key: &DataKey, plaintext: &[u8], aad: &[u8]) -> anyhow::Result<Vec<u8>> {
        let nonce = self.nonce()?;
        let mut sealed = Vec::with_capacity(HEADER_LEN + plaintext.len() + 16);
        sealed.push(SEALED_VERSION);
        sealed.extend_from_slice(key.id.as_bytes());
        sealed.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        sealed.append(&mut body);
        Ok(sealed)
    }
}

impl DataKey {
    pub fn id(&self) -> Uuid {
        self.id
    }
}

/// Opens a sealed value with the subject's current data key (`None`: the
/// subject has none, so it was erased).
pub fn open(key: Option<&DataKey>, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, OpenError> {
    if sealed.len() < HEADER_LEN || sealed[0] != SEALED_VERSION {
        return Err(OpenError::Tampered);
    }
    let key = key.ok_or(OpenError::Erased)?;
    if sealed[1..17] != key.id.as_bytes()[..] {
        return Err(OpenError::Erased);
    }
    let nonce = Nonce::try_assume_unique_for_key(&sealed[17..HEADER_LEN])
        .map_err(|_| OpenError::Tampered)?;
    let mut body = sealed[HEADER_LEN..].to_vec();
    let opened = key
        .key
        .open_in_place(nonce, Aad::from(aad), &mut body)
        .map_err(|_| OpenError::Tampered)?
        .len();
    body.truncate(opened);
    Ok(body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    fn ring_of(keys: &[(&str, &str)], active: &str) -> KeyRing {
        KeyRing::new(
            &PrivacyConfig {
                keys: keys
                    .iter()
                    .map(|(id, key)| ((*id).to_owned(), SecretString::from(*key)))
                    .collect(),
                active_key: active.to_owned(),
            },
            false,
        )
        .unwrap()
    }

    const A: &str = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=";
    const B: &str = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=";

    proptest! {
        /// A sealed value opens to what was sealed, with its subject's key
        /// and associated data only; any altered byte is detected.
        #[test]
        fn sealed_values_round_trip_and_tampering_is_detected(
            plaintext in proptest::collection::vec(any::<u8>(), 0..512),
            aad in proptest::collection::vec(any::<u8>(), 0..64),
            flip in any::<prop::sample::Index>(),
        ) {
            let ring = ring_of(&[("a", A)], "a");
            let (key, _) = ring.new_data_key("alice").unwrap();
            let sealed = ring.seal(&key, &plaintext, &aad).unwrap();
            prop_assert_eq!(open(Some(&key), &sealed, &aad).unwrap(), plaintext.clone());
            let mut altered = sealed.clone();
            let at = flip.index(altered.len());
            altered[at] ^= 1;
            prop_assert!(open(Some(&key), &altered, &aad).is_err());
            let mut other_aad = aad.clone();
            other_aad.push(0);
            prop_assert_eq!(open(Some(&key), &sealed, &other_aad), Err(OpenError::Tampered));
            let (bobs, _) = ring.new_data_key("bob").unwrap();
            prop_assert_eq!(open(Some(&bobs), &sealed, &aad), Err(OpenError::Erased));
            prop_assert_eq!(open(None, &sealed, &aad), Err(OpenError::Erased));
        }
    }

    #[test]
    fn a_wrapped_key_unwraps_for_its_subject_only_and_survives_rotation() {
        let ring = ring_of(&[("a", A)], "a");
        let (key, wrapped) = ring.new_data_key("alice").unwrap();
        let sealed = ring.seal(&key, b"12 Main St", b"row").unwrap();
        assert!(ring.unwrap("bob", &wrapped).is_err());
        let rotated = ring_of(&[("a", A), ("b", B)], "b");
        let rewrapped = rotated.rewrap("alice", &wrapped).unwrap();
        assert_eq!(rewrapped.kek_id, "b");
        assert_eq!(rewrapped.id, wrapped.id);
        let only_b = ring_of(&[("b", B)], "b");
        let key = only_b.unwrap("alice", &rewrapped).unwrap();
        assert_eq!(open(Some(&key), &sealed, b"row").unwrap(), b"12 Main St");
        assert!(
            only_b.unwrap("alice", &wrapped).is_err(),
            "its old form needs key a"
        );
        let wrong = ring_of(&[("a", B)], "a");
        assert!(wrong.unwrap("alice", &wrapped).is_err(), "a wrong key a");
    }

    #[test]
    fn bad_configurations_are_refused() {
        let config = |keys: &[(&str, &str)], active: &str| PrivacyConfig {
            keys: keys
                .iter()
                .map(|(id, key)| ((*id).to_owned(), SecretString::from(*key)))
                .collect(),
            active_key: active.to_owned(),
        };
        assert!(KeyRing::new(&config(&[], "a"), false).is_err());
        assert!(KeyRing::new(&config(&[("a", A)], "b"), false).is_err());
        assert!(KeyRing::new(&config(&[("a", "c2hvcnQ=")], "a"), false).is_err());
        assert!(KeyRing::new(&config(&[("a", "not base64!")], "a"), false).is_err());
        assert!(KeyRing::new(&config(&[("dev", KNOWN_KEYS[0])], "dev"), false).is_ok());
        assert!(KeyRing::new(&config(&[("dev", KNOWN_KEYS[0])], "dev"), true).is_err());
        let production =
            KeyRing::new(&config(&[("dev", KNOWN_KEYS[0]), ("a", A)], "a"), true).unwrap();
        assert!(
            !production.keys.contains_key("dev"),
            "left out in production"
        );
    }
}
