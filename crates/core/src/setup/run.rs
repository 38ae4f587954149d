//! One setup run, from apply to hand-over: what the apply made, the new secret until it is
//! handed over, where it went, what the live tests proved, and the old secrets a rotation
//! retires. The desktop app and the CLI both hold a [`Run`], so they cannot disagree about when
//! a secret counts as delivered, which tests run, or what Done shows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use super::apply::{ApplyError, ApplyEvent, ApplyOptions, NewSecret, ScimApplied};
use super::flow::{self, Prepared, RetireFailed};
use super::plan::Change;
use super::secrets::{self, SecretHealth, SecretStatus};
use super::test_sign_in;
use super::view::{DoneView, GroupInfo, RetireOffer, ScimDone, SecretInfo};
use crate::auth::StepScopes;
use crate::checks::{self, CheckResult, SecretRetry};
use crate::graph::GraphError;
use crate::keychain::{self, SecretStore};
use crate::outputs;
use crate::provider::{PermissionKind, SignIn};
use crate::push::{self, PushError, PushResult};
use crate::session::Session;
use crate::tenant::Link;

/// Where a new secret went. Only these count as handed over; only the first three as delivered
/// to the provider (a copy in the keychain alone does not sign anyone in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandOver {
    Copied,
    Saved,
    Pushed,
    KeptInKeychain,
}

impl HandOver {
    /// How the journal and the CLI say it.
    pub fn words(self) -> &'static str {
        match self {
            Self::Copied => "copied",
            Self::Saved => "saved to a file",
            Self::Pushed => "pushed to the provider",
            Self::KeptInKeychain => "kept in the keychain",
        }
    }

    fn delivers(self) -> bool {
        self != Self::KeptInKeychain
    }
}

/// The calendar reminder of the new secret's expiry, as a file.
pub const REMINDER_FILE: &str = "secret-expiry.ics";

/// The keychain entry holding an app's client secret (one per app: the latest kept).
pub fn client_secret_key(tenant_id: &str, app_id: &str) -> String {
    format!("client-secret:{tenant_id}:{app_id}")
}

