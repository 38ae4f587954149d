//! The Sync mode and SCIM steps: what exists for a provider's provisioning, what the last run
//! saved, who is assigned, and the provider's SCIM token while this process holds it.

use chrono::NaiveDate;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

use super::journal::Journal;
use super::{state, Assignee, Intent, PrincipalKind};
use crate::graph::GraphError;
use crate::keychain::{self, SecretStore};
use crate::provisioning::{self, JobStatus};
use crate::session::Session;
use crate::tenant::{Advice, LicenceTier};

/// The keychain entry holding a provider's SCIM token for one setup.
pub fn scim_token_key(tenant_id: &str, scim_unique_name: &str) -> String {
    format!("scim-token:{tenant_id}:{scim_unique_name}")
}

/// The provider's SCIM bearer token while this process holds it (never sent to a webview).
pub struct ScimToken {
    pub value: SecretString,
    /// Also in the OS keychain.
    pub remembered: bool,
    /// Entered in this session and not yet saved in Entra: a plan saves a new token only then.
    pub fresh: bool,
    /// The endpoint (scheme, host and port) it was entered for: it is sent nowhere else.
    pub origin: Option<String>,
}

/// `https://host:port` of a URL (the port Entra would use when none is written).
pub fn origin_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url.trim()).ok()?;
    Some(format!(
        "{}://{}:{}",
        u.scheme(),
        u.host_str()?.to_ascii_lowercase(),
        u.port_or_known_default()?
    ))
}

impl ScimToken {
    /// A token the admin just gave (typed, or read from a file).
    pub fn entered(value: SecretString, remembered: bool) -> Self {
        Self {
            value,
            remembered,
            fresh: true,
            origin: None,
        }
    }

    /// Binds the token to the endpoint it was entered for.
    #[must_use]
    pub fn for_url(mut self, url: &str) -> Self {
        self.origin = origin_of(url);
        self
    }

    /// Whether the token may go to `url`: only to the endpoint it was entered for (a webview
    /// or a script cannot have it sent to another host).
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        match (&self.origin, origin_of(url)) {
            (None, _) => Ok(()),
            (Some(bound), Some(to)) if *bound == to => Ok(()),
            (Some(bound), to) => Err(format!(
                "The SCIM token was entered for {bound}, and a token is only ever sent to the endpoint it was entered for: enter the token again for {}.",
                to.unwrap_or_else(|| url.to_string())
            )),
        }
    }

    /// Keeps the token in the OS keychain together with the endpoint it is bound to, so the
    /// binding survives whatever happens to the journal.
    pub async fn keep(
        store: &Arc<dyn SecretStore>,
        key: &str,
        value: &SecretString,
        url: &str,
    ) -> Result<(), KeepError> {
        let origin = origin_of(url).ok_or(KeepError::NoEndpoint)?;
        let entry = serde_json::json!({"origin": origin, "token": value.expose_secret()});
        keychain::set(store, key, SecretString::from(entry.to_string())).await?;
        Ok(())
    }

    /// The token kept in the keychain for `key`, bound to the endpoint it was kept for. An
    /// entry without its endpoint (kept by an earlier version, or altered) is not used: the
    /// admin enters the token again.
    pub async fn kept(store: &Arc<dyn SecretStore>, key: &str) -> Option<Self> {
        let raw = keychain::get(store, key).await.ok()??;
        let parsed: Option<(String, String)> =
            serde_json::from_str::<serde_json::Value>(raw.expose_secret())
                .ok()
                .and_then(|v| {
                    Some((
                        v["origin"].as_str()?.to_string(),
                        v["token"].as_str()?.to_string(),
                    ))
                });
        let Some((origin, token)) =
            parsed.filter(|(o, t)| origin_of(o).as_deref() == Some(o.as_str()) && !t.is_empty())
        else {
            tracing::warn!(
                "a SCIM token in the keychain has no endpoint bound to it; it is not used"
            );
            return None;
        };
        Some(Self {
            value: SecretString::from(token),
            remembered: true,
            fresh: false,
            origin: Some(origin),
        })
    }

    /// Whether a plan saves `held` as a new token: one entered now, or a kept one when the
    /// provisioning settings changed (Entra saves settings and token together).
    pub fn is_new(held: Option<&Self>, settings_changed: bool) -> bool {
        held.is_some_and(|t| t.fresh || settings_changed)
    }

    /// After Entra saved it: the token is kept only if the admin asked for the keychain.
    pub fn after_saved(held: &mut Option<Self>) {
        if held.as_ref().is_some_and(|t| !t.remembered) {
            *held = None;
        } else if let Some(t) = held.as_mut() {
            t.fresh = false;
        }
    }
}

