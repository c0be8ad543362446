//! Keyset-pagination cursors: `{created_at in µs}_{id}` of the last item of
//! a page, so a page is an index range scan however deep it is and rows
//! inserted meanwhile neither repeat nor shift later pages. Callers treat
//! it as opaque; it is plain text so that every string matching the
//! pattern the OpenAPI document promises is a valid cursor.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The cursor parameters' pattern in the OpenAPI document (attributes
/// take literals only; a test checks the two agree).
#[cfg(test)]
pub const PATTERN: &str =
    "^[0-9]{1,16}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}_{}", self.created_at.timestamp_micros(), self.id)
    }

    pub fn decode(raw: &str) -> Option<Self> {
        let (micros, id) = raw.split_once('_')?;
        // 16 digits stay within chrono's range; a sign is not allowed.
        if micros.is_empty() || micros.len() > 16 || !micros.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Self {
            created_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: Uuid::parse_str(id).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let c = Cursor {
            created_at: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(),
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("not a cursor"), None);
        assert_eq!(Cursor::decode(""), None);
        assert_eq!(Cursor::decode("1_x"), None);
        assert_eq!(Cursor::decode(&format!("-1_{}", c.id)), None);
        let max = format!("9999999999999999_{}", c.id);
        assert!(Cursor::decode(&max).is_some());
    }
}
