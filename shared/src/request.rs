//! The rules every entry point (API, CLI) applies to a provisioning
//! request: the same fields are refused with the same messages.

use crate::model::{AdminContact, ProvisionParams};
use crate::tenant::TenantKey;

pub const MAX_DOMAINS: usize = 20;

/// A refused field, named as the API's JSON body names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A provisioning request as it arrives, not yet trusted.
#[derive(Debug, Clone, Default)]
pub struct ProvisionRequest {
    pub name: String,
    pub plan: Option<String>,
    pub domains: Vec<String>,
    pub admin: Option<AdminContact>,
}

pub fn valid_domain(d: &str) -> bool {
    (1..=253).contains(&d.len())
        && d.split('.').all(|label| {
            let b = label.as_bytes();
            (1..=63).contains(&b.len())
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

pub fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    let Some((host, tld)) = domain.rsplit_once('.') else {
        return false;
    };
    e.len() <= 254
        && (1..=64).contains(&local.len())
        && local
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._%+-".contains(&c))
        && (1..=180).contains(&host.len())
        && host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
        && (2..=24).contains(&tld.len())
        && tld.bytes().all(|c| c.is_ascii_alphabetic())
}

pub fn valid_person_name(n: &str) -> bool {
    // char::is_control is exactly C0, DEL and C1: the pattern's classes.
    (1..=100).contains(&n.chars().count())
        && !n.chars().any(char::is_control)
        && !n.trim().is_empty()
}

pub fn valid_plan(p: &str) -> bool {
    (1..=64).contains(&p.len())
        && p.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl ProvisionRequest {
    /// The typed request, or every invalid field named.
    pub fn parse(self) -> Result<(TenantKey, ProvisionParams), Vec<FieldError>> {
        let mut errors = Vec::new();
        let key = TenantKey::parse(&self.name)
            .map_err(|e| errors.push(FieldError::new("name", e.to_string())))
            .ok();
        if let Some(plan) = &self.plan
            && !valid_plan(plan)
        {
            errors.push(FieldError::new(
                "plan",
                "plan must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-'",
            ));
        }
        if self.domains.len() > MAX_DOMAINS {
            errors.push(FieldError::new(
                "domains",
                format!("at most {MAX_DOMAINS} domains"),
            ));
        }
        for (i, d) in self.domains.iter().enumerate().take(MAX_DOMAINS) {
            if !valid_domain(d) {
                errors.push(FieldError::new(
                    format!("domains[{i}]"),
                    "must be a lowercase host name such as acme.example.com",
                ));
            }
        }
        if let Some(a) = &self.admin {
            if !valid_email(&a.email) {
                errors.push(FieldError::new("admin.email", "must be an email address"));
            }
            for (field, v) in [
                ("admin.firstName", &a.first_name),
                ("admin.lastName", &a.last_name),
            ] {
                if !valid_person_name(v) {
                    errors.push(FieldError::new(
                        field,
                        "must be 1 to 100 characters without control characters",
                    ));
                }
            }
        }
        match key {
            Some(key) if errors.is_empty() => Ok((
                key,
                ProvisionParams {
                    plan: self.plan,
                    domains: self.domains,
                    admin: self.admin,
                },
            )),
            _ => Err(errors),
        }
    }
}
