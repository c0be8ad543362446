//! Seed 004's signup, steps 1–3: `POST /leads` (public, rate-limited)
//! records who signs up and sends them a verification token through the
//! notification channels; `POST /leads/{id}/verify` with that token answers
//! a 15-minute signed token bound to the lead; `POST /leads/{id}/tenants`
//! with it creates the tenant, `pending_provision`, once. Step 4 is an
//! operator's `POST /tenants/{id}/provision` (`pending.rs`).

use crate::AppState;
use crate::auth::bearer;
use crate::auth::tokens::{hash, random_secret};
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::extract::{ApiPath, JsonBody};
use crate::input::Domain;
use crate::lead_token::{LeadTokens, TokenCheck};
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Duration, Utc};
use landlord_shared::request::{valid_domain, valid_email, valid_person_name};
use landlord_shared::secrets::SecretStore;
use landlord_shared::store::{self, LeadTenant, NewLead};
use landlord_shared::tenant::TenantKey;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::SocketAddr;
use utoipa::ToSchema;
use uuid::Uuid;

/// How long an unverified lead can be verified.
pub const VERIFY_WITHIN: Duration = Duration::hours(24);
/// The window the rate limits count leads in.
const WINDOW: Duration = Duration::hours(1);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateLead {
    #[schema(max_length = 254, example = "admin@newcompany.com")]
    pub email: String,
    #[schema(min_length = 1, max_length = 100, example = "John")]
    pub first_name: String,
    #[schema(min_length = 1, max_length = 100, example = "Doe")]
    pub last_name: String,
    #[schema(min_length = 1, max_length = 200, example = "New Company Inc")]
    pub company_name: String,
    pub address: Address,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// ISO 3166-1 alpha-2.
    #[schema(pattern = "^[A-Z]{2}$", example = "US")]
    pub country: String,
    #[schema(min_length = 1, max_length = 200, example = "123 Main St")]
    pub address: String,
    #[schema(min_length = 1, max_length = 100, example = "San Francisco")]
    pub city: String,
    #[schema(max_length = 100, example = "CA")]
    pub state: Option<String>,
    #[schema(min_length = 1, max_length = 20, example = "94102")]
    pub zip: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeadCreated {
    pub id: Uuid,
    /// The verification token is sent to the email address, not here.
    pub verification_expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeadVerified {
    pub id: Uuid,
    /// Creates the lead's tenant (`POST /leads/{id}/tenants`), once.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLeadTenant {
    /// Tenant key.
    #[schema(pattern = "^[a-z0-9]{3,30}$", example = "newcompany")]
    pub key: String,
    #[schema(max_items = 20, example = json!(["newcompany.com"]))]
    pub domains: Option<Vec<Domain>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// `admin`: the tenant's first administrator.
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PendingTenant {
    pub id: Uuid,
    pub key: String,
    /// The lead's company.
    pub name: String,
    /// `pending_provision` until an operator starts provisioning.
    pub status: String,
    pub domains: Vec<String>,
    pub contacts: Vec<Contact>,
}

fn text_ok(s: &str, max: usize) -> bool {
    !s.trim().is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
}

impl CreateLead {
    fn validate(&self) -> Result<(), ApiError> {
        let a = &self.address;
        let checks: [(&str, bool, &str); 9] = [
            (
                "email",
                valid_email(&self.email),
                "not a valid email address",
            ),
            (
                "firstName",
                valid_person_name(&self.first_name),
                "1 to 100 characters, no control characters",
            ),
            (
                "lastName",
                valid_person_name(&self.last_name),
                "1 to 100 characters, no control characters",
            ),
            (
                "companyName",
                text_ok(&self.company_name, 200),
                "1 to 200 characters, no control characters",
            ),
            (
                "address.country",
                a.country.len() == 2 && a.country.bytes().all(|b| b.is_ascii_uppercase()),
                "an ISO 3166-1 alpha-2 code such as US",
            ),
            (
                "address.address",
                text_ok(&a.address, 200),
                "1 to 200 characters, no control characters",
            ),
            (
                "address.city",
                text_ok(&a.city, 100),
                "1 to 100 characters, no control characters",
            ),
            (
                "address.state",
                a.state
                    .as_deref()
                    .is_none_or(|s| s.is_empty() || text_ok(s, 100)),
                "at most 100 characters, no control characters",
            ),
            (
                "address.zip",
                text_ok(&a.zip, 20),
                "1 to 20 characters, no control characters",
            ),
        ];
        let errors: Vec<FieldError> = checks
            .into_iter()
            .filter(|(_, ok, _)| !ok)
            .map(|(field, _, msg)| FieldError::new(field, msg))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

/// The request's peer address ("unknown" when served without one, as in
/// an in-process router).
pub struct ClientAddr(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string()),
        ))
    }
}

fn lead_tokens(state: &AppState) -> ApiResult<&LeadTokens> {
    state.cfg.lead_tokens.as_ref().ok_or(ApiError::Unavailable(
        "LANDLORD_SECRET_KEY is not set on this API",
    ))
}

fn verification_ref(lead: Uuid) -> String {
    format!("leads/{lead}/verification")
}

/// Seconds until the oldest lead counted leaves the window.
fn retry_after(oldest: Option<DateTime<Utc>>) -> u64 {
    oldest.map_or(1, |t| {
        u64::try_from((t + WINDOW - Utc::now()).num_seconds().max(1)).unwrap_or(1)
    })
}

fn lead_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("lead".into()))
}

