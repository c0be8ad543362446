//! AWS STS `GetFederationToken`, as storage `prefix` mode needs it: short
//! lived credentials for one tenant, scoped by a session policy to its
//! prefix of the shared bucket. The token holds our identity's policies
//! intersected with that session policy, so it can never reach more than
//! the prefix. SeaweedFS serves STS on its S3 port; AWS STS takes the same
//! form POST, signed with SigV4 for service `sts`.
//!
//! Why not an IAM user per tenant: SeaweedFS rewrites its whole identity
//! table on every user, policy or key change (a per-tenant key cost
//! 140 ms at 100 users and grew linearly), and AWS caps an account at
//! 5,000 IAM users. Minting a token writes nothing anywhere.

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use chrono::{DateTime, Utc};
use landlord_shared::config::S3Config;
use secrecy::ExposeSecret;
use serde_json::json;
use std::time::{Duration, SystemTime};

pub struct Sts {
    http: reqwest::Client,
    cfg: S3Config,
}

/// Temporary credentials: all three parts sign a request.
pub struct Minted {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum StsError {
    /// STS could not be reached, or answered 5xx or throttled: try later.
    #[error("STS unavailable: {0}")]
    Unavailable(String),
    /// STS refused (signature, permission, configuration): an operator's
    /// problem, not the caller's.
    #[error("STS refused: {0}")]
    Refused(String),
}

/// What the credentials may do: objects under `prefix`, and a listing of
/// the bucket only with that prefix.
pub fn prefix_policy(bucket: &str, prefix: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": [format!("arn:aws:s3:::{bucket}/{prefix}*")],
            },
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [format!("arn:aws:s3:::{bucket}")],
                "Condition": { "StringLike": { "s3:prefix": [format!("{prefix}*")] } },
            },
        ],
    })
    .to_string()
}

impl Sts {
    pub fn new(cfg: S3Config) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("a TLS backend"),
            cfg,
        }
    }

    /// `name` labels the federated user (a tenant key: 3–30 of `[a-z0-9]`,
    /// within AWS's 2–32 of `[\w+=,.@-]`).
    pub async fn federation_token(
        &self,
        name: &str,
        policy: &str,
        duration: Duration,
    ) -> Result<Minted, StsError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", "GetFederationToken")
            .append_pair("Version", "2011-06-15")
            .append_pair("Name", name)
            .append_pair("Policy", policy)
            .append_pair("DurationSeconds", &duration.as_secs().to_string())
            .finish();
        let url = format!("{}/", self.cfg.sts_endpoint.trim_end_matches('/'));
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let headers = self
            .signed_headers(&url, content_type, &body)
            .map_err(StsError::Refused)?;
        let mut req = self
            .http
            .post(&url)
            .header("content-type", content_type)
            .body(body);
        for (name, value) in headers {
            req = req.header(name, value);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| StsError::Unavailable(e.to_string()))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| StsError::Unavailable(e.to_string()))?;
        if !status.is_success() {
            let msg = format!(
                "HTTP {status}: {}",
                text.chars().take(300).collect::<String>()
            );
            return Err(
                if status.is_server_error() || status.as_u16() == 429 || text.contains("Throttling")
                {
                    StsError::Unavailable(msg)
                } else {
                    StsError::Refused(msg)
                },
            );
        }
        parse(&text).ok_or_else(|| {
            StsError::Refused(format!(
                "an answer without credentials: {}",
                text.chars().take(300).collect::<String>()
            ))
        })
    }

    fn signed_headers(
        &self,
        url: &str,
        content_type: &str,
        body: &str,
    ) -> Result<Vec<(String, String)>, String> {
        let identity = aws_credential_types::Credentials::new(
            &self.cfg.access_key,
            self.cfg.secret_key.expose_secret(),
            None,
            None,
            "landlord",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.cfg.region)
            .name("sts")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("signing parameters: {e}"))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            url,
            [("content-type", content_type)].into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| format!("request: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("signing: {e}"))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect())
    }
}

/// The credentials in a `GetFederationTokenResponse`.
fn parse(xml: &str) -> Option<Minted> {
    Some(Minted {
        access_key_id: value(xml, "AccessKeyId")?,
        secret_access_key: value(xml, "SecretAccessKey")?,
        session_token: value(xml, "SessionToken")?,
        expires_at: DateTime::parse_from_rfc3339(&value(xml, "Expiration")?)
            .ok()?
            .with_timezone(&Utc),
    })
}

/// The text of the first `<tag>…</tag>`, XML escapes undone. The answer
/// is flat and holds no other entities.
fn value(xml: &str, tag: &str) -> Option<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_aws_shaped_answer() {
        let xml = "<GetFederationTokenResponse><GetFederationTokenResult><Credentials>\
            <SessionToken>tok&amp;en</SessionToken><SecretAccessKey>sec</SecretAccessKey>\
            <Expiration>2026-12-07T17:33:43Z</Expiration><AccessKeyId>ASIA1</AccessKeyId>\
            </Credentials></GetFederationTokenResult></GetFederationTokenResponse>";
        let m = parse(xml).unwrap();
        assert_eq!(m.access_key_id, "ASIA1");
        assert_eq!(m.session_token, "tok&en");
        assert_eq!(m.expires_at.to_rfc3339(), "2026-12-07T17:33:43+00:00");
        assert!(parse("<Error><Code>AccessDenied</Code></Error>").is_none());
    }
}
