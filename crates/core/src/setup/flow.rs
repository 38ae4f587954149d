//! The setup loop as the desktop app and the CLI run it: pre-flight, read state, plan; apply;
//! test. One place, so both shells behave the same.

use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::apply::{self, Applied, ApplyEvent, ApplyFailed, ApplyOptions};
use super::journal::Journal;
use super::plan::{self, Plan, PlanError, PlanInput, RoleFacts};
use super::state::{self, TenantState};
use super::Intent;
use crate::graph::GraphError;
use crate::preflight::{self, Preflight};
use crate::session::Session;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Inputs the tenant contradicts (a group that does not exist), one message per field.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "))]
    Inputs(Vec<crate::provider::InputError>),
    #[error(transparent)]
    Journal(#[from] super::journal::JournalError),
}

/// Looks up the security groups each `group_list` input names; their object IDs become
/// `{<id>_ids}`. Every name that does not match exactly one security group is reported.
async fn resolve_groups(session: &Session, intent: &mut Intent) -> Result<(), SetupError> {
    use crate::people::{self, ResolveError};
    use crate::provider::{list_items, InputError, InputKind};
    let specs: Vec<_> = intent
        .provider
        .inputs
        .iter()
        .filter(|i| i.kind == InputKind::GroupList)
        .cloned()
        .collect();
    let mut errors = vec![];
    for spec in specs {
        let names = list_items(intent.inputs.get(&spec.id).map_or("", String::as_str));
        let mut ids = vec![];
        for name in names {
            match people::resolve_group(&session.graph, &name).await {
                Ok(g) => ids.push(g.id),
                Err(ResolveError::Graph(e)) => return Err(e.into()),
                Err(e) => errors.push(InputError {
                    field: spec.id.clone(),
                    label: spec.label.clone(),
                    message: match e {
                        ResolveError::NotFound(n) => format!("No security group is called \"{n}\": give a group's exact display name or its object ID."),
                        other => other.to_string(),
                    },
                }),
            }
        }
        intent
            .inputs
            .insert(format!("{}_ids", spec.id), ids.join(","));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(SetupError::Inputs(errors))
    }
}

/// Everything the review screen shows, and what apply needs.
pub struct Prepared {
    pub intent: Intent,
    pub preflight: Preflight,
    pub state: TenantState,
    pub plan: Plan,
    pub journal: Journal,
    /// Apps of the setup that hold owners, credentials or redirect URIs the wizard did not put
    /// there: apply writes nothing before the admin adopts them (see [`super::custody`]).
    pub foreign: Vec<super::custody::ForeignApp>,
}

/// Reads the tenant and computes the plan. `held_secret_ids` are secrets this process still
/// holds (not lost even if not handed over yet).
pub async fn prepare(
    session: &Session,
    data_dir: &Path,
    intent: Intent,
    held_secret_ids: &[String],
) -> Result<Prepared, SetupError> {
    // Boxed: the reads it waits on make a large future.
    Box::pin(prepare_boxed(session, data_dir, intent, held_secret_ids)).await
}