/// Sign up: record a lead and send its verification token
///
/// Public. The token goes to the email address through the notification
/// channels (event `lead.verification_requested`), never into the answer
/// or a log. Rate-limited per client address and per email address (429
/// with `Retry-After`).
#[utoipa::path(
    post, path = "/leads", tag = "signup", operation_id = "createLead",
    request_body = CreateLead,
    responses(
        (status = 201, body = LeadCreated),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many leads from this client or for this email address", body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    JsonBody(body): JsonBody<CreateLead>,
) -> ApiResult<(StatusCode, Json<LeadCreated>)> {
    body.validate()?;
    let store = state.cfg.secrets.as_ref().ok_or(ApiError::Unavailable(
        "LANDLORD_SECRET_KEY is not set on this API",
    ))?;
    let limits = &state.cfg.lead_limits;
    let mut tx = state.pool.begin().await?;
    // One signup at a time per email address and client, so that the
    // counts below cannot be raced past.
    store::lock_signup(&mut tx, &body.email, &client).await?;
    let recent = store::recent_leads(&mut *tx, &body.email, &client, Utc::now() - WINDOW).await?;
    if recent.by_email >= limits.per_email {
        return Err(ApiError::TooManyRequests {
            what: "too many signups for this email address",
            retry_after: retry_after(recent.oldest_by_email),
        });
    }
    if recent.by_client >= limits.per_client {
        return Err(ApiError::TooManyRequests {
            what: "too many signups from this address",
            retry_after: retry_after(recent.oldest_by_client),
        });
    }
    let id = Uuid::now_v7();
    let token = random_secret();
    let expires_at = Utc::now() + VERIFY_WITHIN;
    let address = serde_json::to_value(&body.address).map_err(|e| ApiError::Internal(e.into()))?;
    store::insert_lead(
        &mut *tx,
        &NewLead {
            id,
            email: &body.email,
            first_name: &body.first_name,
            last_name: &body.last_name,
            company_name: &body.company_name,
            address: &address,
            client_addr: &client,
            verification_hash: &hash(&token),
            expires_at,
        },
    )
    .await?;
    store
        .put(&mut *tx, &verification_ref(id), &SecretString::from(token))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let payload = json!({
        "leadId": id,
        "email": body.email,
        "firstName": body.first_name,
        "lastName": body.last_name,
        "companyName": body.company_name,
        "verificationTokenRef": verification_ref(id),
        "verifyUrl": format!("/leads/{id}/verify"),
        "expiresAt": expires_at,
    });
    store::insert_lead_event(
        &mut tx,
        state.cfg.outbox,
        id,
        "lead.verification_requested",
        &payload,
    )
    .await
    .map_err(|e| match e {
        store::OutboxError::Db(e) => ApiError::from(e),
        store::OutboxError::Queue(e) => ApiError::Internal(e.into()),
    })?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(LeadCreated {
            id,
            verification_expires_at: expires_at,
        }),
    ))
}

