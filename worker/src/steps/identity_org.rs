//! Identity in `organization` mode: tenants by the thousand share one realm
//! per deployment, `{prefix}_shared`, with Keycloak Organizations enabled.
//! A realm takes seconds to create and Keycloak slows past a few hundred of
//! them; an organization takes tens of milliseconds.
//!
//! The shared realm is created once, from the realm template, with
//! attribute `landlord.shared` = the name prefix in the create request; a
//! realm of that name without it is someone else's and refused. Per tenant:
//! an organization (name and alias the tenant key, the tenant's domains),
//! the client `{tenant}-app` with the `organization` scope by default, and
//! the admin user as a member of the organization and nothing more — no
//! `realm-admin`, since that would administer every tenant of the realm.
//! Each carries the tenant's id (`landlord.tenant` on the organization and
//! the client, `tenantId` on the user), set in its create request, so a
//! create is never half-marked: what exists without our id is not ours.

use super::claim;
use super::identity::{
    OWNER_ATTRIBUTE, admin_of, declare_attributes, find_user, keycloak, put_admin, realm_template,
};
use crate::clients::keycloak::Keycloak;
use crate::step::{StepCtx, StepError};
use landlord_shared::secrets::SecretStore;
use serde_json::{Value, json};
use url::form_urlencoded::byte_serialize;

const SHARED_ATTRIBUTE: &str = "landlord.shared";
const ORG_KIND: &str = "keycloak_organization";
const SHARED_REALM_KIND: &str = "keycloak_shared_realm";
const NOT_MARKED: &str = "no landlord.tenant attribute for this tenant";

fn enc(s: &str) -> String {
    byte_serialize(s.as_bytes()).collect()
}

/// Where the tenant admin's initial password is kept: per tenant, since
/// the realm is everyone's.
pub fn admin_secret_ref(realm: &str, tenant: &str) -> String {
    format!("keycloak/{realm}/org/{tenant}/admin")
}

/// Whether realm `rep` is this deployment's shared realm.
fn is_shared_realm(rep: &Value, prefix: &str) -> bool {
    rep["attributes"][SHARED_ATTRIBUTE].as_str() == Some(prefix)
}

/// The shared realm, created on first use. Concurrent first tenants all
/// try; the losers wait, within the attempt, for the winner's realm. A
/// realm shows before its attributes do while its create commits, so one
/// without our attribute is waited for when this deployment claimed its
/// name (the claim is taken before any create), and refused otherwise.
/// Shared realms this process checked lately (ours, attributes declared),
/// by Keycloak and realm, with when, and their `organization` client
/// scope: each tenant's create then costs no realm read. A realm deleted
/// since is noticed by the 404 of the organization's create.
static CHECKED: std::sync::Mutex<Vec<(String, String, std::time::Instant, String)>> =
    std::sync::Mutex::new(Vec::new());

/// How long a check of the shared realm holds.
const RECHECK_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

fn checked(kc: &Keycloak, realm: &str) -> Option<String> {
    let list = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    list.iter()
        .find(|(base, r, at, _)| {
            base == kc.base_url() && r == realm && at.elapsed() < RECHECK_AFTER
        })
        .map(|(.., scope)| scope.clone())
}

fn set_checked(kc: &Keycloak, realm: &str, scope: Option<String>) {
    let mut list = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    list.retain(|(base, r, ..)| !(base == kc.base_url() && r == realm));
    if let Some(scope) = scope {
        list.push((
            kc.base_url().to_owned(),
            realm.to_owned(),
            std::time::Instant::now(),
            scope,
        ));
    }
}

/// The shared realm, checked (or made) at most once a minute per process,
/// and the id of its `organization` client scope.
async fn shared_realm(kc: &Keycloak, ctx: &StepCtx) -> Result<(String, String), StepError> {
    let realm = ctx.names.shared_realm();
    if let Some(scope) = checked(kc, &realm) {
        return Ok((realm, scope));
    }
    ensure_shared_realm(kc, ctx).await?;
    let scope = kc
        .get_json(&format!("/{realm}/client-scopes"))
        .await?
        .and_then(|all| {
            all.as_array()?
                .iter()
                .find(|s| s["name"] == "organization")
                .and_then(|s| s["id"].as_str().map(str::to_owned))
        })
        .ok_or_else(|| StepError::permanent(format!("realm {realm} has no organization scope")))?;
    set_checked(kc, &realm, Some(scope.clone()));
    Ok((realm, scope))
}

