//! The test sign-in with a claim inspector: the wizard signs a person in to the app it just set
//! up, the way the service will, and shows what the service will receive.
//!
//! SAML: a temporary loopback Reply URL on the app, an SP-initiated AuthnRequest (HTTP-Redirect)
//! in the browser, the SAMLResponse POSTed to a one-shot 127.0.0.1 listener, its signature
//! verified against the app's certificates ([`crate::saml::verify_response`]). OpenID Connect: a
//! temporary loopback redirect URI (mobile and desktop platform, so the code redeems without the
//! app's secret), authorization code + PKCE with the new app, the id token verified against the
//! tenant's keys. Either way the temporary URI is journaled before it is added and removed
//! afterwards — on success, failure and cancel; after a crash, [`clean_up`] removes it the next
//! time the setup is opened.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::journal::{Event, Journal};
use crate::auth::{AuthError, BrowserOpener, LoopbackListener, SignInOptions};
use crate::graph::{GraphClient, GraphError};
use crate::saml::{self, ResponseError};
use crate::session::Session;

/// How long the wizard waits for the person to finish signing in.
pub const TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Group names looked up for the inspector at most (SAML sends at most 150 groups).
const MAX_GROUP_NAMES: usize = 150;

/// One claim as the service receives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct ClaimView {
    /// The claim's full name (a URI for SAML attributes).
    pub name: String,
    /// Its last segment, for reading (`emailaddress`, `groups`).
    pub short: String,
    pub values: Vec<String>,
}

/// A group in the groups claim, with its name looked up in the tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct GroupView {
    pub id: String,
    pub name: Option<String>,
}

/// What the test sign-in found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct SignInReport {
    /// `SAML` or `OpenID Connect`.
    pub protocol: String,
    /// What the service will take as the user's identity, and where it comes from.
    pub identity: String,
    pub identity_source: String,
    pub identity_note: String,
    pub claims: Vec<ClaimView>,
    pub groups: Vec<GroupView>,
    /// Set when the user has too many groups for the token: what the service gets instead.
    pub overage: Option<String>,
    /// How the answer was verified (the certificate or key, and what it covered).
    pub verified: String,
    pub warnings: Vec<String>,
    /// The wizard's own time from the answer reaching the listener to verified claims with
    /// group names, in milliseconds.
    pub checked_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum TestSignInError {
    #[error("this setup has no single sign-on to test")]
    NothingToTest,
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("The answer from Entra was refused: {0}.")]
    Response(#[from] ResponseError),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(
        "The journal could not be written ({0}), so the temporary redirect URI was not added."
    )]
    Journal(String),
    #[error("Entra still refuses the temporary redirect URI {uri} {waited} after it was added (AADSTS50011). Entra can take several minutes to accept a new redirect URI; run the test sign-in again later.")]
    RedirectNotAccepted { uri: String, waited: String },
}

/// The app a test signs in to.
pub enum Target<'a> {
    Saml {
        app_object_id: &'a str,
        sp_id: &'a str,
        entity_id: &'a str,
        /// Reply URLs the setup wants: kept whatever a stale read says.
        reply_urls: &'a [String],
        /// What the service identifies people by, in the profile's words.
        name_id: &'a str,
        /// Certificates (DER) this run learned from Graph's own answers (the one it added):
        /// trusted too, since a new key shows in reads only after a while.
        known_certificates: Vec<Vec<u8>>,
    },
    Oidc {
        app_object_id: &'a str,
        app_id: &'a str,
    },
}