/// Why a hand-over or a push could not be done.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("There is no new secret: this run did not create one. Re-run with a rotation to get a new one.")]
    NoSecret,
    #[error("This output needs the client secret, and this run did not create one.")]
    OutputNeedsSecret,
    #[error("No output '{0}'.")]
    NoOutput(String),
    #[error("The output could not be made: {0}")]
    Render(#[from] outputs::OutputError),
    #[error("{0} has no API to push to.")]
    NoPush(String),
    #[error("Fix the push inputs: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "))]
    PushInputs(Vec<crate::provider::InputError>),
    #[error(transparent)]
    Push(#[from] PushError),
    #[error("Could not write {0}: {1}")]
    Write(String, String),
    #[error(transparent)]
    Keychain(#[from] keychain::KeychainError),
    #[error("The app's federation metadata could not be fetched and checked: {0}")]
    SamlMetadata(String),
    #[error("This run made no new secret, so there is nothing to retire.")]
    NothingToRetire,
    #[error("{0}")]
    NotYet(String),
    #[error(transparent)]
    Retire(#[from] RetireFailed),
    #[error("No new signing certificate is waiting to be made active: re-run with a rotation to add one.")]
    NoNewCertificate,
    #[error(transparent)]
    Certificate(#[from] flow::CertificateFailed),
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// The SAML app of a setup after its apply: what the hand-over is made from.
#[derive(Clone, Debug)]
pub struct SamlApplied {
    pub app_object_id: String,
    pub app_id: String,
    pub sp_id: String,
    /// The certificate Entra signs with (added by this run, or found).
    pub cert: Option<crate::setup::state::SigningCert>,
    /// The federation metadata as last fetched and checked.
    pub metadata: Option<String>,
    /// A rotation's new certificate, added next to the active one and not signing yet.
    pub pending: Option<crate::setup::state::SigningCert>,
    /// The certificate that signed before this run made the new one active.
    pub replaced: Option<crate::setup::state::SigningCert>,
    /// Thumbprints of old certificates removed after a rotation in this run.
    pub retired: Vec<String>,
}

/// A file of the SAML hand-over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub enum SamlFile {
    /// The federation metadata XML, fetched and checked live.
    Metadata,
    /// The signing certificate, PEM (Base64).
    CertificatePem,
    /// The signing certificate, DER (.cer).
    CertificateCer,
}

/// The files a SAML hand-over saves.
pub const SAML_METADATA_FILE: &str = "federation-metadata.xml";
pub const SAML_CERT_PEM_FILE: &str = "saml-signing-certificate.pem";
pub const SAML_CERT_CER_FILE: &str = "saml-signing-certificate.cer";

/// One setup run after its apply.
pub struct Run {
    /// SAML sign-on, when the setup has it.
    pub saml: Option<SamlApplied>,
    /// The admin confirmed that an administrator of the service still signs in with a
    /// password (the lockout guard of single sign-on).
    pub password_admin_confirmed: bool,
    pub prepared: Prepared,
    pub app_id: String,
    pub app_object_id: String,
    pub sp_id: Option<String>,
    pub scim: Option<ScimApplied>,
    pub secret: Option<NewSecret>,
    pub consent_url: Option<String>,
    pub handed_over: bool,
    /// The new secret went to the provider (copied, saved or pushed; the keychain alone is not).
    pub delivered: bool,
    /// The new secret signed in to Entra in a live test.
    pub secret_tested: bool,
    /// The new secret was kept in the OS keychain in this run.
    pub kept: bool,
    /// Old secrets retired after this run's rotation.
    pub retired: Vec<SecretStatus>,
    /// A copy of a retired secret this computer kept (the OS keychain), held until Entra
    /// refuses it, so the live tests can say when a leaked copy became useless.
    retired_copy: Option<SecretString>,
}

impl Run {
    /// Applies `prepared`. The run holds whatever was made even when the apply stopped
    /// part-way (a new secret must still be handed over); the error, if any, comes with it.
    pub async fn apply(
        session: &Session,
        prepared: Prepared,
        options: &ApplyOptions,
        on_event: Arc<dyn Fn(ApplyEvent) + Send + Sync>,
        cancel: &CancellationToken,
    ) -> (Self, Option<ApplyError>) {
        let result = flow::execute(session, &prepared, options, on_event, cancel).await;
        let (applied, failure) = match result {
            Ok(a) => (a, None),
            Err(f) => {
                let f = *f;
                (f.partial, Some(f.error))
            }
        };
        let state = &prepared.state;
        let prefers = prepared
            .plan
            .changes
            .iter()
            .any(|c| matches!(c.change, Change::PreferSigningCertificate { .. }));
        let saml = prepared.intent.saml.as_ref().and_then(|_| {
            let app = prepared.intent.template_app()?;
            let ids = applied.apps.get(&app.id)?;
            let found = state.provisioning().map(|t| &t.saml);
            // A rotation's new certificate: added by this apply without being made active, or
            // by an earlier one and still waiting (the newest certificate that is not active).
            let pending = if prefers {
                None
            } else {
                applied.signing_cert.clone().or_else(|| {
                    let saml = found?;
                    let active = saml.preferred()?;
                    saml.certificates
                        .iter()
                        .filter(|c| c.thumbprint != active.thumbprint && c.end > active.end)
                        .max_by_key(|c| c.end)
                        .cloned()
                })
            };
            Some(SamlApplied {
                pending,
                replaced: None,
                retired: vec![],
                app_object_id: ids.object_id.clone()?,
                app_id: ids.app_id.clone()?,
                sp_id: ids.sp_id.clone()?,
                cert: applied
                    .signing_cert
                    .clone()
                    .filter(|_| prefers)
                    .or_else(|| {
                        let t = state.provisioning()?;
                        // The certificate Entra signs with now: preferred before, or by this plan.
                        let chosen = prepared.plan.changes.iter().find_map(|c| match &c.change {
                            Change::PreferSigningCertificate { thumbprint } => thumbprint.clone(),
                            _ => None,
                        });
                        match chosen {
                            Some(th) => t
                                .saml
                                .certificates
                                .iter()
                                .find(|c| c.thumbprint == th)
                                .cloned(),
                            None => t.saml.preferred().cloned(),
                        }
                    }),
                metadata: None,
            })
        });
        let run = Self {
            saml,
            password_admin_confirmed: false,
            app_id: applied
                .app_id
                .clone()
                .or_else(|| state.app().map(|a| a.app_id.clone()))
                .unwrap_or_default(),
            app_object_id: applied
                .app_object_id
                .clone()
                .or_else(|| state.app().map(|a| a.id.clone()))
                .unwrap_or_default(),
            sp_id: applied
                .sp_id
                .clone()
                .or_else(|| state.sp_id().map(str::to_string)),
            scim: applied.scim.clone().or_else(|| {
                state.provisioning().map(|s| ScimApplied {
                    app_object_id: s.app_object_id.clone(),
                    app_id: s.app_id.clone(),
                    sp_id: s.sp_id.clone(),
                    job_id: s.job.as_ref().map(|j| j.id.clone()),
                })
            }),
            secret: applied.secret,
            consent_url: applied.consent_url,
            handed_over: false,
            delivered: false,
            secret_tested: false,
            kept: false,
            retired: vec![],
            retired_copy: None,
            prepared,
        };
        (run, failure)
    }

    /// After the service has the rotation's new certificate: makes it the one Entra signs with.
    pub async fn activate_certificate(&mut self, session: &Session) -> Result<(), RunError> {
        let saml = self.saml.as_mut().ok_or(RunError::NoNewCertificate)?;
        let new = saml.pending.clone().ok_or(RunError::NoNewCertificate)?;
        flow::certificate_step(
            session,
            &self.prepared.journal,
            &self.prepared.intent,
            flow::CertificateStep::Activate(&new.thumbprint),
        )
        .await?;
        saml.replaced = saml.cert.replace(new);
        saml.pending = None;
        saml.metadata = None;
        Ok(())
    }

    /// After the new certificate is active: removes the old ones.
    pub async fn retire_certificates(&mut self, session: &Session) -> Result<(), RunError> {
        let saml = self.saml.as_mut().ok_or(RunError::NothingToRetire)?;
        let (plan, _) = flow::certificate_step(
            session,
            &self.prepared.journal,
            &self.prepared.intent,
            flow::CertificateStep::RetireOld,
        )
        .await?;
        saml.retired
            .extend(plan.changes.iter().filter_map(|c| match &c.change {
                Change::RemoveSigningCertificate { thumbprint, .. } => Some(thumbprint.clone()),
                _ => None,
            }));
        Ok(())
    }

    /// Signs a person in to the app this setup made, as the service will, and reports what the
    /// service receives (see [`test_sign_in`]).
    pub async fn test_sign_in(
        &self,
        session: &Session,
        http: &reqwest::Client,
        opener: &dyn crate::auth::BrowserOpener,
        cancel: &CancellationToken,
    ) -> Result<test_sign_in::SignInReport, test_sign_in::TestSignInError> {
        use test_sign_in::Target;
        let intent = &self.prepared.intent;
        let target = match (&self.saml, &intent.saml, &intent.provider.sign_in) {
            (Some(applied), Some(saml), Some(SignIn::Saml(spec))) => Target::Saml {
                app_object_id: &applied.app_object_id,
                sp_id: &applied.sp_id,
                entity_id: &saml.entity_id,
                reply_urls: &saml.reply_urls,
                name_id: &spec.name_id,
                known_certificates: applied
                    .cert
                    .iter()
                    .chain(applied.pending.iter())
                    .filter_map(crate::setup::state::SigningCert::der)
                    .collect(),
            },
            (_, _, Some(SignIn::Oidc(_))) if !self.app_object_id.is_empty() => Target::Oidc {
                app_object_id: &self.app_object_id,
                app_id: &self.app_id,
            },
            _ => return Err(test_sign_in::TestSignInError::NothingToTest),
        };
        test_sign_in::run(
            session,
            http,
            opener,
            &self.prepared.journal,
            &target,
            cancel,
        )
        .await
    }

    /// Whether the plan saved provisioning credentials (then a held SCIM token may go).
    pub fn saved_scim_token(&self) -> bool {
        self.prepared
            .plan
            .changes
            .iter()
            .any(|c| matches!(c.change, Change::SaveScimSecrets { .. }))
    }

    /// The values outputs and pushes are rendered with.
    pub fn values(&self, session: &Session) -> BTreeMap<String, String> {
        let tenant = &session.account.tenant_id;
        let mut v = outputs::values(
            &session.cloud,
            tenant,
            &self.app_id,
            &self.prepared.plan.display_name,
            &self.prepared.intent.inputs,
            self.secret.as_ref().map(|x| x.end),
        );
        if let Some(s) = &self.saml {
            let cloud = &session.cloud;
            v.insert(
                "saml_metadata_url".into(),
                crate::saml::metadata_url(cloud, tenant, &s.app_id),
            );
            v.insert(
                "saml_idp_entity_id".into(),
                crate::saml::idp_entity_id(tenant),
            );
            v.insert("saml_sso_url".into(), crate::saml::sso_url(cloud, tenant));
            v.insert(
                "saml_logout_url".into(),
                crate::saml::sso_url(cloud, tenant),
            );
            let (sha1, sha256) = s
                .cert
                .as_ref()
                .and_then(crate::setup::state::SigningCert::der)
                .map(|der| crate::saml::fingerprints(&der))
                .unwrap_or_default();
            v.insert("saml_cert_sha1".into(), sha1);
            v.insert("saml_cert_sha256".into(), sha256);
        }
        v
    }

    /// The live SAML test: the app's federation metadata carries Entra's entity ID, the sign-on
    /// URL and the preferred certificate. Keeps the metadata it checked.
    pub async fn check_saml(&mut self, session: &Session) -> Option<CheckResult> {
        let s = self.saml.as_ref()?;
        let tenant = &session.account.tenant_id;
        let cloud = &session.cloud;
        let thumbprint = s
            .cert
            .as_ref()
            .map(|c| c.thumbprint.clone())
            .unwrap_or_default();
        let (result, xml) = checks::saml_metadata(
            &crate::http::client(),
            &crate::saml::metadata_url(cloud, tenant, &s.app_id),
            &crate::saml::idp_entity_id(tenant),
            &crate::saml::sso_url(cloud, tenant),
            &thumbprint,
        )
        .await;
        if let Some(s) = &mut self.saml {
            s.metadata = xml;
        }
        Some(result)
    }

    /// One file of the SAML hand-over and its usual name; the metadata is fetched and checked
    /// first if the live tests have not done it.
    pub async fn saml_file(
        &mut self,
        session: &Session,
        which: SamlFile,
    ) -> Result<(Vec<u8>, &'static str), RunError> {
        if which == SamlFile::Metadata && self.saml.as_ref().is_some_and(|s| s.metadata.is_none()) {
            if let Some(c) = self.check_saml(session).await {
                if c.status != checks::Status::Pass {
                    return Err(RunError::SamlMetadata(c.detail));
                }
            }
        }
        let s = self
            .saml
            .as_ref()
            .ok_or_else(|| RunError::NotYet("This setup has no SAML sign-on.".into()))?;
        let der = || {
            s.cert
                .as_ref()
                .and_then(crate::setup::state::SigningCert::der)
                .ok_or_else(|| RunError::NotYet("Entra has not published the signing certificate yet: run the tests again in a minute.".into()))
        };
        Ok(match which {
            SamlFile::Metadata => (
                s.metadata.clone().unwrap_or_default().into_bytes(),
                SAML_METADATA_FILE,
            ),
            SamlFile::CertificatePem => {
                (crate::saml::pem(&der()?).into_bytes(), SAML_CERT_PEM_FILE)
            }
            SamlFile::CertificateCer => (der()?, SAML_CERT_CER_FILE),
        })
    }

    /// Saves the SAML hand-over in `dir`: the federation metadata (fetched and checked live,
    /// never typed) and the signing certificate as PEM and CER. Returns the files.
    pub async fn save_saml(
        &mut self,
        session: &Session,
        dir: &Path,
    ) -> Result<Vec<PathBuf>, RunError> {
        if self.saml.is_none() {
            return Ok(vec![]);
        }
        // Checked again here, not only when the profile was read: every file lands in `dir`.
        let inside = |name: &str| {
            crate::files::inside(dir, name)
                .map_err(|e| RunError::Write(dir.display().to_string(), e.to_string()))
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| RunError::Write(dir.display().to_string(), e.to_string()))?;
        let mut files = vec![];
        for which in [
            SamlFile::Metadata,
            SamlFile::CertificatePem,
            SamlFile::CertificateCer,
        ] {
            let (bytes, name) = self.saml_file(session, which).await?;
            let path = inside(name)?;
            // Written beside and renamed over: a symlink planted at the name is replaced,
            // never followed.
            crate::files::write_atomic(&path, &bytes, false)
                .map_err(|e| RunError::Write(path.display().to_string(), e.to_string()))?;
            files.push(path);
        }
        Ok(files)
    }

    /// The live tests: the tenant's OpenID metadata (sign-in providers), Entra's Test
    /// Connection (provisioning configured), and the new secret with the application
    /// permissions consented. Remembers when the new secret signed in (retiring needs it).
    pub async fn checks(&mut self, session: &Session) -> Vec<CheckResult> {
        let http = crate::http::client();
        let mut out = vec![];
        if self.prepared.intent.provider.has_sign_in() {
            out.push(checks::discovery(&http, &session.cloud, &session.account.tenant_id).await);
        }
        if let Some(c) = self.check_saml(session).await {
            out.push(c);
        }
        if self.prepared.intent.provider.vendor_apps().next().is_some() {
            out.extend(super::vendor::live_checks(&session.graph, &self.prepared.intent).await);
        }
        if let Some((sp, job)) = self
            .scim
            .as_ref()
            .and_then(|x| x.job_id.as_ref().map(|j| (x.sp_id.clone(), j.clone())))
        {
            if self.scim_record().is_some() {
                out.push(checks::scim_connection(&session.graph, &sp, &job).await);
            }
        }
        if let Some(old) = &self.retired_copy {
            out.push(
                checks::retired_secret_refused(
                    &http,
                    &session.cloud,
                    &session.account.token_endpoint,
                    &self.app_id,
                    old,
                    &SecretRetry::removal(),
                )
                .await,
            );
        }
        if let Some(secret) = &self.secret {
            let app_perms = self.consent_url.is_none()
                && !self
                    .prepared
                    .intent
                    .provider
                    .permission_names(PermissionKind::Application)
                    .is_empty();
            out.extend(
                checks::secret_and_consent(
                    &http,
                    &session.cloud,
                    &session.account.token_endpoint,
                    &self.app_id,
                    &secret.value,
                    app_perms,
                    &SecretRetry::default(),
                )
                .await,
            );
        }
        if out
            .iter()
            .any(|c| c.id == "client_secret" && c.status == checks::Status::Pass)
        {
            self.secret_tested = true;
        }
        out
    }

    /// Looks again whether a colleague's admin consent arrived.
    pub async fn recheck_consent(&mut self, session: &Session) -> Result<(), GraphError> {
        if self.consent_url.is_none() {
            return Ok(());
        }
        let asked = self
            .prepared
            .plan
            .changes
            .iter()
            .find_map(|c| match &c.change {
                Change::RequestAdminConsent { roles, scopes } => Some((roles, scopes)),
                _ => None,
            });
        if let (Some(sp), Some((roles, scopes))) = (&self.sp_id, asked) {
            if super::apply::consent_present(
                &session.graph,
                &self.prepared.state.graph_sp,
                sp,
                roles,
                scopes,
            )
            .await?
            {
                self.consent_url = None;
            }
        }
        Ok(())
    }

    /// What to hand over: the secret alone (`None`), or an output with it filled in, and a file
    /// name for it.
    pub fn payload(
        &self,
        session: &Session,
        output: Option<&str>,
    ) -> Result<(SecretString, String), RunError> {
        let provider = &self.prepared.intent.provider;
        match (output, &self.secret) {
            (None, Some(secret)) => Ok((secret.value.clone(), "client-secret".into())),
            (None, None) => Err(RunError::NoSecret),
            (Some("reminder"), None) => Err(RunError::NoSecret),
            (Some("reminder"), Some(secret)) => Ok((
                SecretString::from(outputs::expiry_reminder(
                    &self.prepared.plan.display_name,
                    &secret.key_id,
                    secret.end,
                )),
                REMINDER_FILE.into(),
            )),
            (Some(id), secret) => {
                let o = provider
                    .outputs
                    .iter()
                    .find(|o| o.id == id)
                    .ok_or_else(|| RunError::NoOutput(id.to_string()))?;
                let name = o.save_as();
                let values = self.values(session);
                let text = match secret {
                    Some(sec) => outputs::render_with_secret(provider, id, &values, &sec.value),
                    None if !o.contains_secret => outputs::render_with_secret(
                        provider,
                        id,
                        &values,
                        &SecretString::from(String::new()),
                    ),
                    None => return Err(RunError::OutputNeedsSecret),
                }
                .map_err(RunError::Render)?;
                Ok((text, name))
            }
        }
    }

    /// The SCIM settings the journal last recorded. The journal was read whole before this
    /// run planned; damage since (another program writing to it) is logged and shown as no
    /// record in these displays, while every run that plans reports it.
    fn scim_record(&self) -> Option<super::journal::ScimRecord> {
        match self.prepared.journal.scim_record() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "the journal was damaged after planning");
                None
            }
        }
    }

    /// Records where the new secret went (journaled: a secret never handed over is replaced
    /// on the next run).
    pub fn handed_over(&mut self, how: HandOver) {
        let Some(secret) = &self.secret else {
            return;
        };
        if let Err(e) =
            self.prepared
                .journal
                .handed_over(&self.prepared.plan.id, &secret.key_id, how.words())
        {
            tracing::warn!(error = %e, "could not journal the hand-over");
        }
        self.handed_over = true;
        self.delivered |= how.delivers();
        self.kept |= how == HandOver::KeptInKeychain;
    }

    /// Saves every output with the new secret in it, and the expiry reminder, in `dir` (made
    /// if missing; each file readable by the admin only). Returns the files, reminder last.
    pub fn save_all(&mut self, session: &Session, dir: &Path) -> Result<Vec<PathBuf>, RunError> {
        // A SAML setup, or one with the vendor's own apps, has no secret: its outputs are the
        // settings alone. Otherwise outputs without the secret are no hand-over.
        let without_secret =
            self.saml.is_some() || self.prepared.intent.provider.vendor_apps().next().is_some();
        if self.secret.is_none() && !without_secret {
            return Err(RunError::NoSecret);
        }
        let write = |path: PathBuf, text: &SecretString| {
            outputs::write_private_file(&path, text)
                .map(|()| path.clone())
                .map_err(|e| RunError::Write(path.display().to_string(), e.to_string()))
        };
        // Checked again here, not only when the profile was read: every file lands in `dir`.
        let inside = |name: &str| {
            crate::files::inside(dir, name)
                .map_err(|e| RunError::Write(dir.display().to_string(), e.to_string()))
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| RunError::Write(dir.display().to_string(), e.to_string()))?;
        let mut files = vec![];
        for o in &self.prepared.intent.provider.outputs {
            if o.contains_secret && self.secret.is_none() {
                continue;
            }
            let (text, name) = match self.payload(session, Some(&o.id)) {
                // An output made from a list this setup left empty does not apply.
                Err(RunError::Render(outputs::OutputError::NothingListed { .. })) => continue,
                other => other?,
            };
            files.push(write(inside(&name)?, &text)?);
        }
        if self.secret.is_some() {
            let (text, name) = self.payload(session, Some("reminder"))?;
            files.push(write(inside(&name)?, &text)?);
            self.handed_over(HandOver::Saved);
        }
        Ok(files)
    }

    /// Keeps the new secret in the OS keychain (opt-in), for later rotation.
    pub async fn keep(&mut self, store: &Arc<dyn SecretStore>) -> Result<(), RunError> {
        let secret = self.secret.as_ref().ok_or(RunError::NoSecret)?;
        keychain::set(
            store,
            &client_secret_key(&self.prepared.plan.tenant_id, &self.app_id),
            SecretString::from(secret.value.expose_secret().to_string()),
        )
        .await?;
        self.handed_over(HandOver::KeptInKeychain);
        Ok(())
    }

    /// Pushes the settings to the provider's API as its profile describes. `inputs` are the
    /// push inputs (the API token among them, used once); `api_base` replaces the profile's.
    pub async fn push(
        &mut self,
        session: &Session,
        http: &reqwest::Client,
        inputs: &BTreeMap<String, String>,
        api_base: Option<&str>,
    ) -> Result<PushResult, RunError> {
        let provider = self.prepared.intent.provider.clone();
        let spec = provider
            .push
            .as_ref()
            .ok_or_else(|| RunError::NoPush(provider.name.clone()))?;
        let checked = provider
            .validate_push_inputs(inputs)
            .map_err(RunError::PushInputs)?;
        let (body, _) = self.payload(session, Some(&spec.output))?;
        let secret = |k: &str| spec.inputs.iter().any(|i| i.id == k && i.secret);
        let (hidden, plain): (BTreeMap<_, _>, BTreeMap<_, _>) =
            checked.into_iter().partition(|(k, _)| secret(k));
        let secrets: BTreeMap<String, SecretString> = hidden
            .into_iter()
            .map(|(k, v)| (k, SecretString::from(v)))
            .collect();
        let mut values = self.values(session);
        values.extend(plain);
        let client_secret = self.secret.as_ref().map(|x| &x.value);
        let r = push::push(
            http,
            spec,
            api_base,
            &values,
            &secrets,
            &body,
            client_secret,
        )
        .await?;
        self.handed_over(HandOver::Pushed);
        Ok(r)
    }

    /// The old secrets a rotation leaves behind, and whether they may go yet.
    pub fn retire_offer(&self) -> Option<RetireOffer> {
        let new = self.secret.as_ref()?;
        let p = &self.prepared;
        let old: Vec<SecretStatus> =
            secrets::left_after_rotation(&p.plan, &p.state, &new.key_id, Utc::now())
                .into_iter()
                .filter(|x| !self.retired.iter().any(|r| r.key_id == x.key_id))
                .collect();
        if old.is_empty() && self.retired.is_empty() {
            return None;
        }
        let waiting_for =
            secrets::retire_blocker(&p.intent.provider.name, self.delivered, self.secret_tested);
        Some(RetireOffer {
            ready: waiting_for.is_none(),
            waiting_for,
            old,
            retired: self.retired.clone(),
            tested: self.retired_copy.is_some(),
        })
    }

    /// Retires the wizard's old secrets once the new one is delivered and tested; a copy kept
    /// in the keychain before this run goes with them.
    pub async fn retire(
        &mut self,
        session: &Session,
        data_dir: &Path,
        store: &Arc<dyn SecretStore>,
    ) -> Result<(), RunError> {
        let offer = self.retire_offer().ok_or(RunError::NothingToRetire)?;
        if let Some(why) = offer.waiting_for {
            return Err(RunError::NotYet(why));
        }
        let keep = self
            .secret
            .as_ref()
            .map(|x| x.key_id.clone())
            .unwrap_or_default();
        let key = client_secret_key(&self.prepared.plan.tenant_id, &self.app_id);
        // A copy kept before this run is of an old secret: read it before it goes, to test
        // that Entra refuses it.
        let copy = match self.kept {
            true => None,
            false => keychain::get(store, &key).await.ok().flatten(),
        };
        let quiet: Arc<dyn Fn(ApplyEvent) + Send + Sync> = Arc::new(|_| {});
        match flow::retire_old_secrets(
            session,
            data_dir,
            &self.prepared.intent,
            &keep,
            quiet,
            &CancellationToken::new(),
        )
        .await
        {
            Ok((plan, _)) => {
                let gone: Vec<String> = plan
                    .changes
                    .iter()
                    .filter_map(|c| match &c.change {
                        Change::RemovePassword { key_id, .. } => Some(key_id.clone()),
                        _ => None,
                    })
                    .collect();
                let now_retired: Vec<SecretStatus> = offer
                    .old
                    .into_iter()
                    .filter(|x| gone.contains(&x.key_id))
                    .collect();
                let kept_hint = self
                    .secret
                    .as_ref()
                    .map(|x| x.value.expose_secret().chars().take(3).collect::<String>());
                self.retired_copy = copy.filter(|c| {
                    secrets::is_retired_copy(c.expose_secret(), &now_retired, kept_hint.as_deref())
                });
                self.retired.extend(now_retired);
                if !self.kept {
                    if let Err(e) = keychain::delete(store, &key).await {
                        tracing::warn!(error = %e, "could not remove the retired secret's keychain copy");
                    }
                }
                Ok(())
            }
            // Someone removed them already: nothing is left to offer.
            Err(RetireFailed::Retire(secrets::RetireError::NothingToRetire)) => {
                self.retired.extend(offer.old);
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Runs the live tests and returns what Done shows with their results.
    pub async fn tested_view(&mut self, session: &Session, demo: bool) -> DoneView {
        let checks = self.checks(session).await;
        self.done_view(session, demo, checks).await
    }

    /// What the Done step shows.
    pub async fn done_view(
        &self,
        session: &Session,
        demo: bool,
        checks: Vec<CheckResult>,
    ) -> DoneView {
        let p = &self.prepared;
        let provider = &p.intent.provider;
        let values = self.values(session);
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Group {
            id: String,
            display_name: Option<String>,
        }
        let groups = if provider.groups_claim_note().is_some() {
            session
                .graph
                .get("/groups?$select=id,displayName&$top=50")
                .scopes(StepScopes::RegisterApp)
                .list::<Group>()
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|g| GroupInfo {
                    id: g.id,
                    name: g.display_name.unwrap_or_default(),
                })
                .collect()
        } else {
            vec![]
        };
        let sign_in = provider.has_sign_in();
        // Without a new secret, the warnings speak of the one the provider uses now.
        let secret_end = self.secret.as_ref().map(|x| x.end).or_else(|| {
            secrets::statuses(&p.state, Utc::now())
                .into_iter()
                .find(|x| x.by_wizard && x.health != SecretHealth::Expired)
                .and_then(|x| x.expires)
        });
        let saml = self
            .saml
            .as_ref()
            .zip(p.intent.saml.as_ref())
            .map(|(s, want)| {
                let v = |k: &str| values.get(k).cloned().unwrap_or_default();
                super::view::SamlDone {
                    metadata_url: v("saml_metadata_url"),
                    idp_entity_id: v("saml_idp_entity_id"),
                    sso_url: v("saml_sso_url"),
                    logout_url: v("saml_logout_url"),
                    entity_id: want.entity_id.clone(),
                    reply_urls: want.reply_urls.clone(),
                    relay_state: want.relay_state.clone(),
                    certificate_sha1: v("saml_cert_sha1"),
                    certificate_sha256: v("saml_cert_sha256"),
                    certificate_expires: s.cert.as_ref().and_then(|c| c.end),
                    new_certificate: s.pending.as_ref().map(super::view::CertificateView::of),
                    old_certificate: s
                        .replaced
                        .as_ref()
                        .filter(|c| !s.retired.contains(&c.thumbprint))
                        .map(super::view::CertificateView::of),
                    retired_certificates: s.retired.clone(),
                    ways: super::view::saml_ways(),
                    password_admin_confirmed: self.password_admin_confirmed,
                }
            });
        let is_saml = saml.is_some();
        let advises = sign_in || is_saml;
        DoneView {
            saml,
            retire: self.retire_offer(),
            sign_in,
            scim: self.scim_done(session).await,
            provider_name: p.intent.service_name(),
            display_name: p.plan.display_name.clone(),
            tenant_id: session.account.tenant_id.clone(),
            app_id: self.app_id.clone(),
            app_object_id: self.app_object_id.clone(),
            service_principal_id: self.sp_id.clone(),
            secret: self.secret.as_ref().map(|x| SecretInfo {
                key_id: x.key_id.clone(),
                hint: x.hint.clone(),
                expires: x.end,
                handed_over: self.handed_over,
            }),
            consent_url: self.consent_url.clone(),
            checks,
            outputs: outputs::render_all(provider, &values),
            advice: if p.intent.provider.vendor_apps().next().is_some() {
                super::vendor::done_advice(&p.intent)
            } else if advises {
                let mut advice = outputs::done_advice(provider, Some(&p.preflight), secret_end);
                // A SAML setup's lockout guard has a section of its own on Done.
                if is_saml {
                    advice.retain(|a| a.id != "lockout");
                }
                advice
            } else {
                vec![]
            },
            links: if sign_in {
                outputs::portal_links(&session.cloud, &self.app_id, self.sp_id.as_deref())
            } else {
                vec![]
            },
            push_inputs: super::view::push_inputs(provider),
            groups,
            groups_claim_note: provider.groups_claim_note().map(str::to_string),
            journal: p.journal.path().display().to_string(),
            demo,
        }
    }

    async fn scim_done(&self, session: &Session) -> Option<ScimDone> {
        let p = &self.prepared;
        let provider = &p.intent.provider;
        let sc = self.scim.as_ref()?;
        if p.intent.scim.is_none() && provider.scim.is_none() {
            return None;
        }
        let status = match &sc.job_id {
            Some(job) => crate::provisioning::job_status(&session.graph, &sc.sp_id, job)
                .await
                .ok(),
            None => None,
        };
        let record = self.scim_record();
        let mut advice =
            outputs::scim_advice(provider, record.as_ref().and_then(|r| r.token_expires));
        if provider.scim.as_ref().is_some_and(|x| x.match_sso_groups) {
            if let Some(sso) = &self.sp_id {
                if let Ok(Some(a)) =
                    crate::people::group_mismatch(&session.graph, sso, &sc.sp_id, &provider.name)
                        .await
                {
                    advice.insert(0, a);
                }
            }
        }
        let ent = |blade: &str| {
            session.cloud.portal_link(&format!(
                "#view/Microsoft_AAD_IAM/ManagedAppMenuBlade/~/{blade}/objectId/{}/appId/{}",
                sc.sp_id, sc.app_id
            ))
        };
        Some(ScimDone {
            app_name: p.intent.template_display_name(),
            app_id: sc.app_id.clone(),
            service_principal_id: sc.sp_id.clone(),
            job_id: sc.job_id.clone(),
            status,
            tenant_url: record.as_ref().map(|r| r.tenant_url.clone()),
            sync_all: record.as_ref().map(|r| r.sync_all),
            advice,
            links: vec![
                Link {
                    label: "Provisioning".into(),
                    url: ent("ProvisioningManagement"),
                },
                Link {
                    label: "Users and groups (provisioning app)".into(),
                    url: ent("Users"),
                },
                Link {
                    label: "Provisioning logs".into(),
                    url: ent("ProvisioningLogs"),
                },
            ],
        })
    }
}