/// Why a SCIM token could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum KeepError {
    #[error(
        "Enter the Tenant URL first: the token is kept bound to it and never sent anywhere else."
    )]
    NoEndpoint,
    #[error(transparent)]
    Keychain(#[from] keychain::KeychainError),
}

/// What is wrong with a pasted token, said as what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenProblem {
    #[error("Paste the token from the provider: the field is empty.")]
    Empty,
    #[error("Paste only the token, without \"Bearer \": Entra adds that itself.")]
    Bearer,
    #[error("The token contains spaces or line breaks: copy it again, as one piece.")]
    Spaces,
}

impl ScimToken {
    /// Checks a pasted or read token (surrounding blanks are dropped).
    pub fn parse(raw: &str) -> Result<SecretString, TokenProblem> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(TokenProblem::Empty);
        }
        if value.to_ascii_lowercase().starts_with("bearer ") {
            return Err(TokenProblem::Bearer);
        }
        if value.chars().any(char::is_whitespace) {
            return Err(TokenProblem::Spaces);
        }
        Ok(SecretString::from(value.to_string()))
    }
}

/// What a provider's profile says about SCIM.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct ScimInfo {
    pub app_name: String,
    pub needs_premium: bool,
    pub endpoint_help: String,
    pub token_help: String,
    pub endpoint_example: String,
    pub token_lifetime_days: Option<u32>,
    pub match_sso_groups: bool,
    pub advice: Vec<Advice>,
}

/// What the last run saved, for a re-run.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct ScimSaved {
    pub tenant_url: String,
    pub sync_all: bool,
    pub token_expires: Option<String>,
    pub saved_at: String,
}

/// The Sync mode and SCIM steps' starting point.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct ScimContext {
    pub info: ScimInfo,
    /// Group assignment is possible (Entra ID P1 or P2).
    pub groups_allowed: bool,
    pub licence_note: String,
    /// The provisioning app already exists (a re-run).
    pub app_exists: bool,
    /// Who is assigned now.
    pub assigned: Vec<Assignee>,
    pub saved: Option<ScimSaved>,
    pub status: Option<JobStatus>,
    pub token: TokenState,
    pub demo: bool,
}

/// Whether the wizard holds a SCIM token (never the token itself).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct TokenState {
    pub set: bool,
    /// In the OS keychain.
    pub remembered: bool,
    /// Characters, so the admin can tell a truncated paste.
    pub length: u32,
}

