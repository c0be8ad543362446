//! Identity step (Keycloak): realm `{prefix}-{tenant}` from the realm
//! template, client `{tenant}-app` (PKCE S256, redirect URIs from the
//! tenant's domains), admin user with `realm-admin`. Undo deletes the realm.
//!
//! The realm carries attribute `landlord.tenant` = the tenant's id, set in
//! the create request. An existing realm is ours only with that attribute
//! (or, unmarked, with our claim on its name); anyone else's is refused at
//! create and left alone by undo.
//!
//! A plan in `organization` mode uses `identity_org` instead.

use super::claim;
use crate::clients::keycloak::Keycloak;
use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use landlord_shared::catalogue::IdentityMode;
use landlord_shared::model::AdminContact;
use landlord_shared::secrets::{SecretStore, admin_secret_ref, generate_password};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

pub struct Identity;

pub(super) const OWNER_ATTRIBUTE: &str = "landlord.tenant";
const DEFAULT_TEMPLATE: &str = include_str!("../../../deploy/keycloak/realm-template.json");

pub(super) fn keycloak(ctx: &StepCtx) -> Result<&Keycloak, StepError> {
    ctx.deps
        .keycloak
        .as_ref()
        .ok_or_else(|| StepError::permanent("KEYCLOAK_BASE_URL is not configured"))
}

pub(super) fn secrets(ctx: &StepCtx) -> Result<&SecretStore, StepError> {
    ctx.deps
        .secrets
        .as_ref()
        .ok_or_else(|| StepError::permanent("LANDLORD_SECRET_KEY is not configured"))
}

pub(super) async fn realm_template(ctx: &StepCtx) -> Result<Value, StepError> {
    let text = match ctx
        .deps
        .cfg
        .keycloak
        .as_ref()
        .and_then(|k| k.realm_template_path.as_ref())
    {
        Some(path) => tokio::fs::read_to_string(path)
            .await
            .map_err(|e| StepError::permanent(format!("realm template {}: {e}", path.display())))?,
        None => DEFAULT_TEMPLATE.to_owned(),
    };
    serde_json::from_str(&text)
        .map_err(|e| StepError::permanent(format!("realm template is not JSON: {e}")))
}

/// How the run's plan gives the tenant its identity; runs from before
/// plans had realms. A deprovisioning run carries its tenant's plan.
pub(super) fn mode(ctx: &StepCtx) -> IdentityMode {
    ctx.run
        .plan
        .as_ref()
        .map_or(IdentityMode::Realm, |p| p.0.identity)
}

/// The admin the signup named, or a placeholder on the tenant's first domain.
pub(super) fn admin_of(ctx: &StepCtx) -> AdminContact {
    ctx.run
        .params
        .admin
        .clone()
        .unwrap_or_else(|| AdminContact {
            email: format!(
                "admin@{}",
                ctx.run
                    .params
                    .domains
                    .first()
                    .cloned()
                    .unwrap_or_else(|| format!("{}.example.com", ctx.key))
            ),
            first_name: "Tenant".into(),
            last_name: "Admin".into(),
        })
}

/// What is known of realm `realm`: absent, ours (our attribute), or there
/// without our attribute (with the representation, for a takeover).
pub(super) enum RealmOwner {
    Absent,
    Ours,
    Unmarked(Value),
}

pub(super) async fn owner(
    kc: &Keycloak,
    realm: &str,
    ctx: &StepCtx,
) -> Result<RealmOwner, StepError> {
    let tenant_id = ctx.require_tenant_id()?.to_string();
    let Some(rep) = kc.get_json(&format!("/{realm}")).await? else {
        return Ok(RealmOwner::Absent);
    };
    if rep["attributes"][OWNER_ATTRIBUTE].as_str() == Some(tenant_id.as_str()) {
        return Ok(RealmOwner::Ours);
    }
    Ok(RealmOwner::Unmarked(rep))
}