fn platform(target: &Target<'_>) -> &'static str {
    match target {
        Target::Saml { .. } => "web",
        Target::Oidc { .. } => "publicClient",
    }
}

/// Adds or removes `uri` in the app's `platform.redirectUris`, keeping `keep` whatever a read
/// still lagging behind the last apply says.
async fn set_redirect(
    graph: &GraphClient,
    app_object_id: &str,
    platform: &str,
    uri: &str,
    keep: &[String],
    add: bool,
) -> Result<(), GraphError> {
    let app: Value = graph
        .get(format!(
            "applications/{app_object_id}?$select=id,{platform}"
        ))
        .retry_if(super::apply::replication_delay)
        .send_json()
        .await?;
    let mut block = app[platform].as_object().cloned().unwrap_or_default();
    // Read-only detail Graph returns with web; writing it back is refused.
    block.remove("redirectUriSettings");
    let mut uris: Vec<String> = block
        .get("redirectUris")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|u| u.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let present = uris.iter().any(|u| u == uri);
    let missing_keep = keep.iter().any(|k| !uris.contains(k));
    if present == add && !missing_keep {
        return Ok(());
    }
    for k in keep {
        if !uris.contains(k) {
            uris.push(k.clone());
        }
    }
    uris.retain(|u| u != uri);
    if add {
        uris.push(uri.to_string());
    }
    block.insert("redirectUris".into(), json!(uris));
    graph
        .patch(format!("applications/{app_object_id}"))
        .json(json!({ platform: block }))
        .retry_if(super::apply::replication_delay)
        .send()
        .await?;
    Ok(())
}

/// Removes the temporary redirect URIs an interrupted test sign-in left (the journal knows
/// them). Returns how many it removed.
pub async fn clean_up(graph: &GraphClient, journal: &Journal) -> Result<usize, GraphError> {
    let left = journal
        .temporary_redirects()
        .map_err(|e| GraphError::Refused(e.to_string()))?;
    if left.is_empty() {
        return Ok(0);
    }
    // The journal is only believed about URIs a test sign-in makes (loopback, on a platform it
    // uses) on this setup's own app: an edited line cannot remove another app's redirect URI.
    let setup = super::undo::SetupObjects::read(graph, journal).await?;
    for t in &left {
        let loopback = url::Url::parse(&t.uri).is_ok_and(|u| {
            u.scheme() == "http"
                && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
        });
        let platform_ok = matches!(t.platform.as_str(), "web" | "publicClient");
        let own_app = setup
            .apps
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&t.app_object_id));
        if !loopback || !platform_ok || !own_app {
            return Err(GraphError::Refused(format!(
                "The journal {} lists a temporary redirect URI {} on the app {} that no test sign-in of this setup makes (only loopback URIs on the setup's own app are): it was left alone. Nothing was changed; restore the journal from a backup or move it aside.",
                journal.path().display(),
                crate::redact::echo(&t.uri, 200),
                crate::redact::echo(&t.app_object_id, 60)
            )));
        }
    }
    for t in &left {
        match set_redirect(graph, &t.app_object_id, &t.platform, &t.uri, &[], false).await {
            Ok(()) => {}
            // The app is gone: so is its URI.
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e),
        }
        let _ = journal.note(
            "test-sign-in",
            Event::TemporaryRedirectRemoved { uri: t.uri.clone() },
        );
        tracing::info!(uri = %t.uri, "removed a test sign-in's temporary redirect URI left by an interrupted run");
    }
    Ok(left.len())
}

/// Signs a person in to `target` and reports the claims.
pub async fn run(
    session: &Session,
    http: &reqwest::Client,
    opener: &dyn BrowserOpener,
    journal: &Journal,
    target: &Target<'_>,
    cancel: &CancellationToken,
) -> Result<SignInReport, TestSignInError> {
    let listener = LoopbackListener::bind("127.0.0.1").await?;
    let uri = match target {
        Target::Saml { .. } => format!("{}saml", listener.redirect_uri()),
        Target::Oidc { .. } => listener.redirect_uri().to_string(),
    };
    let (app_object_id, keep): (&str, &[String]) = match target {
        Target::Saml {
            app_object_id,
            reply_urls,
            ..
        } => (app_object_id, reply_urls),
        Target::Oidc { app_object_id, .. } => (app_object_id, &[]),
    };
    let platform = platform(target);
    let plan_id = format!("test-sign-in-{}", uuid::Uuid::new_v4().simple());
    journal
        .note(
            &plan_id,
            Event::TemporaryRedirect {
                app_object_id: app_object_id.to_string(),
                platform: platform.to_string(),
                uri: uri.clone(),
            },
        )
        .map_err(|e| TestSignInError::Journal(e.to_string()))?;
    let graph = &session.graph;
    let outcome = match set_redirect(graph, app_object_id, platform, &uri, keep, true).await {
        Ok(()) => match wait_until_accepted(
            session,
            http,
            &probe_url(session, target, &uri),
            &uri,
            cancel,
        )
        .await
        {
            Ok(()) => sign_in(session, http, opener, listener, &uri, target, cancel).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e.into()),
    };
    // Whatever happened, the temporary URI goes (a failure here leaves it journaled for
    // clean_up, and says so).
    let removed = set_redirect(graph, app_object_id, platform, &uri, keep, false).await;
    let mut report = outcome?;
    match removed {
        Ok(()) => {
            let _ = journal.note(&plan_id, Event::TemporaryRedirectRemoved { uri });
        }
        Err(e) => report.warnings.push(format!(
            "The temporary redirect URI {uri} could not be removed yet ({e}); Entra Setup removes it the next time this setup is opened."
        )),
    }
    Ok(report)
}

