//! What the benchmarks share: the simulated tenant, signed in to as its Global Administrator.

use std::collections::BTreeMap;
use std::sync::Arc;

use entra_setup_core::auth::{FollowRedirects, Method, StepScopes};
use entra_setup_core::cloud::CloudChoice;
use entra_setup_core::keychain::MemoryStore;
use entra_setup_core::provider;
use entra_setup_core::session::{self, Context, Session, SignInRequest};
use entra_setup_core::setup::Intent;
use entra_setup_sim::{Approval, SimConfig, SimHandle};
use tokio_util::sync::CancellationToken;

/// A fresh simulator and a session in its Contoso tenant with the setup's permissions.
pub async fn signed_in() -> (SimHandle, Session) {
    let sim = entra_setup_sim::start(SimConfig {
        approval: Approval::Auto {
            upn: "adele@contoso.com".into(),
            device_polls: 1,
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let http = entra_setup_core::http::client();
    let mut ctx = Context::new(
        http.clone(),
        Arc::new(MemoryStore::default()),
        Arc::new(FollowRedirects::new(http)),
    );
    ctx.redirect_host = "127.0.0.1".into();
    let req = SignInRequest {
        cloud: CloudChoice::Custom {
            authority: sim.base_url().into(),
            graph: sim.base_url().into(),
        },
        tenant: "contoso.com".into(),
        method: Method::Browser,
        client_id: None,
    };
    let session = session::sign_in_for(
        &ctx,
        &req,
        &[StepScopes::RegisterApp, StepScopes::Consent],
        Arc::new(|_| {}),
        &CancellationToken::new(),
    )
    .await
    .unwrap()
    .session;
    (sim, session)
}

/// A setup of `provider_id` with these inputs.
pub fn intent(provider_id: &str, inputs: &[(&str, &str)]) -> Intent {
    let raw: BTreeMap<String, String> = inputs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    Intent::new(provider::find(provider_id).unwrap(), &raw, None).unwrap()
}
