//! Signing in: the saved session for this cloud and tenant, or a new sign-in.

use super::*;

/// Where journals and the saved sign-in live: --data-dir, or the desktop app's data folder.
/// Without a home folder (HOME unset, no XDG_DATA_HOME) there is none: the command stops rather
/// than keep an administrator's refresh token in a shared temporary folder.
pub(crate) fn data_dir(t: &Conn) -> Result<PathBuf, Fail> {
    let dir = match &t.data_dir {
        Some(d) => d.clone(),
        None => dirs::data_dir()
            .ok_or_else(|| {
                Fail(
                    2,
                    "Cannot tell where to keep the journals and the saved sign-in: HOME is not set (nor XDG_DATA_HOME). Set HOME to your home folder, or give --data-dir DIR (or ENTRA_SETUP_DATA_DIR)."
                        .into(),
                )
            })?
            .join("dev.entrasetup.wizard"),
    };
    if dir.exists() && !dir.is_dir() {
        return Err(Fail(
            2,
            format!(
                "--data-dir {} is a file, not a folder: give a folder (it is made if missing).",
                entra_setup_core::redact::echo(&dir.display().to_string(), 200)
            ),
        ));
    }
    Ok(dir)
}

pub(crate) fn cloud_choice(t: &Conn) -> CloudChoice {
    match (&t.authority, &t.graph) {
        (Some(a), Some(g)) => CloudChoice::Custom {
            authority: a.clone(),
            graph: g.clone(),
        },
        _ => match t.cloud {
            CloudArg::Global => CloudChoice::Global,
            CloudArg::Usgov => CloudChoice::UsGov,
            CloudArg::Usgovdod => CloudChoice::UsGovDod,
            CloudArg::China => CloudChoice::China,
        },
    }
}

pub(crate) fn store(t: &Conn) -> Arc<dyn SecretStore> {
    if t.no_keychain {
        Arc::new(MemoryStore::default())
    } else {
        Arc::new(OsKeychain::new())
    }
}

pub(crate) fn account_file(t: &Conn) -> Result<PathBuf, Fail> {
    Ok(data_dir(t)?.join("cli-account.json"))
}

/// Resumes the saved CLI session for this cloud and tenant, or signs in.
pub(crate) async fn sign_in(
    t: &Conn,
    scopes: &[StepScopes],
    store: Arc<dyn SecretStore>,
) -> Result<Session, Fail> {
    let http = entra_setup_core::http::client();
    let opener: Arc<dyn BrowserOpener> = Arc::new(SystemBrowser);
    let ctx = Context::new(http, store, opener);
    let cloud = cloud_choice(t);
    if !t.no_keychain {
        if let Some(record) = std::fs::read_to_string(account_file(t)?)
            .ok()
            .and_then(|s| serde_json::from_str::<AccountRecord>(&s).ok())
        {
            let same_tenant =
                t.tenant.is_empty() || record.tenant_id.eq_ignore_ascii_case(&t.tenant);
            if record.cloud == cloud && same_tenant {
                if let Ok(s) = session::resume(&ctx, &record).await {
                    if session::ensure_scopes(
                        &ctx,
                        &s,
                        scopes,
                        method(t),
                        progress(),
                        &CancellationToken::new(),
                    )
                    .await
                    .is_ok()
                    {
                        errln!(
                            "Signed in as {} (saved session).",
                            s.summary.user.user_principal_name
                        );
                        return Ok(s);
                    }
                }
            }
        }
    }
    let req = SignInRequest {
        cloud,
        tenant: t.tenant.clone(),
        method: method(t),
        client_id: t.client_id.clone(),
    };
    let signed = session::sign_in_for(&ctx, &req, scopes, progress(), &CancellationToken::new())
        .await
        .map_err(|e| match e {
            session::SessionError::Auth(
                a @ entra_setup_core::auth::AuthError::InvalidTenant { .. },
            ) => Fail(2, a.to_string()),
            session::SessionError::Auth(a @ entra_setup_core::auth::AuthError::Cloud(_)) => {
                Fail(2, a.to_string())
            }
            session::SessionError::Auth(a) => Fail(3, a.to_string()),
            session::SessionError::Graph(g) => Fail(4, g.to_string()),
        })?;
    for n in &signed.notices {
        errln!("Note: {}", n.detail);
    }
    if !t.no_keychain {
        let path = account_file(t)?;
        let text = serde_json::to_string_pretty(&signed.session.account).unwrap_or_default();
        if let Err(e) = entra_setup_core::files::write_atomic(&path, text.as_bytes(), true) {
            errln!(
                "Note: could not save the sign-in to {} ({e}); the next command signs in again.",
                path.display()
            );
        }
    }
    errln!(
        "Signed in as {} to {} ({}).",
        signed.session.summary.user.user_principal_name,
        signed.session.summary.tenant_name,
        signed.session.summary.tenant_id
    );
    Ok(signed.session)
}

/// The permissions the command's steps need: provisioning adds its own.
pub(crate) fn step_scopes(t: &Target) -> &'static [StepScopes] {
    StepScopes::setup(
        t.scim.scim_url.is_some() || provider::find(&t.provider).is_some_and(|p| !p.has_sign_in()),
    )
}

pub(crate) fn method(t: &Conn) -> Method {
    if t.device_code {
        Method::DeviceCode
    } else {
        Method::Browser
    }
}

pub(crate) fn progress() -> Arc<dyn Fn(SignInEvent) + Send + Sync> {
    Arc::new(|e| match e {
        SignInEvent::DeviceCode {
            user_code,
            verification_uri,
            expires_at,
            ..
        } => {
            errln!("To sign in, open {verification_uri} and enter the code {user_code} (valid until {}).", expires_at.format("%H:%M UTC"));
        }
        SignInEvent::BrowserOpened { url } => {
            errln!("Sign in in the browser that opened. If none did, open:\n  {url}")
        }
        _ => {}
    })
}
