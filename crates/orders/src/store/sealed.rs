//! What of an event is personal, and how it is kept: each event row holds
//! its payload and its snapshot (the order after it) without their personal
//! fields, and those fields, of both, sealed together in `sealed` with the
//! owner's data key ([`platform::privacy`]; associated data: the order and
//! the sequence, so a sealed value copied to another row does not open).
//! Published events are the snapshots: they carry no personal data.

use anyhow::Context;
use platform::db::JsonText;
use platform::privacy::{DataKey, KeyRing, OpenError};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::domain::OrderEvent;

/// The personal fields of each event type's payload.
fn personal_fields(event: &OrderEvent) -> &'static [&'static str] {
    match event {
        OrderEvent::Created(_) => &["shipping_address", "billing_address", "notes"],
        OrderEvent::Cancelled(_) | OrderEvent::ReturnRequested(_) => &["reason"],
        _ => &[],
    }
}

/// Seals with a user's data key; `key` is `None` only when there is nothing
/// personal to seal (an erased user's order).
#[derive(Clone, Copy)]
pub struct Sealer<'a> {
    pub ring: &'a KeyRing,
    pub key: Option<&'a DataKey>,
}

impl std::fmt::Debug for Sealer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("key", &self.key).finish()
    }
}

fn aad(order_id: Uuid, sequence: u32) -> [u8; 20] {
    let mut aad = [0; 20];
    aad[..16].copy_from_slice(order_id.as_bytes());
    aad[16..].copy_from_slice(&sequence.to_be_bytes());
    aad
}

/// An event's payload as stored (without its personal fields) and its
/// sealed personal part (with the snapshot's, `snapshot_personal`).
pub(super) fn seal(
    sealer: Sealer<'_>,
    event: &OrderEvent,
    order_id: Uuid,
    sequence: u32,
    snapshot_personal: Option<&str>,
) -> anyhow::Result<(JsonText, Option<Vec<u8>>)> {
    let fields = personal_fields(event);
    let (payload, personal) = if fields.is_empty() {
        (JsonText::of(event)?, Map::new())
    } else {
        let mut payload = serde_json::to_value(event)?;
        let mut personal = Map::new();
        if let Some(object) = payload.as_object_mut() {
            for field in fields {
                if let Some(value) = object.remove(*field)
                    && !value.is_null()
                {
                    personal.insert((*field).to_owned(), value);
                }
            }
        }
        (JsonText(serde_json::to_string(&payload)?), personal)
    };
    if personal.is_empty() && snapshot_personal.is_none() {
        return Ok((payload, None));
    }
    let key = sealer
        .key
        .context("personal data to seal, and no data key to seal it with")?;
    let mut plain = String::from("{\"payload\":");
    plain.push_str(&serde_json::to_string(&personal)?);
    if let Some(snapshot) = snapshot_personal {
        plain.push_str(",\"snapshot\":");
        plain.push_str(snapshot);
    }
    plain.push('}');
    let sealed = sealer
        .ring
        .seal(key, plain.as_bytes(), &aad(order_id, sequence))?;
    Ok((payload, Some(sealed)))
}

/// What a sealed value held.
#[derive(Debug, Default, serde::Deserialize)]
struct Opened {
    #[serde(default)]
    payload: Map<String, Value>,
    #[serde(default)]
    snapshot: Option<Box<serde_json::value::RawValue>>,
}

fn open(
    key: Option<&DataKey>,
    sealed: Option<&[u8]>,
    order_id: Uuid,
    sequence: u32,
) -> anyhow::Result<Opened> {
    let Some(sealed) = sealed else {
        return Ok(Opened::default());
    };
    match platform::privacy::open(key, sealed, &aad(order_id, sequence)) {
        Ok(plain) => serde_json::from_slice(&plain).context("a sealed value is not JSON"),
        // Erased: the personal fields are gone for good.
        Err(OpenError::Erased) => Ok(Opened::default()),
        Err(OpenError::Tampered) => Err(anyhow::anyhow!(
            "the sealed personal data of order {order_id} event {sequence} was altered"
        )),
    }
}

/// Puts an event's personal fields back into its stored payload (nothing
/// if they were erased).
pub(super) fn open_payload(
    key: Option<&DataKey>,
    sealed: Option<&[u8]>,
    order_id: Uuid,
    sequence: u32,
    payload: &mut Value,
) -> anyhow::Result<()> {
    let opened = open(key, sealed, order_id, sequence)?;
    if let Some(object) = payload.as_object_mut() {
        object.extend(opened.payload);
    }
    Ok(())
}