async fn ensure_shared_realm(kc: &Keycloak, ctx: &StepCtx) -> Result<String, StepError> {
    let realm = ctx.names.shared_realm();
    let prefix = ctx.deps.cfg.name_prefix.as_str();
    let mut created = false;
    let deadline = std::time::Instant::now() + kc.create_wait();
    loop {
        match kc.get_json(&format!("/{realm}")).await? {
            Some(rep) if is_shared_realm(&rep, prefix) => break,
            Some(_) if !claim::is_claimed_shared(ctx, SHARED_REALM_KIND, &realm).await? => {
                return Err(claim::foreign(
                    &format!("realm {realm}"),
                    "no landlord.shared attribute for this deployment",
                ));
            }
            None if !created => {
                claim::claim_shared(ctx, SHARED_REALM_KIND, &realm).await?;
                let mut rep = realm_template(ctx).await?;
                rep["realm"] = json!(realm);
                rep["enabled"] = json!(true);
                rep["displayName"] = json!("Tenants");
                rep["organizationsEnabled"] = json!(true);
                if !rep["attributes"].is_object() {
                    rep["attributes"] = json!({});
                }
                rep["attributes"][SHARED_ATTRIBUTE] = json!(prefix);
                if kc.create_realm(&rep).await? {
                    tracing::info!(realm, "created the shared realm");
                }
                created = true;
                continue;
            }
            // Claimed and committing, ours or another tenant's create.
            _ if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            _ => {
                return Err(StepError::transient(format!(
                    "realm {realm}: its create is still committing"
                )));
            }
        }
    }
    // Every time: a user's tenantId is dropped unless the realm's user
    // profile declares it, and the realm's creator may have died before
    // declaring it.
    declare_attributes(kc, &realm).await?;
    Ok(realm)
}

/// The organization carrying this tenant's id, if any.
async fn our_org(kc: &Keycloak, realm: &str, ctx: &StepCtx) -> Result<Option<Value>, StepError> {
    let id = ctx.require_tenant_id()?;
    let found = kc
        .get_json(&format!(
            "/{realm}/organizations?q={}&briefRepresentation=false&max=2",
            enc(&format!("{OWNER_ATTRIBUTE}:{id}"))
        ))
        .await?;
    Ok(first(found))
}

/// The organization named like the tenant, whoever's it is.
async fn org_named(kc: &Keycloak, realm: &str, name: &str) -> Result<Option<Value>, StepError> {
    let found = kc
        .get_json(&format!(
            "/{realm}/organizations?search={}&exact=true&briefRepresentation=false",
            enc(name)
        ))
        .await?;
    Ok(first(found))
}

fn first(list: Option<Value>) -> Option<Value> {
    list.and_then(|v| v.as_array().and_then(|a| a.first().cloned()))
}