async fn prepare_boxed(
    session: &Session,
    data_dir: &Path,
    intent: Intent,
    held_secret_ids: &[String],
) -> Result<Prepared, SetupError> {
    scim_reachable(&session.cloud, &intent)?;
    let mut intent = intent;
    intent.non_gallery_template = session.cloud.non_gallery_template().to_string();
    if intent.saml.is_some() && !session.cloud.adds_signing_certificates() {
        return Err(SetupError::Plan(plan::PlanError::NotInThisCloud(format!(
            "Microsoft Graph cannot add SAML signing certificates in {} (addTokenSigningCertificate exists in the global service only), so this version cannot set up {} there. Create the enterprise app in the Entra admin center (Enterprise applications → New application → Create your own application).",
            session.cloud.name, intent.provider.name
        ))));
    }
    intent.tenant_id.clone_from(&session.account.tenant_id);
    if intent.gallery_templates.is_empty() {
        intent.gallery_templates = super::vendor::gallery_templates(&session.graph, &intent)
            .await
            .map_err(|e| match e {
                super::vendor::GalleryError::Graph(g) => SetupError::Graph(g),
                other => SetupError::Plan(PlanError::NotInThisCloud(other.to_string())),
            })?;
    }
    resolve_groups(session, &mut intent).await?;
    // Entra mails a SAML app's certificate-expiry notices to these: the admin setting it up.
    if let Some(saml) = &mut intent.saml {
        if saml.notify.is_empty() {
            saml.notify = session
                .summary
                .user
                .mail
                .clone()
                .filter(|m| !m.is_empty())
                .or_else(|| Some(session.account.user_principal_name.clone()))
                .into_iter()
                .collect();
        }
    }
    let portal = |f: &str| session.cloud.portal_link(f);
    let unique = intent.unique_name();
    let journal = Journal::open(data_dir, &session.account.tenant_id, &unique);
    let mut hints = journal.hints()?;
    hints
        .unhanded_secret_ids
        .retain(|id| !held_secret_ids.contains(id));
    // A test sign-in that stopped before removing its temporary redirect URI: remove it now.
    if !journal.temporary_redirects()?.is_empty() {
        if let Err(e) = super::test_sign_in::clean_up(&session.graph, &journal).await {
            tracing::warn!(error = %e, "could not remove a test sign-in's temporary redirect URI yet");
        }
    }
    let read_state = || state::read(&session.graph, &intent, &hints.unfinished_instantiations);
    // Fetching the consent-step token now keeps it off the apply's critical path.
    let (pre, st, _) = tokio::join!(
        preflight::run(&session.graph, &session.summary, &intent.provider, &portal),
        read_state(),
        session
            .tokens()
            .access_token(crate::auth::StepScopes::Consent.scopes()),
    );
    let (preflight, mut state) = (pre?, st?);
    // Right after an apply, what it made may not be readable yet: wait for it rather than plan
    // it again (a second grant conflicts; a second secret would be one too many).
    if let Some(made) = journal.recently_made(chrono::Utc::now())? {
        let mut patience = session.graph.replication_patience();
        while !unseen(&made, &state).is_empty() {
            tracing::info!(missing = ?unseen(&made, &state), budget = %crate::wait::up_to(patience.budget()), "waiting for the last apply's objects to replicate");
            if !patience.again().await {
                break;
            }
            state = read_state().await?;
        }
    }
    let foreign = custody_of(session, &intent, &state, &journal)
        .await
        .map_err(|e| match e {
            CustodyError::Graph(g) => SetupError::Graph(g),
            CustodyError::Journal(j) => SetupError::Journal(j),
        })?;
    let plan = plan::plan(&PlanInput {
        intent: &intent,
        state: &state,
        tenant_id: &session.account.tenant_id,
        roles: RoleFacts::from_summary(&session.summary),
        policy: &preflight.policy,
        hints: &hints,
        now: chrono::Utc::now(),
        premium: matches!(
            session.summary.licence,
            crate::tenant::LicenceTier::P1 | crate::tenant::LicenceTier::P2
        ),
    })?;
    Ok(Prepared {
        intent,
        preflight,
        state,
        plan,
        journal,
        foreign,
    })
}

/// Reads the owners, credentials and redirect URIs of every app of the setup that exists
/// (not the vendor's own: the wizard adds nothing to those that could serve someone else).
#[derive(Debug, thiserror::Error)]
enum CustodyError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Journal(#[from] super::journal::JournalError),
}

async fn custody_of(
    session: &Session,
    intent: &Intent,
    state: &state::TenantState,
    journal: &Journal,
) -> Result<Vec<super::custody::ForeignApp>, CustodyError> {
    use super::custody::{check, Expected, Known};
    let mut out = vec![];
    for (id, found) in &state.apps {
        let (object_id, sp_id, redirect_uris, sp_credentials) = match found {
            state::FoundApp::Registration(r) => (
                r.app.id.as_str(),
                r.sp_id.as_deref(),
                intent.redirect_uris(),
                true,
            ),
            state::FoundApp::Template(t) => (
                t.app_object_id.as_str(),
                Some(t.sp_id.as_str()),
                intent
                    .saml
                    .as_ref()
                    .map(|x| x.reply_urls.clone())
                    .unwrap_or_default(),
                false,
            ),
            state::FoundApp::Vendor(_) => continue,
        };
        let expected = Expected {
            app: id,
            admin_oid: &session.account.user_oid,
            redirect_uris,
            sp_credentials,
        };
        let known = Known::from_journal(journal, object_id)?;
        if let Some(f) = check(&session.graph, object_id, sp_id, &expected, &known).await? {
            tracing::warn!(app = %f.display_name, differences = f.lines().len(), "an app of the setup is not the wizard's alone");
            out.push(f);
        }
    }
    Ok(out)
}

