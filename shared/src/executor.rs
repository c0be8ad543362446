//! What a custom step's executor says about its work: in the answer to
//! Landlord's call, or later in its callback. Workers read answers; the
//! API reads callbacks and refuses one that is not a report.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// An executor's report on the work of a custom step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum Report {
    /// The work is done; `output` is kept in the step's checkpoint.
    Done {
        #[serde(default)]
        output: Value,
    },
    /// The work failed: a transient failure is retried like a built-in
    /// step's, a permanent one fails the step.
    Failed {
        error: String,
        #[serde(default)]
        transient: bool,
    },
    /// The work goes on; the executor calls back when it ends. Only an
    /// answer may say this, not a callback.
    Accepted,
}

/// The name of the header a callback carries its one-time token in.
pub const CALLBACK_TOKEN_HEADER: &str = "landlord-callback-token";

/// The path the API takes callbacks on, under its base URL.
pub const CALLBACK_PATH: &str = "/callbacks/steps";

/// A new callback token and the hash the store keeps of it.
pub fn new_callback_token() -> (String, Vec<u8>) {
    use rand::RngCore;
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let hash = hash_callback_token(&token);
    (token, hash)
}

pub fn hash_callback_token(token: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_parse_and_garbage_does_not() {
        let done: Report =
            serde_json::from_str(r#"{"status":"done","output":{"ip":"10.0.0.1"}}"#).unwrap();
        assert_eq!(
            done,
            Report::Done {
                output: serde_json::json!({"ip": "10.0.0.1"})
            }
        );
        let failed: Report =
            serde_json::from_str(r#"{"status":"failed","error":"quota","transient":true}"#)
                .unwrap();
        assert!(matches!(
            failed,
            Report::Failed {
                transient: true,
                ..
            }
        ));
        for garbage in [
            r#"{"status":"finished"}"#,
            r#"{"status":"failed"}"#,
            r#"{"state":"done"}"#,
            "<html>",
        ] {
            assert!(
                serde_json::from_str::<Report>(garbage).is_err(),
                "{garbage}"
            );
        }
        let (token, hash) = new_callback_token();
        assert_eq!(token.len(), 64);
        assert_eq!(hash_callback_token(&token), hash);
    }
}