impl TokenState {
    pub fn of(held: Option<&ScimToken>) -> Self {
        Self {
            set: held.is_some(),
            remembered: held.is_some_and(|t| t.remembered),
            length: held
                .map(|t| u32::try_from(t.value.expose_secret().chars().count()).unwrap_or(0))
                .unwrap_or(0),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0} takes no SCIM provisioning from Entra.")]
    NoScim(String),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Journal(#[from] super::journal::JournalError),
}

/// Reads what exists for the provider's provisioning in the tenant and what the last run saved.
/// With no token held, one the admin kept in the keychain on an earlier run is taken up.
pub async fn context(
    session: &Session,
    journals: &Path,
    intent: &Intent,
    held: &mut Option<ScimToken>,
    store: &Arc<dyn SecretStore>,
    demo: bool,
) -> Result<ScimContext, SyncError> {
    if let Some(ds) = &intent.provider.directory_sync {
        return directory_sync_context(session, intent, ds, demo).await;
    }
    let spec = intent
        .provider
        .scim
        .as_ref()
        .ok_or_else(|| SyncError::NoScim(intent.provider.name.clone()))?;
    let s = session;
    let tenant = &s.account.tenant_id;
    let hints = Journal::open(journals, tenant, &intent.unique_name()).hints()?;
    let scim_name = intent.template_unique_name();
    let existing =
        state::read_provisioning(&s.graph, intent, &hints.unfinished_instantiations).await?;
    let status = match existing
        .as_ref()
        .and_then(|e| e.job.as_ref().map(|j| (e.sp_id.clone(), j.id.clone())))
    {
        Some((sp, job)) => provisioning::job_status(&s.graph, &sp, &job).await.ok(),
        None => None,
    };
    if held.is_none() {
        // Kept bound to the endpoint it was entered for, whatever the journal says.
        *held = ScimToken::kept(store, &scim_token_key(tenant, &scim_name)).await;
    }
    let groups_allowed = matches!(s.summary.licence, LicenceTier::P1 | LicenceTier::P2);
    Ok(ScimContext {
        info: ScimInfo {
            app_name: intent.template_display_name(),
            needs_premium: spec.needs_premium,
            endpoint_help: spec.endpoint_help.clone(),
            token_help: spec.token_help.clone(),
            endpoint_example: spec.endpoint_example.clone(),
            token_lifetime_days: spec.token_lifetime_days,
            match_sso_groups: spec.match_sso_groups,
            advice: spec.advice.iter().map(Advice::from).collect(),
        },
        groups_allowed,
        licence_note: licence_note(s.summary.licence, spec.needs_premium, &intent.provider.name),
        app_exists: existing.is_some(),
        assigned: existing
            .map(|e| e.assignments.into_iter().map(assignee).collect())
            .unwrap_or_default(),
        saved: hints.scim.map(|r| ScimSaved {
            tenant_url: r.tenant_url,
            sync_all: r.sync_all,
            token_expires: r.token_expires.map(|d: NaiveDate| d.to_string()),
            saved_at: r.saved_at.to_rfc3339(),
        }),
        status,
        token: TokenState::of(held.as_ref()),
        demo,
    })
}

/// The Sync mode step for a vendor that reads the directory itself (Firezone): who is assigned
/// to the app its profile names, and whether groups can be.
async fn directory_sync_context(
    s: &Session,
    intent: &Intent,
    ds: &crate::provider::DirectorySyncSpec,
    demo: bool,
) -> Result<ScimContext, SyncError> {
    let mut intent = intent.clone();
    intent.tenant_id.clone_from(&s.account.tenant_id);
    let spec = intent.provider.app(&ds.assign_to);
    let target = match spec {
        Some(spec) => state::read_vendor(&s.graph, &intent.tenant_id, spec).await?,
        None => None,
    };
    let name = intent.provider.name.clone();
    let groups_allowed = matches!(s.summary.licence, LicenceTier::P1 | LicenceTier::P2);
    let app_name = spec.map_or_else(
        || ds.assign_to.clone(),
        crate::provider::AppSpec::vendor_name,
    );
    Ok(ScimContext {
        info: ScimInfo {
            app_name: app_name.clone(),
            needs_premium: true,
            endpoint_help: String::new(),
            token_help: String::new(),
            endpoint_example: String::new(),
            token_lifetime_days: None,
            match_sso_groups: false,
            advice: vec![],
        },
        groups_allowed,
        licence_note: if groups_allowed {
            format!("Your tenant has Entra ID {:?}: \"{}\" works (groups can be assigned to \"{app_name}\").", s.summary.licence, ds.assigned_label)
        } else {
            format!("This tenant has Entra ID Free: \"{}\" needs P1 or P2 (groups cannot be assigned to apps), so {name}'s documentation says to use \"{}\".", ds.assigned_label, ds.all_label)
        },
        app_exists: target.is_some(),
        assigned: target
            .map(|t| t.assignments.into_iter().map(assignee).collect())
            .unwrap_or_default(),
        saved: None,
        status: None,
        token: TokenState::of(None),
        demo,
    })
}

fn licence_note(licence: LicenceTier, needs_premium: bool, provider: &str) -> String {
    match (matches!(licence, LicenceTier::P1 | LicenceTier::P2), needs_premium) {
        (true, _) => format!("Your tenant has Entra ID {licence:?}: you can assign groups."),
        (false, true) => format!("{provider} documents that its SCIM needs Entra ID P1 or P2, which this tenant does not have. Users can still be assigned one by one, but group provisioning and group-based assignment are not available."),
        (false, false) => "This tenant has no Entra ID P1 or P2: assigning groups to apps is not available, so assign users one by one (or sync all users).".into(),
    }
}

fn assignee(a: state::PrincipalAssignment) -> Assignee {
    Assignee {
        kind: if a.principal_type.as_deref() == Some("Group") {
            PrincipalKind::Group
        } else {
            PrincipalKind::User
        },
        display_name: a
            .principal_display_name
            .unwrap_or_else(|| a.principal_id.clone()),
        id: a.principal_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_goes_only_to_the_endpoint_it_was_entered_for() {
        let t = ScimToken::entered(SecretString::from("t0k3n".to_string()), false)
            .for_url("https://scim.example.com/scim/v2");
        assert!(t
            .check_url("https://SCIM.example.com:443/scim/v2?aadOptscim062020")
            .is_ok());
        let e = t.check_url("https://attacker.example/collect").unwrap_err();
        assert!(
            e.contains("entered for https://scim.example.com:443"),
            "{e}"
        );
        assert!(t.check_url("http://scim.example.com/scim/v2").is_err());
        assert!(t
            .check_url("https://scim.example.com:8443/scim/v2")
            .is_err());
    }
}
