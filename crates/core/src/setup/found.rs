//! Setups found in the tenant. Every app the wizard makes carries its tags (`entra-setup`,
//! `entra-setup:<provider>`) and a `uniqueName`, so a setup made on another computer, or one
//! whose journal was lost, is still found, checked and undone — from what the tenant shows is
//! the wizard's, never from a guess.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::journal::{PreviousSetup, SetupSource};
use super::{Intent, TAG};
use crate::auth::StepScopes;
use crate::graph::{GraphClient, GraphError};
use crate::provider::{self, Provider};

/// An app of the wizard's in the tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WizardApp {
    pub object_id: String,
    pub app_id: String,
    pub unique_name: String,
    pub display_name: String,
    pub provider_id: String,
    /// A provisioning app (tagged `entra-setup:scim`).
    pub provisioning: bool,
    pub created: Option<DateTime<Utc>>,
    value: Value,
}

impl WizardApp {
    /// An app as Graph returns it, if it is the wizard's (its tag and a uniqueName of its own).
    pub fn from_json(v: Value) -> Option<Self> {
        let tags: Vec<&str> = v["tags"]
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        if !tags.contains(&TAG) {
            return None;
        }
        // Sign-in apps carry `entra-setup:<provider>`; provisioning apps also carry
        // `entra-setup:scim` (for the generic SCIM provider, that is its only one).
        let prefix = format!("{TAG}:");
        let suffixes: Vec<&str> = tags
            .iter()
            .filter_map(|t| t.strip_prefix(&prefix))
            .collect();
        let provisioning = suffixes.contains(&"scim");
        let provider_id = suffixes
            .iter()
            .find(|t| **t != "scim")
            .or_else(|| suffixes.first())?
            .to_string();
        let unique_name = v["uniqueName"].as_str()?.to_string();
        if !unique_name.starts_with(&format!("{TAG}-")) {
            return None;
        }
        Some(Self {
            object_id: v["id"].as_str()?.to_string(),
            app_id: v["appId"].as_str().unwrap_or_default().to_string(),
            display_name: v["displayName"].as_str().unwrap_or_default().to_string(),
            created: v["createdDateTime"].as_str().and_then(|d| d.parse().ok()),
            unique_name,
            provider_id,
            provisioning,
            value: v,
        })
    }

    /// The inputs that made this app: written in its notes by this version, else read back
    /// from its redirect URI (sign-in apps) or its name (provisioning apps). Only values that
    /// give this very app's `uniqueName` again are believed.
    pub fn inputs(&self, p: &Provider) -> Option<BTreeMap<String, String>> {
        let declared: Vec<&str> = p
            .inputs
            .iter()
            .filter(|i| !i.secret)
            .map(|i| i.id.as_str())
            .collect();
        let keep = |m: BTreeMap<String, String>| -> BTreeMap<String, String> {
            m.into_iter()
                .filter(|(k, _)| declared.contains(&k.as_str()))
                .collect()
        };
        let mut candidates: Vec<BTreeMap<String, String>> = vec![];
        if let Some(notes) = self.value["notes"].as_str() {
            if let Some(m) = notes_inputs(notes) {
                candidates.push(keep(m));
            }
        }
        if self.provisioning {
            if let Some(name) = p.scim_app().and_then(|a| a.name.as_deref()) {
                if let Some(m) = provider::unrender(name, &self.display_name) {
                    candidates.push(keep(m));
                }
            }
        } else {
            for uri in self.value["web"]["redirectUris"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                for t in p.redirect_uris() {
                    if let Some(m) = provider::unrender(t, uri) {
                        candidates.push(keep(m));
                    }
                }
            }
        }
        candidates.into_iter().find(|inputs| {
            Intent::new(p.clone(), inputs, None).is_ok_and(|i| {
                let own = if self.provisioning {
                    i.template_unique_name()
                } else {
                    i.unique_name()
                };
                own == self.unique_name
            })
        })
    }
}

/// The line the wizard writes into an app's notes so the setup can be found again:
/// `Inputs: team=acme; other=value` (values percent-encoded).
pub fn notes_line(inputs: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = inputs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            )
        })
        .collect();
    format!("Inputs: {}.", pairs.join("; "))
}

fn notes_inputs(notes: &str) -> Option<BTreeMap<String, String>> {
    let line = notes.split("Inputs: ").nth(1)?;
    let line = line.split(".\n").next()?.trim_end_matches('.');
    let mut out = BTreeMap::new();
    for pair in line.split("; ") {
        let (k, v) = pair.split_once('=')?;
        let v = url::form_urlencoded::parse(format!("v={v}").as_bytes())
            .next()
            .map(|(_, x)| x.into_owned())?;
        out.insert(k.trim().to_string(), v);
    }
    Some(out)
}

/// Every app in the tenant that carries the wizard's tag and uniqueName.
pub async fn wizard_apps(graph: &GraphClient) -> Result<Vec<WizardApp>, GraphError> {
    let apps: Vec<Value> = graph
        .get(format!(
            "/applications?$filter=tags/any(t:t eq '{TAG}')&$select=id,appId,displayName,uniqueName,tags,notes,web,createdDateTime"
        ))
        .scopes(StepScopes::RegisterApp)
        .list()
        .await?;
    Ok(apps.into_iter().filter_map(WizardApp::from_json).collect())
}