/// A sign-in URL for `target` with the temporary redirect URI, which the login endpoint refuses
/// (AADSTS50011) until the new URI has reached it: it checks the redirect URI or Reply URL
/// before it asks anyone to sign in.
fn probe_url(session: &Session, target: &Target<'_>, uri: &str) -> String {
    let tenant_id = &session.account.tenant_id;
    match target {
        Target::Saml { entity_id, .. } => {
            let sso = saml::sso_url(&session.cloud, tenant_id);
            let request = saml::authn_request(entity_id, uri, &sso, chrono::Utc::now());
            saml::redirect_url(&sso, &request, "probe").unwrap_or(sso)
        }
        Target::Oidc { app_id, .. } => {
            let authorize = format!(
                "{}/{tenant_id}/oauth2/v2.0/authorize",
                session.cloud.authority.as_str().trim_end_matches('/')
            );
            url::Url::parse_with_params(
                &authorize,
                &[
                    ("client_id", *app_id),
                    ("response_type", "code"),
                    ("redirect_uri", uri),
                    ("scope", "openid"),
                    ("state", "probe"),
                ],
            )
            .map_or(authorize, String::from)
        }
    }
}

/// Waits, within [`crate::wait::NEW_REDIRECT`], until the login endpoint stops refusing the
/// temporary redirect URI just added (Entra takes seconds to minutes). A probe that cannot be
/// read does not stop the test: the browser shows what Entra says.
async fn wait_until_accepted(
    session: &Session,
    http: &reqwest::Client,
    probe: &str,
    uri: &str,
    cancel: &CancellationToken,
) -> Result<(), TestSignInError> {
    let mut patience = session
        .graph
        .retry_policy()
        .patience(crate::wait::NEW_REDIRECT);
    loop {
        let refused = match http.get(probe).send().await {
            Ok(r) => crate::http::read_text(r, 256 * 1024)
                .await
                .is_ok_and(|page| page.contains("AADSTS50011") || page.contains("AADSTS500113")),
            Err(_) => false,
        };
        if !refused {
            return Ok(());
        }
        tracing::info!(uri, budget = %crate::wait::up_to(patience.budget()), "waiting for Entra to accept the temporary redirect URI");
        tokio::select! {
            more = patience.again() => if !more {
                return Err(TestSignInError::RedirectNotAccepted {
                    uri: uri.to_string(),
                    waited: crate::wait::span(patience.waited()),
                });
            },
            () = cancel.cancelled() => return Err(AuthError::Cancelled.into()),
        }
    }
}

async fn sign_in(
    session: &Session,
    http: &reqwest::Client,
    opener: &dyn BrowserOpener,
    listener: LoopbackListener,
    uri: &str,
    target: &Target<'_>,
    cancel: &CancellationToken,
) -> Result<SignInReport, TestSignInError> {
    match target {
        Target::Saml {
            sp_id,
            entity_id,
            name_id,
            known_certificates,
            ..
        } => {
            let saml = SamlCall {
                sp_id,
                entity_id,
                name_id,
                known: known_certificates,
            };
            saml_sign_in(session, opener, listener, uri, &saml, cancel).await
        }
        Target::Oidc { app_id, .. } => {
            oidc_sign_in(session, http, opener, listener, app_id, cancel).await
        }
    }
}

/// The app's signing certificates as Entra holds them now (Verify keys with their public part),
/// and the preferred one's thumbprint.
async fn signing_certificates(
    graph: &GraphClient,
    sp_id: &str,
) -> Result<(Vec<Vec<u8>>, Option<String>), GraphError> {
    use base64::Engine;
    let sp: Value = graph
        .get(format!(
            "servicePrincipals/{sp_id}?$select=id,keyCredentials,preferredTokenSigningKeyThumbprint"
        ))
        .retry_if(super::apply::replication_delay)
        .send_json()
        .await?;
    let certs = sp["keyCredentials"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|k| k["usage"] == "Verify")
        .filter_map(|k| k["key"].as_str())
        .filter_map(|k| base64::engine::general_purpose::STANDARD.decode(k).ok())
        .collect();
    let preferred = sp["preferredTokenSigningKeyThumbprint"]
        .as_str()
        .map(str::to_ascii_uppercase);
    Ok((certs, preferred))
}

