//! Steps 2–4, 7 and 8 for OIDC providers: choose the service, review the plan, apply it, test
//! it, and hand the provider what it needs. The secret stays in Rust: the webview gets its hint
//! and expiry, and the secret reaches the clipboard, a file or the provider's API from here.

use std::collections::BTreeMap;
use std::sync::Arc;

use entra_setup_core::auth::{Method, SignInEvent, StepScopes};
use entra_setup_core::checks::{self, CheckResult, SecretRetry};
use entra_setup_core::outputs::{self, Rendered};
use entra_setup_core::preflight::Preflight;
use entra_setup_core::provider::{
    self, InputError, InputKind, InputSpec, PermissionKind, Protocol,
};
use entra_setup_core::push::{self, PushResult};
use entra_setup_core::session::{self, Session};
use entra_setup_core::setup::apply::{ApplyEvent, ApplyOptions};
use entra_setup_core::setup::flow::{self, Prepared, SetupError};
use entra_setup_core::setup::plan::{Change, Plan};
use entra_setup_core::setup::secrets::{self, SecretStatus};
use entra_setup_core::setup::undo::{self, Undone};
use entra_setup_core::setup::{found, journal, Intent};
use entra_setup_core::tenant::{Advice, Link};
use entra_setup_core::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tauri::ipc::Channel;
use tauri::State;
use tokio_util::sync::CancellationToken;
use tracing::instrument;

use crate::desktop::Desktop;
use crate::error::IpcError;
use crate::state::{Core, Demo, Paths, SessionState, SetupState};

#[derive(Debug, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct InputInfo {
    pub id: String,
    pub label: String,
    pub help: String,
    pub example: String,
    pub kind: InputKind,
    pub optional: bool,
    pub secret: bool,
}

#[derive(Debug, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct PermissionInfo {
    pub name: String,
    pub kind: PermissionKind,
    pub why: String,
}

/// A provider as the Choose service step shows it.
#[derive(Debug, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct ProviderInfo {
    pub id: String,
    pub name: String,
    pub description: String,
    pub protocol: Protocol,
    pub docs_url: String,
    pub secret_lifetime_days: u32,
    pub inputs: Vec<InputInfo>,
    pub permissions: Vec<PermissionInfo>,
    pub push_inputs: Vec<InputInfo>,
    pub groups_claim_note: Option<String>,
    /// The provider registers a sign-in (OIDC) app.
    pub sign_in: bool,
    /// The provider takes SCIM provisioning from Entra.
    pub scim: bool,
}

fn input_info(i: &InputSpec) -> InputInfo {
    InputInfo {
        id: i.id.clone(),
        label: i.label.clone(),
        help: i.help.clone(),
        example: i.example.clone(),
        kind: i.kind,
        optional: i.optional,
        secret: i.secret,
    }
}

/// What the admin's inputs give: the app's names and redirect URIs.
#[derive(Debug, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct IntentView {
    pub provider_id: String,
    pub unique_name: String,
    pub display_name: String,
    pub redirect_uris: Vec<String>,
    pub secret_lifetime_days: u32,
}

/// How one permission will be granted.
#[derive(Debug, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub enum Grant {
    /// Already consented in this tenant.
    Granted,
    /// The admin's role lets the wizard grant it now.
    InFlow,
    /// A Privileged Role Administrator or Global Administrator must consent.
    Colleague,
}

#[derive(Debug, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct PermissionStatus {
    pub name: String,
    pub kind: PermissionKind,
    pub why: String,
    pub grant: Grant,
}

/// The Register app, Permissions and Review steps.
#[derive(Debug, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct PlanView {
    pub intent: IntentView,
    pub plan: Plan,
    pub preflight: Preflight,
    pub permissions: Vec<PermissionStatus>,
    pub journal: String,
    pub interrupted: bool,
    /// The client secrets already on the app (a re-run), newest first.
    pub secrets: Vec<SecretStatus>,
    /// This plan rotates the client secret on request.
    pub rotate: bool,
}

/// The admin's choices about the client secret.
#[derive(Debug, Deserialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct SecretChoice {
    /// Lifetime in days (default: the provider's; capped by tenant policy).
    pub days: Option<u32>,
    /// Add a new secret now even if the current one is still good (rotation).
    pub rotate: bool,
}

/// After a rotation: the old secrets the wizard made, which the admin retires once the
/// provider uses the new one.
#[derive(Debug, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct RetireOffer {
    pub old: Vec<SecretStatus>,
    /// Retired in this session.
    pub retired: Vec<SecretStatus>,
    /// The new secret was handed to the provider and signed in to Entra.
    pub ready: bool,
    /// What to do before retiring is allowed, when not ready.
    pub waiting_for: Option<String>,
}