/// `None` when the realm does not exist; whether it carries our mark.
pub(super) async fn is_ours(
    kc: &Keycloak,
    realm: &str,
    ctx: &StepCtx,
) -> Result<Option<bool>, StepError> {
    Ok(match owner(kc, realm, ctx).await? {
        RealmOwner::Absent => None,
        RealmOwner::Ours => Some(true),
        RealmOwner::Unmarked(_) => Some(false),
    })
}

const REALM_KIND: &str = "keycloak_realm";
const NOT_MARKED: &str = "no landlord.tenant attribute for this tenant";

/// A realm without our attribute is ours only if we claimed its name before
/// creating it and it has no attribute of another tenant: a create of ours
/// that is still committing, or whose attribute was lost. Then we mark it.
async fn adopt_if_claimed(
    kc: &Keycloak,
    realm: &str,
    ctx: &StepCtx,
    mut rep: Value,
) -> Result<(), StepError> {
    let unowned = rep["attributes"][OWNER_ATTRIBUTE].is_null();
    if !(unowned && claim::is_claimed(ctx, REALM_KIND, realm).await?) {
        return Err(claim::foreign(&format!("realm {realm}"), NOT_MARKED));
    }
    let mut attributes = rep["attributes"].take();
    if !attributes.is_object() {
        attributes = json!({});
    }
    attributes[OWNER_ATTRIBUTE] = json!(ctx.require_tenant_id()?.to_string());
    kc.put(&format!("/{realm}"), &json!({ "attributes": attributes }))
        .await?;
    tracing::info!(realm, "marked our half-made realm");
    Ok(())
}

/// Creates the realm with our attribute in the create request itself. The
/// name is claimed first, once it was seen to be absent, so that a realm
/// found later without the attribute can still be told apart.
async fn ensure_realm(kc: &Keycloak, realm: &str, ctx: &StepCtx) -> Result<(), StepError> {
    match owner(kc, realm, ctx).await? {
        RealmOwner::Ours => return Ok(()),
        RealmOwner::Unmarked(rep) => return adopt_if_claimed(kc, realm, ctx, rep).await,
        RealmOwner::Absent => {}
    }
    claim::claim(ctx, REALM_KIND, realm).await?;
    let mut rep = realm_template(ctx).await?;
    rep["realm"] = json!(realm);
    rep["enabled"] = json!(true);
    rep["displayName"] = json!(ctx.key.as_str());
    if !rep["attributes"].is_object() {
        rep["attributes"] = json!({});
    }
    rep["attributes"][OWNER_ATTRIBUTE] = json!(ctx.require_tenant_id()?.to_string());
    if kc.create_realm(&rep).await? {
        return Ok(());
    }
    // Keycloak refused the create as a duplicate but may not show it yet:
    // an earlier attempt's create is still committing. Wait for it within
    // this attempt, so the wait does not use up the retry budget.
    let deadline = std::time::Instant::now() + kc.create_wait();
    loop {
        match owner(kc, realm, ctx).await? {
            RealmOwner::Ours => return Ok(()),
            RealmOwner::Unmarked(rep) => return adopt_if_claimed(kc, realm, ctx, rep).await,
            RealmOwner::Absent if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            RealmOwner::Absent => {
                return Err(StepError::transient(format!(
                    "realm {realm}: an earlier create is still committing"
                )));
            }
        }
    }
}

/// Keycloak 24+ drops user attributes its user profile does not declare.
pub(super) async fn declare_attributes(kc: &Keycloak, realm: &str) -> Result<(), StepError> {
    let path = format!("/{realm}/users/profile");
    let mut profile = kc
        .get_json(&path)
        .await?
        .ok_or_else(|| StepError::transient("user profile not found yet"))?;
    let attrs = profile["attributes"]
        .as_array_mut()
        .ok_or_else(|| StepError::permanent("user profile has no attributes"))?;
    let mut changed = false;
    for name in ["tenantId", "role"] {
        if !attrs.iter().any(|a| a["name"] == name) {
            attrs.push(json!({
                "name": name,
                "displayName": name,
                "permissions": { "view": ["admin"], "edit": ["admin"] },
                "multivalued": false,
            }));
            changed = true;
        }
    }
    if changed {
        kc.put(&path, &profile).await?;
    }
    Ok(())
}