/// What a SAML test sign-in needs to know about the app.
struct SamlCall<'a> {
    sp_id: &'a str,
    entity_id: &'a str,
    name_id: &'a str,
    known: &'a [Vec<u8>],
}

async fn saml_sign_in(
    session: &Session,
    opener: &dyn BrowserOpener,
    listener: LoopbackListener,
    acs: &str,
    call: &SamlCall<'_>,
    cancel: &CancellationToken,
) -> Result<SignInReport, TestSignInError> {
    let SamlCall {
        sp_id,
        entity_id,
        name_id,
        known,
    } = *call;
    let tenant_id = &session.account.tenant_id;
    let sso = saml::sso_url(&session.cloud, tenant_id);
    let request = saml::authn_request(entity_id, acs, &sso, chrono::Utc::now());
    let relay = uuid::Uuid::new_v4().simple().to_string();
    let url = saml::redirect_url(&sso, &request, &relay)
        .map_err(|e| AuthError::Protocol(format!("bad sign-in URL: {e}")))?;
    listener.expect_state(&relay);
    tokio::select! {
        r = opener.open(url) => r?,
        () = cancel.cancelled() => return Err(AuthError::Cancelled.into()),
    }
    let answer = listener.wait_params(TIMEOUT, cancel).await?;
    let started = Instant::now();
    let b64 = answer
        .get("SAMLResponse")
        .ok_or_else(|| AuthError::Protocol("the answer has no SAMLResponse".into()))?;
    let (mut certificates, preferred) = signing_certificates(&session.graph, sp_id).await?;
    for der in known {
        if !certificates.contains(der) {
            certificates.push(der.clone());
        }
    }
    let assertion = saml::verify_response(
        b64,
        &saml::Expected {
            request_id: &request.id,
            acs,
            audience: entity_id,
            idp_entity_id: &saml::idp_entity_id(tenant_id),
            certificates: &certificates,
            now: chrono::Utc::now(),
        },
    )?;
    let mut warnings = vec![];
    if preferred
        .as_deref()
        .is_some_and(|p| p != assertion.signed_by.as_str())
    {
        warnings.push(format!(
            "Entra signed with the certificate {}, not the active one ({}): a new certificate can take a few minutes to be used.",
            assertion.signed_by,
            preferred.as_deref().unwrap_or_default()
        ));
    }
    let claims: Vec<ClaimView> = assertion
        .attributes
        .iter()
        .map(|(name, values)| ClaimView {
            short: short_name(name),
            name: name.clone(),
            values: values.clone(),
        })
        .collect();
    let group_ids = claims
        .iter()
        .find(|c| c.name == "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups")
        .map(|c| c.values.clone())
        .unwrap_or_default();
    let overage = claims
        .iter()
        .find(|c| c.name == "http://schemas.microsoft.com/claims/groups.link")
        .map(|c| format!(
            "This person is in more groups than a SAML token carries (150), so Entra sent a link instead of the groups ({}). A service that reads groups from the token sees none: assign fewer groups, or send only the groups assigned to the app (\"Groups assigned to the application\" in the app's groups claim).",
            c.values.join(", ")
        ));
    let groups = group_names(&session.graph, &group_ids).await;
    let format = assertion.name_id_format.clone().unwrap_or_default();
    let short_format = format.rsplit(':').next().unwrap_or_default().to_string();
    let report = SignInReport {
        protocol: "SAML".into(),
        identity: assertion.name_id.clone(),
        identity_source: if short_format.is_empty() {
            "NameID".into()
        } else {
            format!("NameID ({short_format} format)")
        },
        identity_note: format!(
            "The service will identify this person as {} — the NameID, which this setup sends as {name_id}. It must match the person's account name at the service.",
            assertion.name_id
        ),
        claims,
        groups,
        overage,
        verified: format!(
            "The {} signature verified with the app's certificate {} (SHA-1 thumbprint).",
            assertion.signed_element.to_ascii_lowercase(),
            assertion.signed_by
        ),
        warnings,
        checked_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    Ok(report)
}

async fn oidc_sign_in(
    session: &Session,
    http: &reqwest::Client,
    opener: &dyn BrowserOpener,
    listener: LoopbackListener,
    app_id: &str,
    cancel: &CancellationToken,
) -> Result<SignInReport, TestSignInError> {
    let tenant_id = &session.account.tenant_id;
    let opts = SignInOptions {
        discovery_url: session.cloud.discovery_url(tenant_id),
        tenant_label: tenant_id.clone(),
        cloud_name: session.cloud.name.clone(),
        client_id: app_id.to_string(),
        scopes: vec!["openid".into(), "profile".into(), "email".into()],
        method: crate::auth::Method::Browser,
        timeout: TIMEOUT,
        redirect_host: "127.0.0.1".into(),
        extra_params: vec![("prompt".into(), "select_account".into())],
    };
    // The wizard's own time starts when the answer reaches the listener (then the code is
    // redeemed and the id token verified).
    let answered = std::sync::Arc::new(std::sync::Mutex::new(None::<Instant>));
    let mark = answered.clone();
    let on_event = std::sync::Arc::new(move |e: crate::auth::SignInEvent| {
        if e == crate::auth::SignInEvent::Redeeming {
            if let Ok(mut m) = mark.lock() {
                *m = Some(Instant::now());
            }
        }
    });
    let tokens = crate::auth::sign_in_on(http, &opts, listener, opener, on_event, cancel).await?;
    let started = answered
        .lock()
        .ok()
        .and_then(|m| *m)
        .unwrap_or_else(Instant::now);
    let all = tokens.id_token_claims;
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let shown: BTreeSet<&str> = [
        "aud", "iss", "iat", "nbf", "exp", "nonce", "uti", "rh", "aio", "ver",
    ]
    .into();
    let claims: Vec<ClaimView> = all
        .iter()
        .filter(|(k, _)| !shown.contains(k.as_str()))
        .map(|(k, v)| ClaimView {
            name: k.clone(),
            short: k.clone(),
            values: match v {
                Value::Array(a) => a.iter().map(text).collect(),
                other => vec![text(other)],
            },
        })
        .collect();
    let group_ids: Vec<String> = all
        .get("groups")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default();
    let overage = all.get("_claim_names").map(|_| {
        "This person is in more groups than an id token carries (200), so Entra sent the _claim_names marker instead of the groups: the service must read them from Microsoft Graph, or the app should send only the groups assigned to it.".to_string()
    });
    let groups = group_names(&session.graph, &group_ids).await;
    let (identity, source) = match (all.get("email"), all.get("preferred_username")) {
        (Some(e), _) => (text(e), "the email claim"),
        (None, Some(p)) => (text(p), "the preferred_username claim (no email claim)"),
        (None, None) => (
            all.get("sub").map(text).unwrap_or_default(),
            "the sub claim",
        ),
    };
    let mut warnings = vec![];
    if all.get("email").is_none() {
        warnings.push("The id token has no email claim: services that match people by email address (most do) will not find this person. Give the user a mail address, or ask for the email optional claim.".into());
    }
    Ok(SignInReport {
        protocol: "OpenID Connect".into(),
        identity,
        identity_source: source.into(),
        identity_note: "Most services match people by this value; oid (the user's object id) is the one that never changes.".into(),
        claims,
        groups,
        overage,
        verified: format!(
            "The id token's signature verified with the tenant's published key; audience {app_id}, issuer and nonce checked."
        ),
        warnings,
        checked_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// `http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress` → `emailaddress`.
fn short_name(uri: &str) -> String {
    uri.rsplit(['/', ':']).next().unwrap_or(uri).to_string()
}

/// The groups' display names, looked up a few at a time; a group that cannot be read keeps its
/// id alone (the inspector still shows it).
async fn group_names(graph: &GraphClient, ids: &[String]) -> Vec<GroupView> {
    futures::stream::iter(ids.iter().take(MAX_GROUP_NAMES).cloned())
        .map(|id| async move {
            let name = graph
                .get(format!("groups/{id}?$select=id,displayName"))
                .send_json::<Value>()
                .await
                .ok()
                .and_then(|g| g["displayName"].as_str().map(str::to_string));
            GroupView { id, name }
        })
        .buffered(8)
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::short_name;

    #[test]
    fn claim_uris_read_as_their_last_segment() {
        assert_eq!(
            short_name("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"),
            "emailaddress"
        );
        assert_eq!(short_name("email"), "email");
    }
}