fn id_of(rep: &Value) -> Result<String, StepError> {
    rep["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| StepError::transient("keycloak answered an object without an id"))
}

/// Creates the organization, marked in its create request: a 201 is ours;
/// a 409 is ours from an earlier attempt (found by our id) or someone
/// else's.
async fn ensure_org(kc: &Keycloak, realm: &str, ctx: &StepCtx) -> Result<String, StepError> {
    let key = ctx.key.as_str();
    let rep = json!({
        "name": key,
        "alias": key,
        "description": format!("Tenant {key}"),
        "domains": ctx.run.params.domains.iter()
            .map(|d| json!({ "name": d, "verified": true }))
            .collect::<Vec<_>>(),
        "attributes": { OWNER_ATTRIBUTE: [ctx.require_tenant_id()?.to_string()] },
    });
    let path = format!("/{realm}/organizations");
    let created = match kc.send(reqwest::Method::POST, &path, Some(&rep)).await? {
        r if r.status() == reqwest::StatusCode::NOT_FOUND => {
            // The shared realm went away since this process checked it.
            set_checked(kc, realm, None);
            return Err(StepError::transient(format!("realm {realm} is gone")));
        }
        r if r.status() == reqwest::StatusCode::CONFLICT => None,
        r if r.status().is_success() => crate::clients::keycloak::location_id(&r),
        r => return Err(crate::clients::http::unexpected(&format!("POST {path}"), r).await),
    };
    if let Some(id) = created {
        return Ok(id);
    }
    match our_org(kc, realm, ctx).await? {
        Some(org) => id_of(&org),
        None if org_named(kc, realm, key).await?.is_some() => Err(claim::foreign(
            &format!("organization {key} in realm {realm}"),
            NOT_MARKED,
        )),
        None => Err(StepError::transient(format!(
            "organization {key} not visible yet"
        ))),
    }
}

/// The client `{tenant}-app`, marked with the tenant's id, with the
/// `organization` scope by default so its tokens name the organization.
async fn ensure_client(
    kc: &Keycloak,
    realm: &str,
    scope: &str,
    ctx: &StepCtx,
) -> Result<String, StepError> {
    let client_id = format!("{}-app", ctx.key);
    let tenant_id = ctx.require_tenant_id()?.to_string();
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
        "attributes": { "pkce.code.challenge.method": "S256", OWNER_ATTRIBUTE: tenant_id },
    });
    // Marked in its create request: a 201 is ours, a 409 ours from an
    // earlier attempt only with our id.
    let cid = match kc
        .create_located(&format!("/{realm}/clients"), &rep)
        .await?
    {
        Some(cid) => cid,
        None => {
            let client = client_named(kc, realm, &client_id).await?.ok_or_else(|| {
                StepError::transient(format!("client {client_id} not visible yet"))
            })?;
            if client["attributes"][OWNER_ATTRIBUTE].as_str() != Some(tenant_id.as_str()) {
                return Err(claim::foreign(
                    &format!("client {client_id} in realm {realm}"),
                    NOT_MARKED,
                ));
            }
            id_of(&client)?
        }
    };
    kc.delete(&format!(
        "/{realm}/clients/{cid}/optional-client-scopes/{scope}"
    ))
    .await?;
    kc.put(
        &format!("/{realm}/clients/{cid}/default-client-scopes/{scope}"),
        &json!({}),
    )
    .await?;
    Ok(client_id)
}

async fn client_named(
    kc: &Keycloak,
    realm: &str,
    client_id: &str,
) -> Result<Option<Value>, StepError> {
    Ok(first(
        kc.get_json(&format!("/{realm}/clients?clientId={}", enc(client_id)))
            .await?,
    ))
}

/// Whether user `rep` is this tenant's (its `tenantId` attribute).
fn user_is_ours(rep: &Value, tenant_id: &str) -> bool {
    rep["attributes"]["tenantId"][0].as_str() == Some(tenant_id)
}

/// The admin user, created with a fresh password (stored first) or found
/// after a crash; a user of that name of another tenant is refused: in a
/// shared realm a username is everyone's.
async fn ensure_admin(
    kc: &Keycloak,
    realm: &str,
    ctx: &StepCtx,
    org: &str,
) -> Result<(String, String), StepError> {
    let (username, user_id) = put_admin(
        kc,
        realm,
        ctx,
        &admin_secret_ref(realm, ctx.key.as_str()),
        true,
    )
    .await?;
    // 409: a member already, from an earlier attempt.
    kc.create(
        &format!("/{realm}/organizations/{org}/members"),
        &json!(user_id),
    )
    .await?;
    Ok((username, user_id))
}

pub(super) async fn run(ctx: &StepCtx) -> Result<Value, StepError> {
    let kc = keycloak(ctx)?;
    let (realm, scope) = shared_realm(kc, ctx).await?;
    let org = ensure_org(kc, &realm, ctx).await?;
    let client_id = ensure_client(kc, &realm, &scope, ctx).await?;
    let (username, user_id) = ensure_admin(kc, &realm, ctx, &org).await?;
    let key = ctx.key.as_str();
    Ok(json!({
        "mode": "organization",
        "realm": realm,
        "organization": key,
        "organization_id": org,
        "client_id": client_id,
        "admin_username": username,
        "admin_user_id": user_id,
        "admin_secret_ref": admin_secret_ref(&realm, key),
        "login_url": format!("{}/realms/{realm}/account", kc.base_url()),
        "resources": [
            { "kind": ORG_KIND, "name": key },
            { "kind": "keycloak_client", "name": client_id },
            { "kind": "keycloak_user", "name": username },
        ],
    }))
}