async fn ensure_client(kc: &Keycloak, realm: &str, ctx: &StepCtx) -> Result<String, StepError> {
    let client_id = format!("{}-app", ctx.key);
    let domains = &ctx.run.params.domains;
    let rep = json!({
        "clientId": client_id,
        "name": client_id,
        "protocol": "openid-connect",
        "publicClient": true,
        "standardFlowEnabled": true,
        "directAccessGrantsEnabled": false,
        "redirectUris": domains.iter().map(|d| format!("https://{d}/*")).collect::<Vec<_>>(),
        "webOrigins": domains.iter().map(|d| format!("https://{d}")).collect::<Vec<_>>(),
        "attributes": { "pkce.code.challenge.method": "S256" },
    });
    kc.create(&format!("/{realm}/clients"), &rep).await?;
    Ok(client_id)
}

pub(super) async fn find_user(
    kc: &Keycloak,
    realm: &str,
    username: &str,
) -> Result<Option<String>, StepError> {
    let found = kc
        .get_json(&format!(
            "/{realm}/users?exact=true&username={}",
            url::form_urlencoded::byte_serialize(username.as_bytes()).collect::<String>()
        ))
        .await?
        .unwrap_or_default();
    Ok(found
        .as_array()
        .and_then(|a| a.first())
        .and_then(|u| u["id"].as_str())
        .map(str::to_owned))
}

/// Creates the tenant's admin user in `realm` with a fresh password,
/// stored at `secret_ref` first so the stored one is always the one that
/// works; found after a crash, it is updated and given that password.
/// Its username and id.
pub(super) async fn put_admin(
    kc: &Keycloak,
    realm: &str,
    ctx: &StepCtx,
    secret_ref: &str,
    shared: bool,
) -> Result<(String, String), StepError> {
    let admin = admin_of(ctx);
    let username = admin.email.to_lowercase();
    let tenant_id = ctx.require_tenant_id()?;
    let password = generate_password(24);
    secrets(ctx)?
        .put(&ctx.deps.master, secret_ref, &password)
        .await
        .map_err(StepError::transient)?;
    let credential =
        json!({ "type": "password", "value": password.expose_secret(), "temporary": false });
    let rep = json!({
        "username": username,
        "email": admin.email,
        "firstName": admin.first_name,
        "lastName": admin.last_name,
        "enabled": true,
        "emailVerified": true,
        "attributes": { "tenantId": [tenant_id.to_string()], "role": ["admin"] },
        "credentials": [credential],
    });
    // In a shared realm a username is everyone's: one that exists is ours
    // (an earlier attempt's) only with this tenant's id.
    let owner = shared.then(|| tenant_id.to_string());
    let user_id = upsert_user(kc, realm, &username, &rep, &credential, owner).await?;
    Ok((username, user_id))
}

/// Creates user `rep` (or, found after a crash, updates it and sets the
/// password in `credential` again): its id. With `owner`, an existing user
/// without that `tenantId` is refused before it is touched.
async fn upsert_user(
    kc: &Keycloak,
    realm: &str,
    username: &str,
    rep: &Value,
    credential: &Value,
    owner: Option<String>,
) -> Result<String, StepError> {
    let created = kc.create(&format!("/{realm}/users"), rep).await?;
    // Looked up even when just created, as before `Location` was read
    // elsewhere: in a suite run on a Keycloak holding ~500 realms, role
    // mappings right after creates failed with a NullPointerException in
    // Keycloak's role cache. Which of the two caused it is not known, so the
    // realm path keeps the sequence that ran clean for weeks.
    let user_id = find_user(kc, realm, username)
        .await?
        .ok_or_else(|| StepError::transient("admin user not visible yet"))?;
    if created {
        return Ok(user_id);
    }
    if let Some(owner) = owner {
        let found = kc
            .get_json(&format!("/{realm}/users/{user_id}"))
            .await?
            .unwrap_or_default();
        if found["attributes"]["tenantId"][0].as_str() != Some(owner.as_str()) {
            return Err(claim::foreign(
                &format!("user {username} in realm {realm}"),
                "it belongs to another tenant",
            ));
        }
    }
    kc.put(&format!("/{realm}/users/{user_id}"), rep).await?;
    kc.put(
        &format!("/{realm}/users/{user_id}/reset-password"),
        credential,
    )
    .await?;
    Ok(user_id)
}