#[derive(Debug, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct SecretInfo {
    pub key_id: String,
    pub hint: String,
    pub expires: chrono::DateTime<chrono::Utc>,
    pub handed_over: bool,
}

#[derive(Debug, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct GroupInfo {
    pub id: String,
    pub name: String,
}

/// The Done step.
#[derive(Debug, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct DoneView {
    pub provider_name: String,
    pub display_name: String,
    pub tenant_id: String,
    pub app_id: String,
    pub app_object_id: String,
    pub service_principal_id: Option<String>,
    pub secret: Option<SecretInfo>,
    pub consent_url: Option<String>,
    pub checks: Vec<CheckResult>,
    pub outputs: Vec<Rendered>,
    pub advice: Vec<Advice>,
    pub links: Vec<Link>,
    pub push_inputs: Vec<InputInfo>,
    pub groups: Vec<GroupInfo>,
    pub groups_claim_note: Option<String>,
    pub journal: String,
    pub demo: bool,
    /// The provider has a sign-in app (false for SCIM-only providers).
    pub sign_in: bool,
    pub scim: Option<ScimDone>,
    pub retire: Option<RetireOffer>,
}

/// The provisioning part of Done.
#[derive(Debug, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct ScimDone {
    pub app_name: String,
    pub app_id: String,
    pub service_principal_id: String,
    pub job_id: Option<String>,
    pub status: Option<entra_setup_core::provisioning::JobStatus>,
    pub tenant_url: Option<String>,
    pub sync_all: Option<bool>,
    pub advice: Vec<Advice>,
    pub links: Vec<Link>,
}

/// The providers the wizard knows.
#[tauri::command]
#[specta::specta]
pub fn providers() -> Result<Vec<ProviderInfo>, IpcError> {
    let all = provider::all().map_err(|e| IpcError::Blocked {
        message: e.to_string(),
    })?;
    Ok(all
        .iter()
        .map(|p| ProviderInfo {
            id: p.id().to_string(),
            name: p.name.clone(),
            description: p.description.clone(),
            protocol: p.protocol(),
            docs_url: p.docs_url.clone(),
            secret_lifetime_days: p.secret_lifetime_days(),
            inputs: p.inputs.iter().map(input_info).collect(),
            permissions: p
                .permissions
                .iter()
                .map(|x| PermissionInfo {
                    name: x.name.clone(),
                    kind: x.kind,
                    why: x.why.clone(),
                })
                .collect(),
            push_inputs: p
                .push
                .iter()
                .flat_map(|x| x.inputs.iter())
                .map(input_info)
                .collect(),
            groups_claim_note: p.groups_claim_note().map(str::to_string),
            sign_in: p.has_sign_in(),
            scim: p.scim.is_some(),
        })
        .collect())
}

fn intent(
    provider_id: &str,
    inputs: &BTreeMap<String, String>,
    secret_days: Option<u32>,
) -> Result<Intent, IpcError> {
    let p = provider::find(provider_id).ok_or_else(|| IpcError::Invalid {
        field: "provider".into(),
        message: format!("There is no provider '{provider_id}'."),
    })?;
    Intent::new(p, inputs, secret_days).map_err(|errors| IpcError::Inputs { errors })
}

fn intent_view(i: &Intent) -> IntentView {
    IntentView {
        provider_id: i.provider.id().to_string(),
        unique_name: i.unique_name(),
        display_name: i.display_name(),
        redirect_uris: i.redirect_uris(),
        secret_lifetime_days: i.secret_lifetime_days,
    }
}

/// A setup done before in the signed-in tenant, offered for a re-run.
#[derive(Debug, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct PreviousSetupView {
    #[serde(flatten)]
    pub setup: entra_setup_core::setup::journal::PreviousSetup,
    pub provider_name: String,
}

/// The setups the wizard applied in the signed-in tenant before (from its journals), the latest
/// first; providers this version no longer knows are left out.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn previous_setups(
    sessions: State<'_, SessionState>,
    paths: State<'_, Paths>,
) -> Result<Vec<PreviousSetupView>, IpcError> {
    let guard = sessions.inner.lock().await;
    let active = guard.as_ref().ok_or(IpcError::NotSignedIn)?;
    let known = provider::all().map_err(|e| IpcError::Blocked {
        message: e.to_string(),
    })?;
    let dir = paths.journals(active.demo);
    let tenant = &active.session.account.tenant_id;
    // The tenant's own record too, when the app-reading permission is already consented
    // (asking for it here would interrupt the step with a consent prompt).
    let setups = match found::known(&active.session.graph, &dir, tenant).await {
        Ok(all) => all,
        Err(e) => {
            tracing::info!(error = %e, "earlier setups from the journals only");
            journal::previous_setups(&dir, tenant)
        }
    };
    Ok(setups
        .into_iter()
        .filter_map(|setup| {
            let p = known.iter().find(|p| p.id() == setup.provider_id)?;
            Some(PreviousSetupView {
                provider_name: p.name.clone(),
                setup,
            })
        })
        .collect())
}

