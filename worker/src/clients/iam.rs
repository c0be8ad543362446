//! The AWS IAM Query API — form POSTs signed with SigV4 for service `iam` —
//! as far as storage `prefix` mode needs it: users, their inline policies
//! and access keys. SeaweedFS serves it on its S3 port; AWS IAM and other
//! S3 servers with an IAM API take the same calls.

use super::http::{TracedSend, is_transient};
use crate::step::StepError;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use landlord_shared::config::S3Config;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use std::time::SystemTime;

pub struct Iam<'a> {
    http: &'a reqwest::Client,
    cfg: &'a S3Config,
}

/// An answer: its status and XML body.
pub struct Answer {
    pub status: StatusCode,
    pub body: String,
}

impl Answer {
    /// The error code of a failed call (`NoSuchEntity`, …).
    pub fn code(&self) -> Option<String> {
        values(&self.body, "Code").into_iter().next()
    }

    pub fn is(&self, code: &str) -> bool {
        self.code().as_deref() == Some(code)
    }
}

/// The text of every `<tag>…</tag>` in an XML answer, in order. IAM's
/// answers are flat enough for this; no entity in them is expected other
/// than the XML escapes, which are undone.
pub fn values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(
            after[..end]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &after[end + close.len()..];
    }
    out
}

impl<'a> Iam<'a> {
    pub fn new(http: &'a reqwest::Client, cfg: &'a S3Config) -> Self {
        Self { http, cfg }
    }

    /// One call; the answer whatever its status (callers decide what a
    /// 404 or 409 means), a transport failure as a transient error.
    pub async fn call(&self, action: &str, params: &[(&str, &str)]) -> Result<Answer, StepError> {
        // The serializer is not Send: it must be gone before the await.
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("Action", action);
            form.append_pair("Version", "2010-05-08");
            for (k, v) in params {
                form.append_pair(k, v);
            }
            form.finish()
        };
        let url = format!("{}/", self.cfg.iam_endpoint.trim_end_matches('/'));
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
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
            .name("iam")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| StepError::permanent(format!("IAM signing parameters: {e}")))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            &url,
            [("content-type", content_type)].into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| StepError::permanent(format!("IAM request {action}: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| StepError::permanent(format!("IAM signing {action}: {e}")))?
            .into_parts();
        let mut req = self
            .http
            .post(&url)
            .header("content-type", content_type)
            .body(body);
        for (name, value) in instructions.headers() {
            req = req.header(name, value);
        }
        let resp = req.traced_send().await?;
        let status = resp.status();
        let body = resp.text().await?;
        Ok(Answer { status, body })
    }

    /// A call that must succeed.
    pub async fn ok(&self, action: &str, params: &[(&str, &str)]) -> Result<Answer, StepError> {
        let answer = self.call(action, params).await?;
        if answer.status.is_success() {
            return Ok(answer);
        }
        Err(failed(action, &answer))
    }
}

/// The error for a failed call: transient for 5xx and throttling.
pub fn failed(action: &str, answer: &Answer) -> StepError {
    let msg = format!(
        "IAM {action}: HTTP {}: {}",
        answer.status,
        answer.body.chars().take(300).collect::<String>()
    );
    if is_transient(answer.status) || answer.is("Throttling") {
        StepError::transient(msg)
    } else {
        StepError::permanent(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_reads_every_tag_in_order_and_unescapes() {
        let xml = "<R><AccessKeyId>A1</AccessKeyId><x/><AccessKeyId>A&amp;2</AccessKeyId></R>";
        assert_eq!(values(xml, "AccessKeyId"), ["A1", "A&2"]);
        assert!(values(xml, "Code").is_empty());
    }
}