/// Creates the admin (or finds it after a crash) and sets a fresh password
/// that is stored first, so the stored one is always the one that works.
async fn ensure_admin(
    kc: &Keycloak,
    realm: &str,
    ctx: &StepCtx,
) -> Result<(String, String), StepError> {
    let (username, user_id) = put_admin(kc, realm, ctx, &admin_secret_ref(realm), false).await?;
    let mgmt = kc
        .get_json(&format!("/{realm}/clients?clientId=realm-management"))
        .await?
        .and_then(|v| v[0]["id"].as_str().map(str::to_owned))
        .ok_or_else(|| StepError::transient("realm-management client not found"))?;
    let role = kc
        .get_json(&format!("/{realm}/clients/{mgmt}/roles/realm-admin"))
        .await?
        .ok_or_else(|| StepError::transient("realm-admin role not found"))?;
    kc.post(
        &format!("/{realm}/users/{user_id}/role-mappings/clients/{mgmt}"),
        &json!([role]),
    )
    .await?;
    Ok((username, user_id))
}

#[async_trait]
impl Step for Identity {
    fn name(&self) -> &'static str {
        "identity"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        if mode(ctx) == IdentityMode::Organization {
            return super::identity_org::run(ctx).await;
        }
        let kc = keycloak(ctx)?;
        let realm = ctx.names.realm();
        ensure_realm(kc, &realm, ctx).await?;
        declare_attributes(kc, &realm).await?;
        let client_id = ensure_client(kc, &realm, ctx).await?;
        let (username, user_id) = ensure_admin(kc, &realm, ctx).await?;
        Ok(json!({
            "realm": realm,
            "client_id": client_id,
            "admin_username": username,
            "admin_user_id": user_id,
            "admin_secret_ref": admin_secret_ref(&realm),
            "login_url": format!("{}/realms/{realm}/account", kc.base_url()),
            "resources": [
                { "kind": "keycloak_realm", "name": realm },
                { "kind": "keycloak_client", "name": client_id },
                { "kind": "keycloak_user", "name": username },
            ],
        }))
    }

    async fn compensate(&self, ctx: &StepCtx, _: Option<&Value>) -> Result<(), StepError> {
        if mode(ctx) == IdentityMode::Organization {
            return super::identity_org::compensate(ctx).await;
        }
        let kc = keycloak(ctx)?;
        let realm = ctx.names.realm();
        match owner(kc, &realm, ctx).await? {
            RealmOwner::Ours => kc.delete(&format!("/{realm}")).await?,
            RealmOwner::Unmarked(rep) => {
                // Our half-made realm (claimed, no one's attribute) goes
                // only while it holds no users.
                let half_made = rep["attributes"][OWNER_ATTRIBUTE].is_null()
                    && claim::is_claimed(ctx, REALM_KIND, &realm).await?
                    && kc
                        .get_json(&format!("/{realm}/users/count"))
                        .await?
                        .and_then(|n| n.as_u64())
                        == Some(0);
                if half_made {
                    kc.delete(&format!("/{realm}")).await?;
                } else {
                    claim::left_alone(ctx, REALM_KIND, &realm, NOT_MARKED);
                }
            }
            RealmOwner::Absent => {}
        }
        if is_ours(kc, &realm, ctx).await?.is_none() {
            claim::release(ctx, REALM_KIND, &realm).await?;
        }
        SecretStore::delete(&ctx.deps.master, &admin_secret_ref(&realm))
            .await
            .map_err(StepError::transient)
    }
}