/// Checks every earlier setup in the signed-in tenant (read-only): secret expiry, drift,
/// provisioning, and what needs attention. Asks for the provisioning permissions first when an
/// earlier setup provisions (progress through `events`).
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn check_previous_setups(
    events: Channel<SignInEvent>,
    core: State<'_, Core>,
    demo: State<'_, Demo>,
    sessions: State<'_, SessionState>,
    paths: State<'_, Paths>,
) -> Result<Vec<entra_setup_core::setup::status::SetupStatus>, IpcError> {
    let guard = sessions.inner.lock().await;
    let active = guard.as_ref().ok_or(IpcError::NotSignedIn)?;
    let dir = paths.journals(active.demo);
    let sink: Arc<dyn Fn(SignInEvent) + Send + Sync> = Arc::new(move |e| {
        let _ = events.send(e);
    });
    // Provisioning permissions too: a setup found only in the tenant may provision.
    session::ensure_scopes(
        &context_for(&core, &demo, active.demo),
        &active.session,
        StepScopes::setup(true),
        Method::Browser,
        sink,
        &CancellationToken::new(),
    )
    .await?;
    let previous = found::known(
        &active.session.graph,
        &dir,
        &active.session.account.tenant_id,
    )
    .await?;
    let mut out = vec![];
    for p in &previous {
        out.push(
            Box::pin(entra_setup_core::setup::status::check(
                &active.session,
                &dir,
                p,
                secrets::EXPIRES_SOON_DAYS,
            ))
            .await,
        );
    }
    Ok(out)
}

/// Checks the provider inputs. Errors: `inputs`, one message per field.
#[tauri::command]
#[specta::specta]
pub fn check_inputs(
    provider_id: String,
    inputs: BTreeMap<String, String>,
    secret_days: Option<u32>,
) -> Result<IntentView, IpcError> {
    intent(&provider_id, &inputs, secret_days).map(|i| intent_view(&i))
}

fn setup_error(e: SetupError) -> IpcError {
    match e {
        SetupError::Graph(g) => g.into(),
        SetupError::Plan(p) => IpcError::Blocked {
            message: p.to_string(),
        },
    }
}

fn permission_statuses(p: &Prepared) -> Vec<PermissionStatus> {
    let granted_scopes = p.state.granted_scopes();
    p.intent
        .provider
        .permissions
        .iter()
        .map(|perm| {
            let name = perm.name.clone();
            let already = match perm.kind {
                PermissionKind::Delegated => granted_scopes.contains(&name),
                PermissionKind::Application => p
                    .state
                    .graph_sp
                    .permission_id(&name, perm.kind)
                    .is_some_and(|id| {
                        p.state
                            .assignments
                            .iter()
                            .any(|a| a.app_role_id.eq_ignore_ascii_case(id))
                    }),
            };
            let colleague = p.plan.changes.iter().any(|c| match &c.change {
                Change::RequestAdminConsent { roles, scopes } => {
                    roles.contains(&name) || scopes.contains(&name)
                }
                _ => false,
            });
            let grant = if already {
                Grant::Granted
            } else if colleague {
                Grant::Colleague
            } else {
                Grant::InFlow
            };
            PermissionStatus {
                name,
                kind: perm.kind,
                why: perm.why.clone(),
                grant,
            }
        })
        .collect()
}

fn context_for(core: &Core, demo: &Demo, is_demo: bool) -> session::Context {
    if is_demo {
        demo.context(&core.http)
    } else {
        core.context()
    }
}