/// Entra's provisioning service runs in Microsoft's cloud: a tenant URL on this computer or a
/// private network never answers it. Only a cloud on this computer (the simulator) can reach one.
pub fn scim_reachable(cloud: &crate::cloud::Cloud, intent: &Intent) -> Result<(), PlanError> {
    match &intent.scim {
        Some(scim)
            if !cloud.on_this_computer() && crate::scim::is_private_address(&scim.tenant_url) =>
        {
            Err(PlanError::ScimUrlNotReachable {
                url: scim.tenant_url.clone(),
            })
        }
        _ => Ok(()),
    }
}

/// What the journal says recent applies made that the state read does not show yet.
fn unseen(made: &super::journal::RecentlyMade, state: &TenantState) -> Vec<&'static str> {
    let mut out = vec![];
    let provisioning = state.provisioning();
    if made.app_object_id.is_some() && state.app().is_none() {
        out.push("application");
    }
    if made.sp_id.is_some() && state.sp_id().is_none() {
        out.push("service principal");
    }
    if made.grant_id.is_some() && state.grant().is_none() {
        out.push("delegated grant");
    }
    if made.scim_app_object_id.is_some() && provisioning.is_none() {
        out.push("provisioning app");
    }
    if made.sync_job_id.is_some() && provisioning.is_some_and(|s| s.job.is_none()) {
        out.push("provisioning job");
    }
    let assigned: Vec<&str> = state
        .assignments()
        .into_iter()
        .map(|a| a.id.as_str())
        .chain(
            provisioning
                .iter()
                .flat_map(|s| s.assignments.iter().map(|a| a.id.as_str())),
        )
        .chain(state.apps.values().flat_map(|a| match a {
            state::FoundApp::Vendor(v) => v.assignments.iter().map(|x| x.id.as_str()).collect(),
            _ => vec![],
        }))
        .collect();
    if made
        .assignment_ids
        .iter()
        .any(|a| !assigned.contains(&a.as_str()))
    {
        out.push("assignment");
    }
    if let Some(t) = provisioning {
        let shown = |th: &String| {
            t.saml
                .certificates
                .iter()
                .any(|c| c.thumbprint.eq_ignore_ascii_case(th))
        };
        if !made.signing_thumbprints.iter().all(shown) {
            out.push("signing certificate");
        }
    }
    if let Some(app) = state.app() {
        let shown: Vec<&str> = app.passwords.iter().map(|p| p.key_id.as_str()).collect();
        if made
            .secret_key_ids
            .iter()
            .any(|k| !shown.contains(&k.as_str()))
        {
            out.push("client secret");
        }
    }
    out
}

/// Applies a prepared plan.
pub async fn execute(
    session: &Session,
    prepared: &Prepared,
    options: &ApplyOptions,
    on_event: Arc<dyn Fn(ApplyEvent) + Send + Sync>,
    cancel: &CancellationToken,
) -> Result<Applied, Box<ApplyFailed>> {
    let redirect = prepared
        .intent
        .redirect_uris()
        .into_iter()
        .next()
        .unwrap_or_default();
    apply::apply(
        &session.graph,
        &session.cloud,
        &prepared.plan,
        &prepared.state,
        &prepared.foreign,
        &redirect,
        &prepared.journal,
        options,
        on_event,
        cancel,
    )
    .await
}

/// Whether the journal in `data_dir` says the last applies made what `made` picks, recently
/// enough that Entra may still be replicating it: only then is "not found" waited out (a key
/// id or thumbprint mistyped is said at once, not after minutes).
fn made_recently(journal: &Journal, made: impl Fn(&super::journal::RecentlyMade) -> bool) -> bool {
    journal
        .recently_made(chrono::Utc::now())
        .ok()
        .flatten()
        .is_some_and(|r| made(&r))
}

