//! The v1 envelope: every message is a JSON array `[type, requestId, method, payload, ts]`.
//!
//! `type` is 1 request, 2 response, 3 event, 4 error; `requestId` a `u64` the client picks and the node repeats;
//! `payload` an object (`{"error": "..."}` in an error); `ts` Unix milliseconds. Nothing in the envelope is signed.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize, de::Error as _};
use serde_json::Value;

/// Largest frame the node accepts (128 KiB).
pub const MAX_FRAME_BYTES: usize = 128 * 1024;

/// What a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Client to node.
    Request,
    /// The node's answer.
    Response,
    /// Unsolicited (v1 nodes send none; kept for completeness).
    Event,
    /// The node's refusal.
    Error,
}

impl Kind {
    /// The wire number.
    pub const fn code(self) -> u8 {
        match self {
            Self::Request => 1,
            Self::Response => 2,
            Self::Event => 3,
            Self::Error => 4,
        }
    }

    /// The kind with this wire number.
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Request,
            2 => Self::Response,
            3 => Self::Event,
            4 => Self::Error,
            _ => return None,
        })
    }
}

/// One message.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Request, response, event or error.
    pub kind: Kind,
    /// The client's request id, repeated by the node.
    pub id: u64,
    /// `group.v1.name`.
    pub method: String,
    /// A JSON object.
    pub payload: Value,
    /// Unix milliseconds when sent.
    pub ts: u64,
}

impl Message {
    /// A request stamped now.
    pub fn request(id: u64, method: impl Into<String>, payload: Value) -> Self {
        Self { kind: Kind::Request, id, method: method.into(), payload, ts: now_ms() }
    }

    /// A response to `id`.
    pub fn response(id: u64, method: impl Into<String>, payload: Value) -> Self {
        Self { kind: Kind::Response, id, method: method.into(), payload, ts: now_ms() }
    }

    /// An error answer to `id`.
    pub fn error(id: u64, method: impl Into<String>, message: impl Into<String>) -> Self {
        let payload = serde_json::json!({ "error": message.into() });
        Self { kind: Kind::Error, id, method: method.into(), payload, ts: now_ms() }
    }

    /// The error text of an error message.
    pub fn error_text(&self) -> Option<&str> {
        (self.kind == Kind::Error)
            .then(|| self.payload.get("error").and_then(Value::as_str).unwrap_or(""))
    }

    /// The JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("messages always serialize")
    }

    /// Parses one frame.
    pub fn from_json(text: &str) -> serde_json::Result<Self> {
        serde_json::from_str(text)
    }
}

impl Serialize for Message {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.kind.code(), self.id, &self.method, &self.payload, self.ts).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (kind, id, method, payload, ts): (u8, u64, String, Value, u64) =
            Deserialize::deserialize(d)?;
        let kind = Kind::from_code(kind)
            .ok_or_else(|| D::Error::custom(format!("unknown message type {kind}")))?;
        if !payload.is_object() {
            return Err(D::Error::custom("payload must be a JSON object"));
        }
        Ok(Self { kind, id, method, payload, ts })
    }
}

/// Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_array_envelope() {
        let m = Message::request(7, "node.v1.ping", serde_json::json!({}));
        let text = m.to_json();
        assert!(text.starts_with(r#"[1,7,"node.v1.ping",{},"#), "{text}");
        assert_eq!(Message::from_json(&text).unwrap(), m);
        let e = Message::from_json(r#"[4,7,"node.v1.ping",{"error":"nope"},1]"#).unwrap();
        assert_eq!(e.error_text(), Some("nope"));
    }

    #[test]
    fn rejects_other_shapes() {
        for bad in [
            r#"{"req":[1,"ping",{}]}"#,
            r#"[9,1,"x",{},1]"#,
            r#"[1,1,"x",[],1]"#,
            r#"[1,-1,"x",{},1]"#,
            r#"[1,1,"x",{}]"#,
        ] {
            assert!(Message::from_json(bad).is_err(), "{bad}");
        }
    }
}
