//! A signed-in session: sign in, resume on the next launch, sign out.

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::auth::{
    self, AuthError, BrowserOpener, Method, SignInEvent, SignInOptions, StepScopes, TenantRef,
    TokenSource, OIDC_SCOPES,
};
use crate::cloud::{Cloud, CloudChoice};
use crate::graph::{GraphClient, GraphError, RetryPolicy};
use crate::keychain::{self, SecretStore};
use crate::tenant::{self, Advice, Severity, TenantSummary};

/// What the admin asked for on the sign-in screen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct SignInRequest {
    pub cloud: CloudChoice,
    /// A domain, a tenant ID, or empty for any work account.
    pub tenant: String,
    pub method: Method,
    /// Overrides the default public client (Microsoft Graph Command Line Tools).
    pub client_id: Option<String>,
}

/// Non-secret facts about the last account, saved so the next launch can resume.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct AccountRecord {
    pub cloud: CloudChoice,
    pub tenant_id: String,
    pub user_oid: String,
    pub user_principal_name: String,
    pub client_id: String,
    pub token_endpoint: String,
}

impl AccountRecord {
    fn keychain_key(&self, cloud: &Cloud) -> String {
        keychain::refresh_token_key(&cloud.key(), &self.tenant_id, &self.user_oid)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// Shared dependencies of sign-in: injected so the desktop app, the CLI, demo mode and tests use
/// the same code with different browsers and stores.
#[derive(Clone)]
pub struct Context {
    pub http: reqwest::Client,
    pub store: Arc<dyn SecretStore>,
    pub opener: Arc<dyn BrowserOpener>,
    /// Host in the loopback redirect URI: `localhost` suits the default client.
    pub redirect_host: String,
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl Context {
    pub fn new(
        http: reqwest::Client,
        store: Arc<dyn SecretStore>,
        opener: Arc<dyn BrowserOpener>,
    ) -> Self {
        Self {
            http,
            store,
            opener,
            redirect_host: "localhost".into(),
            timeout: auth::DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
        }
    }
}

/// A signed-in admin.
pub struct Session {
    pub cloud: Cloud,
    pub account: AccountRecord,
    pub graph: GraphClient,
    pub summary: TenantSummary,
}

impl Session {
    pub fn tokens(&self) -> &Arc<TokenSource> {
        self.graph.tokens()
    }
}

/// The outcome of a sign-in: the session plus anything the admin should know about it
/// (e.g. the keychain could not save the sign-in).
pub struct SignedIn {
    pub session: Session,
    pub notices: Vec<Advice>,
}

fn keychain_notice(e: &keychain::KeychainError, store: &dyn SecretStore) -> Advice {
    Advice {
        id: "keychain_unavailable".into(),
        severity: Severity::Warning,
        title: "Your sign-in was not saved".into(),
        detail: format!("{e} You are signed in for now, but the next launch will ask you to sign in again. (Store: {}.)", store.describe()),
        link: None,
    }
}

/// Runs an interactive sign-in and reads the tenant summary.
pub async fn sign_in(
    ctx: &Context,
    req: &SignInRequest,
    on_event: Arc<dyn Fn(SignInEvent) + Send + Sync>,
    cancel: &CancellationToken,
) -> Result<SignedIn, SessionError> {
    sign_in_for(ctx, req, &[], on_event, cancel).await
}

/// Like [`sign_in`], asking at once for the permissions of later steps too (the CLI does, so
/// that one sign-in covers a whole run).
pub async fn sign_in_for(
    ctx: &Context,
    req: &SignInRequest,
    later_steps: &[StepScopes],
    on_event: Arc<dyn Fn(SignInEvent) + Send + Sync>,
    cancel: &CancellationToken,
) -> Result<SignedIn, SessionError> {
    let cloud = Cloud::from_choice(&req.cloud).map_err(AuthError::from)?;
    let tenant = TenantRef::parse(&req.tenant)?;
    let client_id = req
        .client_id
        .clone()
        .filter(|c| !c.trim().is_empty())
        .unwrap_or_else(|| auth::DEFAULT_CLIENT_ID.to_string());
    let mut scopes: Vec<String> = OIDC_SCOPES.iter().map(|s| (*s).to_string()).collect();
    let graph_scopes: Vec<String> = StepScopes::SignIn
        .scopes()
        .iter()
        .map(|s| cloud.graph_scope(s))
        .collect();
    scopes.extend(graph_scopes.iter().cloned());
    for step in later_steps {
        for s in step.scopes() {
            let q = cloud.graph_scope(s);
            if !scopes.contains(&q) {
                scopes.push(q);
            }
        }
    }
    let opts = SignInOptions {
        discovery_url: cloud.discovery_url(&tenant.to_string()),
        tenant_label: tenant.to_string(),
        cloud_name: cloud.name.clone(),
        client_id: client_id.clone(),
        scopes,
        method: req.method,
        timeout: ctx.timeout,
        redirect_host: ctx.redirect_host.clone(),
        extra_params: vec![("prompt".into(), "select_account".into())],
    };
    let tokens = auth::sign_in(&ctx.http, &opts, ctx.opener.as_ref(), on_event, cancel).await?;
    let account = AccountRecord {
        cloud: req.cloud.clone(),
        tenant_id: tokens.id.tid.clone(),
        user_oid: tokens.id.oid.clone(),
        user_principal_name: tokens.id.preferred_username.clone().unwrap_or_default(),
        client_id,
        token_endpoint: tokens.discovery.token_endpoint.clone(),
    };
    let mut notices = vec![];
    let key = account.keychain_key(&cloud);
    if let Some(rt) = &tokens.refresh_token {
        if let Err(e) = keychain::set(&ctx.store, &key, rt.clone()).await {
            tracing::warn!(error = %e, "could not save the refresh token");
            notices.push(keychain_notice(&e, ctx.store.as_ref()));
        }
    }
    let wids = tenant::wids_hint(tokens.access_token.expose_secret());
    let source = Arc::new(TokenSource::new(
        ctx.http.clone(),
        cloud.clone(),
        account.client_id.clone(),
        account.token_endpoint.clone(),
        tokens.refresh_token.clone(),
        Some(auth::token_source::Persist {
            store: ctx.store.clone(),
            key,
        }),
    ));
    source
        .seed(&graph_scopes, tokens.access_token, tokens.expires_at)
        .await;
    let graph = GraphClient::new(ctx.http.clone(), &cloud, source).with_retry(ctx.retry.clone());
    let facts = tenant::discover(&graph, wids).await?;
    let summary = tenant::summarize(&facts, &cloud);
    tracing::info!(tenant = %summary.tenant_id, user = %summary.user.user_principal_name, licence = ?summary.licence, "signed in");
    Ok(SignedIn {
        session: Session {
            cloud,
            account,
            graph,
            summary,
        },
        notices,
    })
}

/// What asking for more consent needs of a session, without the session: the desktop app does
/// not keep its session locked (Cancel and Sign out waiting) while the admin is in the browser.
#[derive(Clone)]
pub struct ConsentHandle {
    tokens: Arc<TokenSource>,
    cloud: Cloud,
    account: AccountRecord,
    tenant_label: String,
}

impl Session {
    pub fn consent_handle(&self) -> ConsentHandle {
        ConsentHandle {
            tokens: self.tokens().clone(),
            cloud: self.cloud.clone(),
            account: self.account.clone(),
            tenant_label: self.summary.tenant_name.clone(),
        }
    }
}

/// Makes sure the admin has consented to the permissions of these wizard steps. When a step's
/// scopes were never consented, signs in again interactively asking for them (same tenant, same
/// account), and keeps the new refresh token. Returns whether a sign-in was needed.
pub async fn ensure_scopes(
    ctx: &Context,
    session: &Session,
    steps: &[StepScopes],
    method: Method,
    on_event: Arc<dyn Fn(SignInEvent) + Send + Sync>,
    cancel: &CancellationToken,
) -> Result<bool, SessionError> {
    ensure_consent(
        ctx,
        &session.consent_handle(),
        steps,
        method,
        on_event,
        cancel,
    )
    .await
}

/// [`ensure_scopes`] for a session the caller does not hold; `cancel` ends the browser wait.
pub async fn ensure_consent(
    ctx: &Context,
    session: &ConsentHandle,
    steps: &[StepScopes],
    method: Method,
    on_event: Arc<dyn Fn(SignInEvent) + Send + Sync>,
    cancel: &CancellationToken,
) -> Result<bool, SessionError> {
    let mut missing = false;
    for step in steps {
        match session.tokens.access_token(step.scopes()).await {
            Ok(_) => {}
            Err(AuthError::ConsentRequired { .. }) => missing = true,
            Err(e) => return Err(e.into()),
        }
    }
    if !missing {
        return Ok(false);
    }
    let cloud = &session.cloud;
    let mut scopes: Vec<String> = OIDC_SCOPES.iter().map(|s| (*s).to_string()).collect();
    for step in std::iter::once(&StepScopes::SignIn).chain(steps.iter()) {
        scopes.extend(step.scopes().iter().map(|s| cloud.graph_scope(s)));
    }
    scopes.dedup();
    let opts = SignInOptions {
        discovery_url: cloud.discovery_url(&session.account.tenant_id),
        tenant_label: session.tenant_label.clone(),
        cloud_name: cloud.name.clone(),
        client_id: session.account.client_id.clone(),
        scopes,
        method,
        timeout: ctx.timeout,
        redirect_host: ctx.redirect_host.clone(),
        extra_params: vec![(
            "login_hint".into(),
            session.account.user_principal_name.clone(),
        )],
    };
    let tokens = auth::sign_in(&ctx.http, &opts, ctx.opener.as_ref(), on_event, cancel).await?;
    if tokens.id.oid != session.account.user_oid || tokens.id.tid != session.account.tenant_id {
        return Err(AuthError::Protocol(format!(
            "You signed in as a different account ({}). Sign in as {} to grant the permissions for this session.",
            tokens.id.preferred_username.unwrap_or_default(),
            session.account.user_principal_name
        ))
        .into());
    }
    if let Some(rt) = tokens.refresh_token {
        session.tokens.replace_refresh_token(rt).await;
    }
    Ok(true)
}

/// Resumes the last session from the keychain without any prompt. Fails with
/// [`AuthError::SessionExpired`] when there is nothing saved or it no longer works.
pub async fn resume(ctx: &Context, record: &AccountRecord) -> Result<Session, SessionError> {
    let cloud = Cloud::from_choice(&record.cloud).map_err(AuthError::from)?;
    // The saved record says where refresh tokens go: only to the cloud's authority. A file
    // changed to point elsewhere means a fresh sign-in, never a token sent there.
    let on_authority = url::Url::parse(&record.token_endpoint).is_ok_and(|u| {
        crate::endpoint::secure_transport(&u)
            && u.host_str() == cloud.authority.host_str()
            && u.port_or_known_default() == cloud.authority.port_or_known_default()
    });
    if !on_authority {
        return Err(AuthError::SessionExpired {
            reason: format!(
                "the saved sign-in names a token endpoint that is not on {} (the file was changed or is damaged)",
                cloud.authority.host_str().unwrap_or_default()
            ),
        }
        .into());
    }
    let key = record.keychain_key(&cloud);
    let Some(rt) = keychain::get(&ctx.store, &key)
        .await
        .map_err(AuthError::from)?
    else {
        return Err(AuthError::SessionExpired {
            reason: "no saved sign-in was found in the keychain".into(),
        }
        .into());
    };
    let source = Arc::new(TokenSource::new(
        ctx.http.clone(),
        cloud.clone(),
        record.client_id.clone(),
        record.token_endpoint.clone(),
        Some(rt),
        Some(auth::token_source::Persist {
            store: ctx.store.clone(),
            key,
        }),
    ));
    let token = source.access_token(StepScopes::SignIn.scopes()).await?;
    let wids = tenant::wids_hint(token.expose_secret());
    let graph = GraphClient::new(ctx.http.clone(), &cloud, source).with_retry(ctx.retry.clone());
    let facts = tenant::discover(&graph, wids).await?;
    let summary = tenant::summarize(&facts, &cloud);
    Ok(Session {
        cloud,
        account: record.clone(),
        graph,
        summary,
    })
}

/// Forgets the session: tokens in memory and the refresh token in the keychain.
pub async fn sign_out(
    ctx: &Context,
    record: &AccountRecord,
    session: Option<&Session>,
) -> Result<(), keychain::KeychainError> {
    if let Some(s) = session {
        s.tokens().clear().await;
    }
    let cloud = match Cloud::from_choice(&record.cloud) {
        Ok(c) => c,
        Err(_) => return Ok(()),
    };
    keychain::delete(&ctx.store, &record.keychain_key(&cloud)).await
}