/// The setups the tenant shows: one per sign-in app, and one per provisioning app of a
/// provider without sign-in (a sign-in provider's provisioning app belongs to its setup).
/// Apps whose provider this version does not know, or whose inputs cannot be read back, are
/// left out.
pub fn setups_of(apps: &[WizardApp], known: &[Provider]) -> Vec<PreviousSetup> {
    let mut out: Vec<PreviousSetup> = vec![];
    for app in apps {
        let Some(p) = known.iter().find(|p| p.id() == app.provider_id) else {
            continue;
        };
        if app.provisioning && p.has_sign_in() {
            continue;
        }
        let Some(inputs) = app.inputs(p) else {
            tracing::info!(unique_name = %app.unique_name, "a wizard app whose inputs cannot be read back");
            continue;
        };
        let Ok(intent) = Intent::new(p.clone(), &inputs, None) else {
            continue;
        };
        let scim_unique = intent.template_unique_name();
        out.push(PreviousSetup {
            provider_id: p.id().to_string(),
            display_name: intent.display_name(),
            inputs,
            last_applied: app.created.unwrap_or_else(Utc::now),
            interrupted: false,
            source: SetupSource::Tenant,
            provisions: apps
                .iter()
                .any(|a| a.provisioning && a.unique_name == scim_unique),
        });
    }
    out
}

/// This computer's journal setups together with the tenant's: one entry per setup (by
/// provider and inputs), marked with where it was found.
pub fn merge(journal: Vec<PreviousSetup>, tenant: Vec<PreviousSetup>) -> Vec<PreviousSetup> {
    let mut out = journal;
    for t in tenant {
        match out
            .iter_mut()
            .find(|j| j.provider_id == t.provider_id && j.inputs == t.inputs)
        {
            Some(j) => {
                j.source = SetupSource::Both;
                j.provisions |= t.provisions;
            }
            None => out.push(t),
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.last_applied));
    out
}

/// The setups done before in this tenant: the journals under `dir` and the tenant's own record.
pub async fn known(
    graph: &GraphClient,
    dir: &std::path::Path,
    tenant_id: &str,
) -> Result<Vec<PreviousSetup>, GraphError> {
    let journal = super::journal::previous_setups(dir, tenant_id);
    let known = provider::all().unwrap_or_default();
    let apps = wizard_apps(graph).await?;
    Ok(merge(journal, setups_of(&apps, &known)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_come_back_from_the_notes_or_the_redirect_uri() {
        let cf = provider::find("cloudflare").unwrap();
        let mut inputs = BTreeMap::new();
        inputs.insert("team".to_string(), "acme".to_string());
        let line = notes_line(&inputs);
        assert_eq!(line, "Inputs: team=acme.");
        let app = |notes: Option<&str>, uri: &str, unique: &str| {
            WizardApp::from_json(serde_json::json!({
                "id": "o", "appId": "a", "displayName": "Cloudflare Access (acme)",
                "uniqueName": unique, "tags": [TAG, "entra-setup:cloudflare"],
                "notes": notes, "web": {"redirectUris": [uri]},
            }))
            .unwrap()
        };
        let from_uri = app(
            None,
            "https://acme.cloudflareaccess.com/cdn-cgi/access/callback",
            "entra-setup-cloudflare-acme",
        );
        assert_eq!(from_uri.inputs(&cf), Some(inputs.clone()));
        let from_notes = app(
            Some("Managed by Entra Setup. Inputs: team=acme."),
            "https://example.com/other",
            "entra-setup-cloudflare-acme",
        );
        assert_eq!(from_notes.inputs(&cf), Some(inputs));
        // Values that would name another app are not believed.
        let other = app(
            None,
            "https://acme.cloudflareaccess.com/cdn-cgi/access/callback",
            "entra-setup-cloudflare-other",
        );
        assert_eq!(other.inputs(&cf), None);
        // An app without the wizard's tag is not the wizard's.
        assert!(WizardApp::from_json(
            serde_json::json!({"id": "o", "uniqueName": "entra-setup-x", "tags": ["entra-setup:x"]})
        )
        .is_none());
    }

    #[test]
    fn provisioning_apps_of_scim_only_providers_are_setups_of_their_own() {
        let known = provider::builtin().unwrap();
        let app = |tags: Value, name: &str, unique: &str| {
            WizardApp::from_json(serde_json::json!({
                "id": unique, "appId": unique, "displayName": name, "uniqueName": unique,
                "createdDateTime": "2026-11-30T10:00:00Z", "tags": tags,
                "web": {"redirectUris": ["https://acme.cloudflareaccess.com/cdn-cgi/access/callback"]},
            }))
            .unwrap()
        };
        let apps = vec![
            app(
                serde_json::json!([TAG, "entra-setup:scim", "entra-setup:scim"]),
                "Acme Files (SCIM)",
                "entra-setup-scim-acme-files",
            ),
            app(
                serde_json::json!([TAG, "entra-setup:cloudflare"]),
                "Cloudflare Access (acme)",
                "entra-setup-cloudflare-acme",
            ),
            app(
                serde_json::json!([TAG, "entra-setup:cloudflare", "entra-setup:scim"]),
                "Cloudflare Access SCIM (acme)",
                "entra-setup-cloudflare-acme-scim",
            ),
        ];
        let found = setups_of(&apps, &known);
        assert_eq!(found.len(), 2, "{found:#?}");
        let scim = found.iter().find(|s| s.provider_id == "scim").unwrap();
        assert_eq!(scim.inputs["service"], "Acme Files");
        assert!(scim.provisions);
        let cf = found
            .iter()
            .find(|s| s.provider_id == "cloudflare")
            .unwrap();
        assert_eq!(cf.inputs["team"], "acme");
        assert!(
            cf.provisions,
            "the -scim app belongs to the Cloudflare setup"
        );
        assert_eq!(cf.source, SetupSource::Tenant);
    }
}