/// Reads the tenant and computes the plan, asking the admin to consent to the setup
/// permissions first if needed (progress through `events`).
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err, fields(provider = %provider_id))]
#[allow(clippy::too_many_arguments)]
pub async fn prepare_setup(
    provider_id: String,
    inputs: BTreeMap<String, String>,
    secret: SecretChoice,
    scim: Option<super::scim::ScimChoice>,
    events: Channel<SignInEvent>,
    core: State<'_, Core>,
    demo: State<'_, Demo>,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
    paths: State<'_, Paths>,
) -> Result<PlanView, IpcError> {
    let mut intent = intent(&provider_id, &inputs, secret.days)?.with_rotation(secret.rotate);
    let guard = sessions.inner.lock().await;
    let active = guard.as_ref().ok_or(IpcError::NotSignedIn)?;
    if let Some(choice) = &scim {
        let expires =
            super::scim::parse_date("scim_token_expires", choice.token_expires.as_deref())?;
        let record = entra_setup_core::setup::journal::Journal::open(
            &paths.journals(active.demo),
            &active.session.account.tenant_id,
            &intent.unique_name(),
        )
        .scim_record();
        let token = setup.scim_token.lock().await;
        // A new token is saved when the admin entered one now, or when the settings changed
        // (Entra saves them together) and the keychain held one.
        let changed = record.as_ref().is_none_or(|r| {
            r.tenant_url != choice.tenant_url.trim()
                || r.sync_all != choice.sync_all
                || r.token_expires != expires
        });
        let new_token = token.as_ref().is_some_and(|t| t.fresh || changed);
        let si = entra_setup_core::setup::ScimIntent::new(
            &choice.tenant_url,
            new_token,
            expires,
            choice.sync_all,
            choice.assign.clone(),
            choice.start,
        )
        .map_err(|errors| IpcError::Inputs { errors })?;
        intent = intent
            .with_scim(si)
            .map_err(|errors| IpcError::Inputs { errors })?;
    }
    let ctx = context_for(&core, &demo, active.demo);
    let sink: Arc<dyn Fn(SignInEvent) + Send + Sync> = Arc::new(move |e| {
        let _ = events.send(e);
    });
    session::ensure_scopes(
        &ctx,
        &active.session,
        StepScopes::setup(scim.is_some()),
        Method::Browser,
        sink,
        &CancellationToken::new(),
    )
    .await?;
    let held = setup.held_secret_ids().await;
    let prepared = flow::prepare(&active.session, &paths.journals(active.demo), intent, &held)
        .await
        .map_err(setup_error)?;
    let view = PlanView {
        intent: intent_view(&prepared.intent),
        plan: prepared.plan.clone(),
        preflight: prepared.preflight.clone(),
        permissions: permission_statuses(&prepared),
        journal: prepared.journal.path().display().to_string(),
        interrupted: prepared.journal.interrupted(),
        secrets: secrets::statuses(&prepared.state, chrono::Utc::now()),
        rotate: prepared.intent.rotate_secret,
    };
    *setup.prepared.lock().await = Some(prepared);
    Ok(view)
}