/// An order's representation from an event's stored snapshot and its
/// sealed part: the personal fields appended to the public object (none if
/// erased).
pub fn open_snapshot(
    key: Option<&DataKey>,
    sealed: Option<&[u8]>,
    order_id: Uuid,
    sequence: u32,
    public: String,
) -> anyhow::Result<String> {
    let opened = open(key, sealed, order_id, sequence)?;
    Ok(match opened.snapshot {
        Some(personal) => crate::view::join(&public, personal.get()),
        None => public,
    })
}

/// Marks a stored answer (under an Idempotency-Key) whose personal part is
/// sealed; a JSON answer never starts with a NUL byte.
const ANSWER_MAGIC: &[u8] = b"\0sealed-answer-1\0";

fn answer_aad(owner: &str, key: &str) -> Vec<u8> {
    let mut aad = b"answer\0".to_vec();
    aad.extend_from_slice(owner.as_bytes());
    aad.push(0);
    aad.extend_from_slice(key.as_bytes());
    aad
}

/// The answer to store under `owner`'s Idempotency-Key `key`: as it is when
/// it holds nothing personal (`sealer.key` is `None`), else sealed whole
/// with the data key of the order's owner (`subject`), beside its public
/// part (what a replay answers once the subject's data is erased).
pub fn seal_answer(
    sealer: Sealer<'_>,
    subject: &str,
    owner: &str,
    key: &str,
    body: &[u8],
    public: &str,
) -> anyhow::Result<Vec<u8>> {
    let Some(data_key) = sealer.key else {
        return Ok(body.to_vec());
    };
    let sealed = sealer.ring.seal(data_key, body, &answer_aad(owner, key))?;
    let subject_len = u16::try_from(subject.len()).context("subject too long")?;
    let public_len = u32::try_from(public.len()).context("answer too long")?;
    let mut stored =
        Vec::with_capacity(ANSWER_MAGIC.len() + 6 + subject.len() + public.len() + sealed.len());
    stored.extend_from_slice(ANSWER_MAGIC);
    stored.extend_from_slice(&subject_len.to_be_bytes());
    stored.extend_from_slice(subject.as_bytes());
    stored.extend_from_slice(&public_len.to_be_bytes());
    stored.extend_from_slice(public.as_bytes());
    stored.extend_from_slice(&sealed);
    Ok(stored)
}

/// A stored answer whose personal part is sealed.
#[derive(Debug)]
pub struct SealedAnswer<'a> {
    /// The order's owner, whose data key opens it.
    pub subject: &'a str,
    public: &'a [u8],
    sealed: &'a [u8],
}

impl<'a> SealedAnswer<'a> {
    /// `None`: the answer was stored as it is.
    pub fn parse(stored: &'a [u8]) -> anyhow::Result<Option<Self>> {
        let Some(rest) = stored.strip_prefix(ANSWER_MAGIC) else {
            return Ok(None);
        };
        let malformed = || anyhow::anyhow!("a stored answer is malformed");
        let (len, rest) = rest.split_at_checked(2).ok_or_else(malformed)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let (subject, rest) = rest.split_at_checked(len).ok_or_else(malformed)?;
        let (len, rest) = rest.split_at_checked(4).ok_or_else(malformed)?;
        let len = usize::try_from(u32::from_be_bytes([len[0], len[1], len[2], len[3]]))?;
        let (public, sealed) = rest.split_at_checked(len).ok_or_else(malformed)?;
        Ok(Some(Self {
            subject: std::str::from_utf8(subject)?,
            public,
            sealed,
        }))
    }

    /// The answer as it was first given, or its public part once the
    /// subject's data is erased.
    pub fn open(
        &self,
        key: Option<&DataKey>,
        owner: &str,
        idempotency_key: &str,
    ) -> anyhow::Result<Vec<u8>> {
        match platform::privacy::open(key, self.sealed, &answer_aad(owner, idempotency_key)) {
            Ok(body) => Ok(body),
            Err(OpenError::Erased) => Ok(self.public.to_vec()),
            Err(OpenError::Tampered) => Err(anyhow::anyhow!("a stored answer was altered")),
        }
    }
}
