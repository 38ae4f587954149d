//! Zero-downtime rotation of a SAML app's signing certificate, after the re-run that added the
//! new one next to the active one: make the new one active once the service has it, then
//! remove the old one. Each is a small plan through the same apply engine and journal as the
//! setup.

use chrono::{DateTime, Utc};

use super::plan::{Change, Plan, PlannedChange};
use super::state::{SigningCert, TenantState};
use super::Intent;

/// Why a certificate step cannot run now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("This setup has no SAML app in this tenant yet, so it has no signing certificate.")]
    NoSamlApp,
    #[error("No signing certificate with thumbprint {0} is on the app. If it was added moments ago, Entra may still be copying it between its servers: wait a minute and try again.")]
    NotFound(String),
    #[error("The certificate {0} has expired: Entra would sign with a certificate services refuse. Rotate again to add a new one.")]
    Expired(String),
    #[error("The certificate {0} is already the active one.")]
    AlreadyActive(String),
    #[error("Only the active signing certificate is left: there is no old one to remove.")]
    NothingToRetire,
}

fn plan(intent: &Intent, tenant_id: &str, changes: Vec<PlannedChange>) -> Plan {
    Plan {
        id: uuid::Uuid::new_v4().to_string(),
        provider_id: intent.provider.id().to_string(),
        unique_name: intent.unique_name(),
        display_name: intent.display_name(),
        tenant_id: tenant_id.to_string(),
        scim_unique_name: None,
        registration: None,
        provisioning: None,
        inputs: intent.entered_inputs(),
        changes,
        notes: vec![],
    }
}

fn app_key(intent: &Intent) -> String {
    intent
        .template_app()
        .map(|a| a.id.clone())
        .unwrap_or_default()
}

fn day(d: Option<DateTime<Utc>>) -> String {
    d.map_or_else(
        || "no end date".into(),
        |e| e.format("%Y-%m-%d").to_string(),
    )
}

/// The plan that makes `thumbprint` the certificate Entra signs with.
pub fn activate_plan(
    intent: &Intent,
    state: &TenantState,
    tenant_id: &str,
    thumbprint: &str,
    now: DateTime<Utc>,
) -> Result<Plan, CertificateError> {
    let saml = &state
        .provisioning()
        .ok_or(CertificateError::NoSamlApp)?
        .saml;
    let cert: &SigningCert = saml
        .certificates
        .iter()
        .find(|c| c.thumbprint.eq_ignore_ascii_case(thumbprint))
        .ok_or_else(|| CertificateError::NotFound(thumbprint.to_string()))?;
    if cert.end.is_some_and(|e| e <= now) {
        return Err(CertificateError::Expired(cert.thumbprint.clone()));
    }
    if saml
        .preferred()
        .is_some_and(|p| p.thumbprint == cert.thumbprint)
    {
        return Err(CertificateError::AlreadyActive(cert.thumbprint.clone()));
    }
    let provider = &intent.provider.name;
    Ok(plan(
        intent,
        tenant_id,
        vec![PlannedChange {
            seq: 0,
            app: app_key(intent),
            change: Change::PreferSigningCertificate {
                thumbprint: Some(cert.thumbprint.clone()),
            },
            title: format!(
                "Sign with the new certificate {} (expires {})",
                cert.thumbprint,
                day(cert.end)
            ),
            reason: format!("You confirmed {provider} has the new certificate; from now on Entra signs every response to it with this one."),
            request: "PATCH /servicePrincipals/{id} (preferredTokenSigningKeyThumbprint)".into(),
            after: vec![],
        }],
    ))
}

/// The plan that removes every signing certificate except the active one.
pub fn retire_plan(
    intent: &Intent,
    state: &TenantState,
    tenant_id: &str,
) -> Result<Plan, CertificateError> {
    let saml = &state
        .provisioning()
        .ok_or(CertificateError::NoSamlApp)?
        .saml;
    let active = saml.preferred().ok_or(CertificateError::NothingToRetire)?;
    let changes: Vec<PlannedChange> = saml
        .certificates
        .iter()
        .filter(|c| c.thumbprint != active.thumbprint)
        .enumerate()
        .map(|(seq, c)| PlannedChange {
            seq,
            app: app_key(intent),
            change: Change::RemoveSigningCertificate {
                thumbprint: c.thumbprint.clone(),
                display_name: c.display_name.clone(),
            },
            title: format!(
                "Remove the old signing certificate {} (expires {})",
                c.thumbprint,
                day(c.end)
            ),
            reason: format!(
                "Entra signs with {} now; the old certificate no longer signs anything, and Entra would keep mailing about its expiry.",
                active.thumbprint
            ),
            request: "PATCH /servicePrincipals/{id} (keyCredentials, passwordCredentials)".into(),
            after: vec![],
        })
        .collect();
    if changes.is_empty() {
        return Err(CertificateError::NothingToRetire);
    }
    Ok(plan(intent, tenant_id, changes))
}