/// Reads the app and plans the retirement of the wizard's other secrets, keeping `keep`. A
/// secret this computer added moments ago may not be readable yet (replication): it is waited
/// for within the replication budget before "not on the app" is believed.
pub async fn retire_preview(
    session: &Session,
    data_dir: &Path,
    intent: &Intent,
    keep: &str,
) -> Result<(TenantState, Plan), RetireFailed> {
    let journal = Journal::open(data_dir, &session.account.tenant_id, &intent.unique_name());
    let fresh = made_recently(&journal, |r| {
        r.secret_key_ids
            .iter()
            .any(|k| k.eq_ignore_ascii_case(keep))
    });
    let mut patience = session.graph.replication_patience();
    loop {
        let st = state::read(&session.graph, intent, &[]).await?;
        match super::secrets::retire_plan(
            intent,
            &st,
            &session.account.tenant_id,
            keep,
            chrono::Utc::now(),
        ) {
            Ok(p) => return Ok((st, p)),
            Err(e @ super::secrets::RetireError::KeepNotFound { .. }) => {
                if !fresh || !patience.again().await {
                    return Err(e.into());
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Why retiring old secrets stopped.
#[derive(Debug, thiserror::Error)]
pub enum RetireFailed {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Retire(#[from] super::secrets::RetireError),
    #[error("{0}")]
    Apply(Box<ApplyFailed>),
}

/// After a rotation: reads the app again and removes every secret the wizard made except
/// `keep`, through the same apply engine and journal as the setup. A new secret not yet visible
/// (replication) is waited for briefly; nothing is removed unless `keep` is on the app.
pub async fn retire_old_secrets(
    session: &Session,
    data_dir: &Path,
    intent: &Intent,
    keep: &str,
    on_event: Arc<dyn Fn(ApplyEvent) + Send + Sync>,
    cancel: &CancellationToken,
) -> Result<(Plan, Applied), RetireFailed> {
    let unique = intent.unique_name();
    let journal = Journal::open(data_dir, &session.account.tenant_id, &unique);
    let (state, plan) = retire_preview(session, data_dir, intent, keep).await?;
    let applied = apply_upkeep(session, &journal, &plan, &state, on_event, cancel)
        .await
        .map_err(RetireFailed::Apply)?;
    Ok((plan, applied))
}

/// Why a certificate step (make the new one active, remove the old ones) stopped.
#[derive(Debug, thiserror::Error)]
pub enum CertificateFailed {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Certificate(#[from] super::certificates::CertificateError),
    #[error("{0}")]
    Apply(Box<ApplyFailed>),
}

/// Which certificate step: make `thumbprint` active, or remove all but the active one.
pub enum CertificateStep<'a> {
    Activate(&'a str),
    RetireOld,
}

/// Runs a certificate step of a rotation through the apply engine and the setup's journal. A
/// certificate added moments ago may not be readable yet: it is waited for as long as the
/// retry policy allows.
pub async fn certificate_step(
    session: &Session,
    journal: &Journal,
    intent: &Intent,
    step: CertificateStep<'_>,
) -> Result<(Plan, Applied), CertificateFailed> {
    use super::certificates::{self, CertificateError};
    let tenant = &session.account.tenant_id;
    let fresh = made_recently(journal, |r| match step {
        CertificateStep::Activate(t) => r
            .signing_thumbprints
            .iter()
            .any(|x| x.eq_ignore_ascii_case(t)),
        CertificateStep::RetireOld => !r.signing_thumbprints.is_empty(),
    });
    let mut patience = session.graph.replication_patience();
    let (state, plan) = loop {
        let st = state::read(&session.graph, intent, &[]).await?;
        let p = match step {
            CertificateStep::Activate(t) => {
                certificates::activate_plan(intent, &st, tenant, t, chrono::Utc::now())
            }
            CertificateStep::RetireOld => certificates::retire_plan(intent, &st, tenant),
        };
        match p {
            Ok(p) => break (st, p),
            Err(e @ CertificateError::NotFound(_)) => {
                if !fresh || !patience.again().await {
                    return Err(e.into());
                }
            }
            Err(e) => return Err(e.into()),
        }
    };
    let applied = apply_upkeep(
        session,
        journal,
        &plan,
        &state,
        Arc::new(|_| {}),
        &CancellationToken::new(),
    )
    .await
    .map_err(CertificateFailed::Apply)?;
    Ok((plan, applied))
}

/// Applies a small upkeep plan (retiring secrets, a certificate step) on an existing setup
/// through the apply engine and the setup's journal.
async fn apply_upkeep(
    session: &Session,
    journal: &Journal,
    plan: &Plan,
    state: &TenantState,
    on_event: Arc<dyn Fn(ApplyEvent) + Send + Sync>,
    cancel: &CancellationToken,
) -> Result<Applied, Box<ApplyFailed>> {
    apply::apply(
        &session.graph,
        &session.cloud,
        plan,
        state,
        // Upkeep removes the wizard's own credentials or switches between its certificates:
        // nothing that could serve another holder of the app.
        &[],
        "",
        journal,
        &ApplyOptions::default(),
        on_event,
        cancel,
    )
    .await
}