async fn done_view(
    s: &Session,
    st: &crate::state::Applied,
    demo: bool,
    checks: Vec<CheckResult>,
) -> DoneView {
    let p = &st.prepared;
    let provider = &p.intent.provider;
    let values = outputs::values(
        &s.cloud,
        &s.account.tenant_id,
        &st.app_id,
        &p.plan.display_name,
        &p.intent.inputs,
        st.secret.as_ref().map(|x| x.end),
    );
    let groups = if provider.groups_claim_note().is_some() {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct G {
            id: String,
            #[serde(default)]
            display_name: Option<String>,
        }
        s.graph
            .get("/groups?$select=id,displayName&$top=50")
            .scopes(StepScopes::RegisterApp)
            .list::<G>()
            .await
            .map(|gs| {
                gs.into_iter()
                    .map(|g| GroupInfo {
                        id: g.id,
                        name: g.display_name.unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        vec![]
    };
    let scim = match &st.scim {
        Some(sc) if p.intent.scim.is_some() || provider.scim.is_some() => {
            let status = match &sc.job_id {
                Some(job) => entra_setup_core::provisioning::job_status(&s.graph, &sc.sp_id, job)
                    .await
                    .ok(),
                None => None,
            };
            let record = p.journal.scim_record();
            let mut advice =
                outputs::scim_advice(provider, record.as_ref().and_then(|r| r.token_expires));
            if provider.scim.as_ref().is_some_and(|x| x.match_sso_groups) {
                if let Some(sso) = &st.sp_id {
                    if let Ok(Some(a)) = entra_setup_core::people::group_mismatch(
                        &s.graph,
                        sso,
                        &sc.sp_id,
                        &provider.name,
                    )
                    .await
                    {
                        advice.insert(0, a);
                    }
                }
            }
            let ent = |blade: &str| {
                s.cloud.portal_link(&format!(
                    "#view/Microsoft_AAD_IAM/ManagedAppMenuBlade/~/{blade}/objectId/{}/appId/{}",
                    sc.sp_id, sc.app_id
                ))
            };
            Some(ScimDone {
                app_name: p.intent.scim_display_name(),
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
        _ => None,
    };
    let sign_in = provider.has_sign_in();
    // Without a new secret, the warnings speak of the one the provider uses now.
    let secret_end = st.secret.as_ref().map(|x| x.end).or_else(|| {
        secrets::statuses(&p.state, chrono::Utc::now())
            .into_iter()
            .find(|x| x.by_wizard && x.health != secrets::SecretHealth::Expired)
            .and_then(|x| x.expires)
    });
    DoneView {
        retire: retire_offer(st),
        sign_in,
        scim,
        provider_name: provider.name.clone(),
        display_name: p.plan.display_name.clone(),
        tenant_id: s.account.tenant_id.clone(),
        app_id: st.app_id.clone(),
        app_object_id: st.app_object_id.clone(),
        service_principal_id: st.sp_id.clone(),
        secret: st.secret.as_ref().map(|x| SecretInfo {
            key_id: x.key_id.clone(),
            hint: x.hint.clone(),
            expires: x.end,
            handed_over: st.handed_over,
        }),
        consent_url: st.consent_url.clone(),
        checks,
        outputs: outputs::render_all(provider, &values),
        advice: if sign_in {
            outputs::done_advice(provider, Some(&p.preflight), secret_end)
        } else {
            vec![]
        },
        links: if sign_in {
            outputs::portal_links(&s.cloud, &st.app_id, st.sp_id.as_deref())
        } else {
            vec![]
        },
        push_inputs: provider
            .push
            .iter()
            .flat_map(|x| x.inputs.iter())
            .map(input_info)
            .collect(),
        groups,
        groups_claim_note: provider.groups_claim_note().map(str::to_string),
        journal: p.journal.path().display().to_string(),
        demo,
    }
}

/// The old secrets a rotation leaves behind, and whether they may go yet.
fn retire_offer(st: &crate::state::Applied) -> Option<RetireOffer> {
    let new = st.secret.as_ref()?;
    let p = &st.prepared;
    let old: Vec<SecretStatus> =
        secrets::left_after_rotation(&p.plan, &p.state, &new.key_id, chrono::Utc::now())
            .into_iter()
            .filter(|x| !st.retired.iter().any(|r| r.key_id == x.key_id))
            .collect();
    if old.is_empty() && st.retired.is_empty() {
        return None;
    }
    let waiting_for =
        secrets::retire_blocker(&p.intent.provider.name, st.delivered, st.secret_tested);
    Some(RetireOffer {
        ready: waiting_for.is_none(),
        waiting_for,
        old,
        retired: st.retired.clone(),
    })
}

/// Runs the live tests; remembers when the new secret signed in (retiring old ones needs it).
async fn run_checks(s: &Session, st: &mut crate::state::Applied) -> Vec<CheckResult> {
    let http = entra_setup_core::http::client();
    let mut out = vec![checks::discovery(&http, &s.cloud, &s.account.tenant_id).await];
    if let Some((sp, job)) = st
        .scim
        .as_ref()
        .and_then(|x| x.job_id.as_ref().map(|j| (x.sp_id.clone(), j.clone())))
    {
        if st.prepared.journal.scim_record().is_some() {
            out.push(checks::scim_connection(&s.graph, &sp, &job).await);
        }
    }
    if let Some(secret) = &st.secret {
        let app_perms = st.consent_url.is_none()
            && !st
                .prepared
                .intent
                .provider
                .permission_names(PermissionKind::Application)
                .is_empty();
        out.extend(
            checks::secret_and_consent(
                &http,
                &s.cloud,
                &s.account.token_endpoint,
                &st.app_id,
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
        st.secret_tested = true;
    }
    out
}

/// Applies the plan from `prepare_setup`, streaming progress, then runs the live tests.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn apply_setup(
    events: Channel<ApplyEvent>,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<DoneView, IpcError> {
    let guard = sessions.inner.lock().await;
    let active = guard.as_ref().ok_or(IpcError::NotSignedIn)?;
    let prepared = setup
        .prepared
        .lock()
        .await
        .take()
        .ok_or(IpcError::Blocked {
            message: "Review the plan first.".into(),
        })?;
    let sink: Arc<dyn Fn(ApplyEvent) + Send + Sync> = Arc::new(move |e| {
        let _ = events.send(e);
    });
    let options = ApplyOptions {
        scim_token: setup
            .scim_token
            .lock()
            .await
            .as_ref()
            .map(|t| t.value.clone()),
        ..Default::default()
    };
    let result = flow::execute(
        &active.session,
        &prepared,
        &options,
        sink,
        &CancellationToken::new(),
    )
    .await;
    // Once Entra has saved the token, this process only keeps it if the admin asked for the
    // keychain.
    let saved = prepared
        .plan
        .changes
        .iter()
        .any(|c| matches!(c.change, Change::SaveScimSecrets { .. }));
    if saved && result.is_ok() {
        let mut t = setup.scim_token.lock().await;
        if t.as_ref().is_some_and(|t| !t.remembered) {
            *t = None;
        } else if let Some(t) = t.as_mut() {
            t.fresh = false;
        }
    }
    let (applied, failure) = match result {
        Ok(a) => (a, None),
        Err(f) => {
            let f = *f;
            (f.partial, Some(f.error))
        }
    };
    let app_id = applied
        .app_id
        .clone()
        .or_else(|| prepared.state.app.as_ref().map(|a| a.app_id.clone()))
        .unwrap_or_default();
    let app_object_id = applied
        .app_object_id
        .clone()
        .or_else(|| prepared.state.app.as_ref().map(|a| a.id.clone()))
        .unwrap_or_default();
    let sp_id = applied
        .sp_id
        .clone()
        .or_else(|| prepared.state.sp_id.clone());
    let scim_applied = applied.scim.clone().or_else(|| {
        prepared
            .state
            .scim
            .as_ref()
            .map(|s| entra_setup_core::setup::apply::ScimApplied {
                app_object_id: s.app_object_id.clone(),
                app_id: s.app_id.clone(),
                sp_id: s.sp_id.clone(),
                job_id: s.job.as_ref().map(|j| j.id.clone()),
            })
    });
    let st = crate::state::Applied {
        scim: scim_applied,
        app_id,
        app_object_id,
        sp_id,
        secret: applied.secret,
        consent_url: applied.consent_url,
        handed_over: false,
        delivered: false,
        secret_tested: false,
        kept: false,
        retired: vec![],
        prepared,
    };
    *setup.applied.lock().await = Some(st);
    if let Some(e) = failure {
        return Err(IpcError::apply(&e));
    }
    let mut applied_guard = setup.applied.lock().await;
    let st = applied_guard.as_mut().ok_or(IpcError::Internal {
        message: "lost the apply result".into(),
    })?;
    let checks = run_checks(&active.session, st).await;
    Ok(done_view(&active.session, st, active.demo, checks).await)
}

/// Checks consent again and re-runs the live tests.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn recheck_setup(
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<DoneView, IpcError> {
    let guard = sessions.inner.lock().await;
    let active = guard.as_ref().ok_or(IpcError::NotSignedIn)?;
    let mut applied = setup.applied.lock().await;
    let st = applied.as_mut().ok_or(IpcError::Blocked {
        message: "Apply the plan first.".into(),
    })?;
    if st.consent_url.is_some() {
        if let (Some(sp), Some(change)) = (
            &st.sp_id,
            st.prepared
                .plan
                .changes
                .iter()
                .find(|c| matches!(c.change, Change::RequestAdminConsent { .. })),
        ) {
            if let Change::RequestAdminConsent { roles, scopes } = &change.change {
                let ok = entra_setup_core::setup::apply::consent_present(
                    &active.session.graph,
                    &st.prepared.state.graph_sp,
                    sp,
                    roles,
                    scopes,
                )
                .await?;
                if ok {
                    st.consent_url = None;
                }
            }
        }
    }
    let checks = run_checks(&active.session, st).await;
    Ok(done_view(&active.session, st, active.demo, checks).await)
}

/// Demo only: a simulated Global Administrator opens the consent link.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn demo_colleague_consents(
    demo: State<'_, Demo>,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<DoneView, IpcError> {
    let url = {
        let applied = setup.applied.lock().await;
        applied
            .as_ref()
            .and_then(|a| a.consent_url.clone())
            .ok_or(IpcError::Blocked {
                message: "No consent is pending.".into(),
            })?
    };
    demo.colleague_consents(&url).await?;
    recheck_setup(sessions, setup).await
}

/// What to hand over: the secret alone, or an output with the secret filled in.
async fn secret_payload(
    setup: &SetupState,
    sessions: &SessionState,
    output_id: Option<&str>,
) -> Result<(SecretString, String), IpcError> {
    let guard = sessions.inner.lock().await;
    let active = guard.as_ref().ok_or(IpcError::NotSignedIn)?;
    let applied = setup.applied.lock().await;
    let st = applied.as_ref().ok_or(IpcError::Blocked {
        message: "Apply the plan first.".into(),
    })?;
    let s = &active.session;
    let values = outputs::values(
        &s.cloud,
        &s.account.tenant_id,
        &st.app_id,
        &st.prepared.plan.display_name,
        &st.prepared.intent.inputs,
        st.secret.as_ref().map(|x| x.end),
    );
    let provider = &st.prepared.intent.provider;
    match (output_id, &st.secret) {
        (None, Some(secret)) => Ok((secret.value.clone(), "client-secret".into())),
        (None, None) => Err(IpcError::Blocked { message: "There is no new secret: this run did not create one. Re-run with a rotation to get a new one.".into() }),
        (Some(id), secret) => {
            let o = provider.outputs.iter().find(|o| o.id == id).ok_or(IpcError::Invalid { field: "output".into(), message: format!("No output '{id}'.") })?;
            let name = o.file_name.clone().unwrap_or_else(|| format!("{id}.txt"));
            let text = match secret {
                Some(sec) => outputs::render_with_secret(provider, id, &values, &sec.value),
                None if !o.contains_secret => outputs::render_with_secret(provider, id, &values, &SecretString::from(String::new())),
                None => return Err(IpcError::Blocked { message: "This output needs the client secret, and this run did not create one.".into() }),
            }
            .map_err(|e| IpcError::Internal { message: e })?;
            Ok((text, name))
        }
    }
}

async fn mark_handed_over(setup: &SetupState, how: &str) {
    let mut applied = setup.applied.lock().await;
    if let Some(st) = applied.as_mut() {
        if let Some(secret) = &st.secret {
            if let Err(e) =
                st.prepared
                    .journal
                    .handed_over(&st.prepared.plan.id, &secret.key_id, how)
            {
                tracing::warn!(error = %e, "could not journal the hand-over");
            }
            st.handed_over = true;
            if how != "kept in the keychain" {
                st.delivered = true;
            }
        }
    }
}

/// Copies the secret (or an output with it) to the clipboard from Rust; the clipboard is
/// cleared after a minute if it still holds it.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn copy_secret(
    output_id: Option<String>,
    desktop: State<'_, Desktop>,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<(), IpcError> {
    let (text, _) = secret_payload(&setup, &sessions, output_id.as_deref()).await?;
    desktop
        .write_clipboard(text.expose_secret().to_string())
        .map_err(|e| IpcError::Internal {
            message: format!("could not use the clipboard: {e}"),
        })?;
    mark_handed_over(&setup, "copied").await;
    let desktop = desktop.inner().clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        if desktop.read_clipboard().as_deref() == Some(text.expose_secret()) {
            let _ = desktop.write_clipboard(String::new());
        }
    });
    Ok(())
}

/// Saves an output (with the secret, if it holds one) or the expiry reminder to a file the
/// admin picks. Returns the path, or nothing if the admin cancelled.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn save_output(
    output_id: String,
    desktop: State<'_, Desktop>,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<Option<String>, IpcError> {
    let (text, name) = if output_id == "reminder" {
        let applied = setup.applied.lock().await;
        let st = applied.as_ref().ok_or(IpcError::Blocked {
            message: "Apply the plan first.".into(),
        })?;
        let secret = st.secret.as_ref().ok_or(IpcError::Blocked {
            message: "This run created no secret.".into(),
        })?;
        (
            SecretString::from(outputs::expiry_reminder(
                &st.prepared.plan.display_name,
                &secret.key_id,
                secret.end,
            )),
            "client-secret-expiry.ics".to_string(),
        )
    } else {
        secret_payload(&setup, &sessions, Some(&output_id)).await?
    };
    let Some(path) = desktop.save_as(&name).await else {
        return Ok(None);
    };
    outputs::write_private_file(&path, &text).map_err(|e| IpcError::Internal {
        message: format!("could not write {}: {e}", path.display()),
    })?;
    if output_id != "reminder" {
        mark_handed_over(&setup, "saved to a file").await;
    }
    Ok(Some(path.display().to_string()))
}

/// The keychain entry holding an app's client secret (one per app: the latest kept).
fn kept_secret_key(st: &crate::state::Applied) -> String {
    format!("client-secret:{}:{}", st.prepared.plan.tenant_id, st.app_id)
}

/// Keeps the new secret in the OS keychain (opt-in), for later rotation.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn keep_secret(
    core: State<'_, Core>,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<(), IpcError> {
    let (text, _) = secret_payload(&setup, &sessions, None).await?;
    let key = {
        let applied = setup.applied.lock().await;
        let st = applied.as_ref().ok_or(IpcError::Blocked {
            message: "Apply the plan first.".into(),
        })?;
        kept_secret_key(st)
    };
    entra_setup_core::keychain::set(&core.keychain, &key, text).await?;
    mark_handed_over(&setup, "kept in the keychain").await;
    if let Some(st) = setup.applied.lock().await.as_mut() {
        st.kept = true;
    }
    Ok(())
}

/// Pushes the settings to the provider's API (Cloudflare). `inputs` holds the account ID and
/// the API token, used once and never stored.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn push_to_provider(
    inputs: BTreeMap<String, String>,
    core: State<'_, Core>,
    demo: State<'_, Demo>,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<PushResult, IpcError> {
    let is_demo = sessions.inner.lock().await.as_ref().is_some_and(|a| a.demo);
    let (provider, output, mut values) = {
        let applied = setup.applied.lock().await;
        let st = applied.as_ref().ok_or(IpcError::Blocked {
            message: "Apply the plan first.".into(),
        })?;
        let p = st.prepared.intent.provider.clone();
        let out = p
            .push
            .as_ref()
            .map(|x| x.output.clone())
            .ok_or(IpcError::Blocked {
                message: format!("{} has no API to push to.", p.name),
            })?;
        let guard = sessions.inner.lock().await;
        let s = &guard.as_ref().ok_or(IpcError::NotSignedIn)?.session;
        let values = outputs::values(
            &s.cloud,
            &s.account.tenant_id,
            &st.app_id,
            &st.prepared.plan.display_name,
            &st.prepared.intent.inputs,
            st.secret.as_ref().map(|x| x.end),
        );
        (p, out, values)
    };
    let checked = provider
        .validate_push_inputs(&inputs)
        .map_err(|errors: Vec<InputError>| IpcError::Inputs { errors })?;
    let (body, _) = secret_payload(&setup, &sessions, Some(&output)).await?;
    let base = if is_demo {
        Some(demo.fake_cloudflare_api().await?)
    } else {
        None
    };
    let token = SecretString::from(checked.get("api_token").cloned().unwrap_or_default());
    values.extend(
        checked
            .into_iter()
            .filter(|(k, _)| k.as_str() != "api_token"),
    );
    let spec = provider.push.as_ref().ok_or(IpcError::Blocked {
        message: format!("{} has no API to push to.", provider.name),
    })?;
    let r = push::push(&core.http, spec, base.as_deref(), &values, &token, &body)
        .await
        .map_err(IpcError::from)?;
    mark_handed_over(&setup, "pushed to the provider").await;
    Ok(r)
}

/// Removes everything the journal says the wizard created for the last setup.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn undo_setup(
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<Vec<Undone>, IpcError> {
    let guard = sessions.inner.lock().await;
    let active = guard.as_ref().ok_or(IpcError::NotSignedIn)?;
    let journal = {
        let applied = setup.applied.lock().await;
        let prepared = setup.prepared.lock().await;
        applied
            .as_ref()
            .map(|a| a.prepared.journal.clone())
            .or_else(|| prepared.as_ref().map(|p| p.journal.clone()))
            .ok_or(IpcError::Blocked {
                message: "Nothing to undo in this session.".into(),
            })?
    };
    let done = undo::undo(&active.session.graph, &journal, Arc::new(|_| {})).await?;
    *setup.applied.lock().await = None;
    Ok(done)
}

/// After a rotation: removes the wizard's old client secrets, keeping the new one. Allowed only
/// once the new secret went to the provider and signed in to Entra; then re-runs the live tests.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn retire_old_secrets(
    core: State<'_, Core>,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
    paths: State<'_, Paths>,
) -> Result<DoneView, IpcError> {
    let guard = sessions.inner.lock().await;
    let active = guard.as_ref().ok_or(IpcError::NotSignedIn)?;
    let mut applied = setup.applied.lock().await;
    let st = applied.as_mut().ok_or(IpcError::Blocked {
        message: "Apply the plan first.".into(),
    })?;
    let offer = retire_offer(st).ok_or(IpcError::Blocked {
        message: "This run made no new secret, so there is nothing to retire.".into(),
    })?;
    if let Some(why) = offer.waiting_for {
        return Err(IpcError::Blocked { message: why });
    }
    let keep = st
        .secret
        .as_ref()
        .map(|x| x.key_id.clone())
        .unwrap_or_default();
    let quiet: Arc<dyn Fn(ApplyEvent) + Send + Sync> = Arc::new(|_| {});
    match flow::retire_old_secrets(
        &active.session,
        &paths.journals(active.demo),
        &st.prepared.intent,
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
            st.retired
                .extend(offer.old.into_iter().filter(|x| gone.contains(&x.key_id)));
            // A copy kept in the keychain before this run is of a secret that no longer works.
            if !st.kept {
                if let Err(e) =
                    entra_setup_core::keychain::delete(&core.keychain, &kept_secret_key(st)).await
                {
                    tracing::warn!(error = %e, "could not remove the retired secret's keychain copy");
                }
            }
        }
        Err(flow::RetireFailed::Retire(secrets::RetireError::NothingToRetire)) => {
            // Someone removed them already: nothing is left to offer.
            st.retired.extend(offer.old);
        }
        Err(flow::RetireFailed::Graph(e)) => return Err(e.into()),
        Err(flow::RetireFailed::Apply(f)) => return Err(IpcError::apply(&f.error)),
        Err(e) => {
            return Err(IpcError::Apply {
                message: e.to_string(),
                cause: None,
            })
        }
    }
    let checks = run_checks(&active.session, st).await;
    Ok(done_view(&active.session, st, active.demo, checks).await)
}