/// Verify a lead's email address
///
/// `Authorization: Bearer <verification token>` (the one sent by email).
/// Answers a token, valid 15 minutes, that creates the lead's tenant. A
/// wrong, used or expired verification token is 401.
#[utoipa::path(
    post, path = "/leads/{id}/verify", tag = "signup", operation_id = "verifyLead",
    params(("id" = String, Path, description = "Lead UUID")),
    responses(
        (status = 200, body = LeadVerified),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn verify(
    State(state): State<AppState>,
    ApiPath(raw): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Json<LeadVerified>> {
    let token = bearer(&headers)?;
    let id = lead_id(&raw)?;
    let tokens = lead_tokens(&state)?;
    let lead = store::lead_by_id(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("lead".into()))?;
    if lead.verification_hash != hash(token) {
        return Err(ApiError::Unauthorized("not this lead's verification token"));
    }
    if lead.verified_at.is_some() {
        return Err(ApiError::Unauthorized(
            "the verification token was used already",
        ));
    }
    if !store::verify_lead(&state.pool, id).await? {
        return Err(ApiError::Unauthorized(
            "the verification token expired or was used",
        ));
    }
    // Delivered or not, it can verify nothing any more.
    SecretStore::delete(&state.pool, &verification_ref(id))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let (token, expires_at) = tokens.issue(id);
    Ok(Json(LeadVerified {
        id,
        token,
        expires_at,
    }))
}

/// Create the verified lead's tenant
///
/// `Authorization: Bearer <token from verify>`, once per lead. The tenant
/// waits in `pending_provision`, the lead as its admin contact, until an
/// operator provisions it. 401: expired or used token; 403: another lead's
/// token; 409: the key is taken.
#[utoipa::path(
    post, path = "/leads/{id}/tenants", tag = "signup", operation_id = "createLeadTenant",
    params(("id" = String, Path, description = "Lead UUID")),
    request_body = CreateLeadTenant,
    responses(
        (status = 201, body = PendingTenant),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_tenant(
    State(state): State<AppState>,
    ApiPath(raw): ApiPath<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateLeadTenant>,
) -> ApiResult<(StatusCode, Json<PendingTenant>)> {
    let token = bearer(&headers)?;
    let id = lead_id(&raw)?;
    let tokens = lead_tokens(&state)?;
    match tokens.check(token, id) {
        TokenCheck::Valid => {}
        TokenCheck::Foreign => {
            return Err(ApiError::Forbidden(
                "the token belongs to another lead".into(),
            ));
        }
        TokenCheck::Invalid => {
            return Err(ApiError::Unauthorized("invalid or expired lead token"));
        }
    }
    let lead = store::lead_by_id(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("lead".into()))?;
    if lead.tenant_id.is_some() {
        return Err(ApiError::Unauthorized("the lead token was used already"));
    }
    let key = TenantKey::parse(&body.key).map_err(|e| ApiError::field("key", e.to_string()))?;
    let domains: Vec<String> = body
        .domains
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.0)
        .collect();
    let mut bad: Vec<FieldError> = domains
        .iter()
        .enumerate()
        .filter(|(_, d)| !valid_domain(d))
        .map(|(i, _)| FieldError::new(format!("domains[{i}]"), "not a valid host name"))
        .collect();
    if domains.len() > 20 {
        bad.push(FieldError::new("domains", "at most 20 domains"));
    }
    if !bad.is_empty() {
        return Err(ApiError::Validation(bad));
    }
    let mut tx = state.pool.begin().await?;
    let tenant_id = match store::create_lead_tenant(&mut tx, id, key.as_str(), &domains).await? {
        LeadTenant::Created(tenant_id) => tenant_id,
        LeadTenant::KeyTaken => {
            return Err(ApiError::Conflict(format!(
                "the tenant key '{key}' is taken"
            )));
        }
        LeadTenant::AlreadyUsed => {
            return Err(ApiError::Unauthorized("the lead token was used already"));
        }
    };
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(PendingTenant {
            id: tenant_id,
            key: key.to_string(),
            name: lead.company_name,
            status: "pending_provision".into(),
            domains,
            contacts: vec![Contact {
                email: lead.email,
                first_name: lead.first_name,
                last_name: lead.last_name,
                kind: "admin".into(),
            }],
        }),
    ))
}