/// Deletes what carries the tenant's id — organization, client, admin user
/// — and leaves the realm and everything else in it.
pub(super) async fn compensate(ctx: &StepCtx) -> Result<(), StepError> {
    let kc = keycloak(ctx)?;
    let realm = ctx.names.shared_realm();
    let key = ctx.key.as_str();
    let tenant_id = ctx.require_tenant_id()?.to_string();
    let shared = kc
        .get_json(&format!("/{realm}"))
        .await?
        .is_some_and(|rep| is_shared_realm(&rep, ctx.deps.cfg.name_prefix.as_str()));
    if shared {
        match our_org(kc, &realm, ctx).await? {
            Some(org) => {
                kc.delete(&format!("/{realm}/organizations/{}", id_of(&org)?))
                    .await?;
            }
            None if org_named(kc, &realm, key).await?.is_some() => {
                claim::left_alone(ctx, ORG_KIND, key, NOT_MARKED);
            }
            None => {}
        }
        let client_id = format!("{key}-app");
        if let Some(client) = client_named(kc, &realm, &client_id).await? {
            if client["attributes"][OWNER_ATTRIBUTE].as_str() == Some(tenant_id.as_str()) {
                kc.delete(&format!("/{realm}/clients/{}", id_of(&client)?))
                    .await?;
            } else {
                claim::left_alone(ctx, "keycloak_client", &client_id, NOT_MARKED);
            }
        }
        let username = admin_of(ctx).email.to_lowercase();
        if let Some(id) = find_user(kc, &realm, &username).await? {
            let rep = kc
                .get_json(&format!("/{realm}/users/{id}"))
                .await?
                .unwrap_or_default();
            if user_is_ours(&rep, &tenant_id) {
                kc.delete(&format!("/{realm}/users/{id}")).await?;
            } else {
                claim::left_alone(ctx, "keycloak_user", &username, "another tenant's user");
            }
        }
    }
    SecretStore::delete(&ctx.deps.master, &admin_secret_ref(&realm, key))
        .await
        .map_err(StepError::transient)
}

/// Soft deprovisioning: the admin user is disabled (or enabled again), so
/// no one of the tenant signs in; the organization stays with its members.
pub(super) async fn set_enabled(ctx: &StepCtx, enabled: bool) -> Result<Value, StepError> {
    let kc = keycloak(ctx)?;
    let realm = ctx.names.shared_realm();
    let tenant_id = ctx.require_tenant_id()?.to_string();
    let Some(org) = our_org(kc, &realm, ctx).await? else {
        return Ok(json!({ "organization": null }));
    };
    let org_id = id_of(&org)?;
    let members = kc
        .get_json(&format!("/{realm}/organizations/{org_id}/members?max=1000"))
        .await?
        .unwrap_or_default();
    let mut changed = Vec::new();
    for m in members.as_array().into_iter().flatten() {
        let Ok(id) = id_of(m) else { continue };
        let mut rep = kc
            .get_json(&format!("/{realm}/users/{id}"))
            .await?
            .unwrap_or_default();
        // Only the tenant's own users: a member another tenant owns is
        // that tenant's to disable. The whole representation goes back, so
        // nothing but `enabled` changes.
        if user_is_ours(&rep, &tenant_id) {
            rep["enabled"] = json!(enabled);
            kc.put(&format!("/{realm}/users/{id}"), &rep).await?;
            changed.push(rep["username"].clone());
        }
    }
    Ok(json!({ "organization": ctx.key.as_str(), "users": changed, "enabled": enabled }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_realm_is_told_by_its_attribute() {
        let ours = json!({ "attributes": { SHARED_ATTRIBUTE: "freeflow" } });
        assert!(is_shared_realm(&ours, "freeflow"));
        assert!(!is_shared_realm(&ours, "other"));
        assert!(!is_shared_realm(&json!({ "attributes": {} }), "freeflow"));
        let user = json!({ "attributes": { "tenantId": ["abc"] } });
        assert!(user_is_ours(&user, "abc") && !user_is_ours(&user, "abd"));
    }
}
