//! What a re-run would tell about a setup done before, without changing anything: its client
//! secrets and their expiry, drift (the changes apply would make), provisioning, and what needs
//! the admin's attention, in words.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::journal::{Journal, PreviousSetup};
use super::secrets::{self, SecretHealth, SecretStatus};
use super::{flow, state, Intent};
use crate::provider;
use crate::provisioning::{self, JobStatus};
use crate::session::Session;

/// One earlier setup, checked.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct SetupStatus {
    pub provider: String,
    pub name: String,
    /// Where the setup was found (this computer's journal, the tenant, or both).
    pub source: super::journal::SetupSource,
    pub inputs: BTreeMap<String, String>,
    pub last_applied: DateTime<Utc>,
    pub secrets: Vec<SecretStatus>,
    /// SAML signing certificates, latest expiry first.
    pub certificates: Vec<super::view::CertificateStatus>,
    /// The changes apply would make: drift from what the provider needs.
    pub drift: Vec<String>,
    pub scim: Option<ProvisioningStatus>,
    /// What needs the admin, in words; empty when all is well.
    pub attention: Vec<String>,
    /// Why (part of) the setup could not be checked.
    pub error: Option<String>,
}

impl SetupStatus {
    /// Nothing needs the admin and everything could be checked.
    pub fn ok(&self) -> bool {
        self.attention.is_empty() && self.error.is_none()
    }
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningStatus {
    pub status: Option<JobStatus>,
    #[cfg_attr(feature = "specta", specta(type = Option<String>))]
    pub token_expires: Option<NaiveDate>,
}

/// Checks one earlier setup (read-only). `warn_days`: a secret or token ending sooner needs
/// attention.
pub async fn check(s: &Session, dir: &Path, prev: &PreviousSetup, warn_days: i64) -> SetupStatus {
    let now = Utc::now();
    let mut out = SetupStatus {
        provider: prev.provider_id.clone(),
        name: prev.display_name.clone(),
        source: prev.source,
        inputs: prev.inputs.clone(),
        last_applied: prev.last_applied,
        secrets: vec![],
        certificates: vec![],
        drift: vec![],
        scim: None,
        attention: vec![],
        error: None,
    };
    if prev.interrupted {
        out.attention
            .push("The last apply stopped part-way: run it again to finish.".into());
    }
    let Some(p) = provider::find(&prev.provider_id) else {
        out.error = Some("This version does not know the provider.".into());
        return out;
    };
    let intent = match Intent::new(p, &prev.inputs, None) {
        Ok(i) => i,
        Err(e) => {
            let why: Vec<&str> = e.iter().map(|x| x.message.as_str()).collect();
            out.error = Some(format!(
                "The recorded inputs are no longer valid: {}",
                why.join(" ")
            ));
            return out;
        }
    };
    let j = Journal::open(dir, &s.account.tenant_id, &intent.unique_name());
    let (record, hints) = match (j.scim_record(), j.hints()) {
        (Ok(r), Ok(h)) => (r, h),
        (Err(e), _) | (_, Err(e)) => {
            out.error = Some(e.to_string());
            return out;
        }
    };
    let has_sign_in = intent.provider.has_sign_in();
    if has_sign_in {
        match flow::prepare(s, dir, intent.clone(), &[]).await {
            Err(e) => out.error = Some(e.to_string()),
            Ok(p) => {
                out.secrets = secrets::statuses(&p.state, now);
                if p.state.app().is_none() {
                    out.attention.push(
                        "The app registration is gone from the tenant: apply again to recreate it."
                            .into(),
                    );
                }
                let newest_ok = out
                    .secrets
                    .iter()
                    .filter(|x| x.by_wizard && x.health != SecretHealth::Expired)
                    .filter_map(|x| x.days_left)
                    .max();
                match newest_ok {
                    None if p.state.app().is_some() => out.attention.push("No working client secret from the wizard: sign-in through the provider fails. Apply again to add one.".into()),
                    Some(d) if d < warn_days => out.attention.push(format!("The client secret expires in {d} days: rotate it (a new secret next to the old one), hand the new one over, then retire the old one.")),
                    _ => {}
                }
                out.drift = p.plan.changes.iter().map(|c| c.title.clone()).collect();
                if !out.drift.is_empty() {
                    out.attention.push(format!(
                        "{} change(s) would be made: {}.",
                        out.drift.len(),
                        out.drift.join("; ")
                    ));
                }
            }
        }
    }
    if intent.saml.is_some() {
        match flow::prepare(s, dir, intent.clone(), &[]).await {
            Err(e) => out.error = Some(e.to_string()),
            Ok(p) => {
                out.certificates = super::view::certificate_statuses(&p);
                if p.state.provisioning().is_none() {
                    out.attention.push(
                        "The SAML app is gone from the tenant: apply again to recreate it.".into(),
                    );
                } else {
                    // Entra mails 60 days ahead; so does this.
                    let limit = warn_days.max(60);
                    match out.certificates.iter().find(|c| c.preferred) {
                        None => out.attention.push("No signing certificate is preferred: single sign-on fails. Apply again to add one.".into()),
                        Some(c) => {
                            let days = c.expires.map(|e| secrets::days_until(e, now));
                            if days.is_none_or(|d| d < limit) {
                                out.attention.push(format!(
                                    "The SAML signing certificate {} expires in {} days: apply again to add a new one; services reading the metadata URL pick it up, others need the new certificate.",
                                    c.thumbprint,
                                    days.unwrap_or(0)
                                ));
                            }
                        }
                    }
                }
                out.drift = p.plan.changes.iter().map(|c| c.title.clone()).collect();
                if !out.drift.is_empty() {
                    out.attention.push(format!(
                        "{} change(s) would be made: {}.",
                        out.drift.len(),
                        out.drift.join("; ")
                    ));
                }
            }
        }
    }
    if intent.provider.vendor_apps().next().is_some() {
        let mut intent = intent.clone();
        intent.tenant_id.clone_from(&s.account.tenant_id);
        match super::vendor::attention(&s.graph, &intent, &j).await {
            Ok(a) => out.attention.extend(a),
            Err(e) => out.error = Some(e.to_string()),
        }
    }
    let provisions_only = !has_sign_in && intent.saml.is_none() && intent.provider.scim.is_some();
    let provisioned = record.is_some() || provisions_only || prev.provisions;
    if intent.provider.scim.is_some() && provisioned {
        match state::read_provisioning(&s.graph, &intent, &hints.unfinished_instantiations).await {
            Ok(Some(sc)) => {
                let status = match &sc.job {
                    Some(job) => provisioning::job_status(&s.graph, &sc.sp_id, &job.id)
                        .await
                        .ok(),
                    None => None,
                };
                if let Some(st) = status
                    .as_ref()
                    .filter(|st| matches!(st.tone.as_str(), "attention" | "error"))
                {
                    out.attention.push(format!("Provisioning: {}", st.headline));
                }
                out.scim = Some(ProvisioningStatus {
                    status,
                    token_expires: record.as_ref().and_then(|r| r.token_expires),
                });
            }
            Ok(None) => out.attention.push(
                "The provisioning app is gone from the tenant: apply again to recreate it.".into(),
            ),
            Err(e) => out.error = Some(e.to_string()),
        }
        if let Some(d) = record.as_ref().and_then(|r| r.token_expires) {
            let days = (d - now.date_naive()).num_days();
            if days < warn_days {
                out.attention.push(format!("The SCIM token expires in {days} days ({d}): get a new one from the provider and save it with the wizard."));
            }
        }
    }
    out
}
