//! The setups done before: undo, retiring old secrets, status, and the providers known.

use super::*;

pub(crate) async fn undo_cmd(u: &UndoArgs) -> Result<(), Fail> {
    let t = &u.target;
    let intent = intent_of(&t.provider, &t.inputs, None)?;
    let s = sign_in(
        &t.conn,
        StepScopes::setup(!intent.provider.has_sign_in()),
        store(&t.conn),
    )
    .await?;
    let journal = Journal::open(
        &data_dir(&t.conn)?,
        &s.account.tenant_id,
        &intent.unique_name(),
    );
    // A damaged or unreadable journal stops here, naming the file and the line: it is never
    // read as "no journal" (which would undo from the tenant's tags instead).
    let pending = undo::pending(&journal).map_err(|e| Fail(12, e.to_string()))?;
    if pending.is_empty() {
        // No journal here (another computer, or a lost data folder): undo from what the tenant
        // shows is the wizard's.
        let apps = undo::tenant_pending(&s.graph, &intent)
            .await
            .map_err(|e| Fail(4, e.to_string()))?;
        if apps.is_empty() {
            errln!(
                "Nothing to undo: the journal at {} records nothing the wizard created, and the tenant has no app named {} carrying Entra Setup's tag.",
                journal.path().display(),
                intent.unique_name()
            );
            if t.conn.json {
                outln!("{}", json!({"undone": []}));
            }
            return Ok(());
        }
        errln!(
            "No journal for {} on this computer; the tenant shows {} app(s) Entra Setup made for it:",
            intent.display_name(),
            apps.len()
        );
        for a in &apps {
            errln!(
                "  {} (uniqueName {}, object id {})",
                a.display_name,
                a.unique_name,
                a.object_id
            );
        }
        errln!("Undo deletes them, with their enterprise apps, grants, secrets, assignments and provisioning.");
        if !u.yes && !confirm("Undo?") {
            return Err(Fail(
                7,
                "Nothing was changed. Run again with --yes to undo.".into(),
            ));
        }
        let done = undo::undo_from_tenant(
            &s.graph,
            &journal,
            &apps,
            Arc::new(|d| errln!("{} ({})", d.what, d.id)),
        )
        .await
        .map_err(undo_failed)?;
        if t.conn.json {
            outln!("{}", json!({"undone": done, "source": "tenant"}));
        }
        return Ok(());
    }
    errln!(
        "Undo will remove {} object(s) the wizard created for {}.",
        pending.len(),
        intent.display_name()
    );
    if !u.yes && !confirm("Undo?") {
        return Err(Fail(
            7,
            "Nothing was changed. Run again with --yes to undo.".into(),
        ));
    }
    journal.check().map_err(|e| Fail(1, e.to_string()))?;
    let done = undo::undo(
        &s.graph,
        &journal,
        Arc::new(|d| errln!("{} ({})", d.what, d.id)),
    )
    .await
    .map_err(undo_failed)?;
    if t.conn.json {
        outln!("{}", json!({"undone": done}));
    }
    Ok(())
}

pub(crate) async fn retire_cmd(r: &RetireArgs) -> Result<(), Fail> {
    let t = &r.target;
    let keep = r.keep.as_str();
    let intent = intent_of(&t.provider, &t.inputs, None)?;
    if !intent.provider.has_sign_in() {
        return Err(Fail(
            2,
            format!(
                "{} has no client secrets to retire: it only provisions.",
                intent.provider.name
            ),
        ));
    }
    let keychain = store(&t.conn);
    let s = sign_in(&t.conn, StepScopes::setup(false), keychain.clone()).await?;
    // Show what goes before asking (the retire re-reads the app right before removing).
    let (state, preview) = match flow::retire_preview(&s, &data_dir(&t.conn)?, &intent, keep).await
    {
        Ok(found) => found,
        Err(flow::RetireFailed::Retire(secrets::RetireError::NothingToRetire)) => {
            errln!(
                "Nothing to retire: {} has no other secret made by the wizard.",
                intent.display_name()
            );
            if t.conn.json {
                outln!("{}", json!({"retired": []}));
            }
            return Ok(());
        }
        Err(flow::RetireFailed::Retire(e)) => return Err(Fail(2, e.to_string())),
        Err(e) => return Err(Fail(4, e.to_string())),
    };
    for c in &preview.changes {
        errln!("  {}\n     {}", c.title, c.reason);
    }
    for n in &preview.notes {
        errln!("  Note: {n}");
    }
    if !r.yes && !confirm(&format!("Retire {} secret(s)?", preview.changes.len())) {
        return Err(Fail(
            7,
            "Nothing was changed. Run again with --yes to retire.".into(),
        ));
    }
    let on_event: Arc<dyn Fn(ApplyEvent) + Send + Sync> = Arc::new(|e| match e {
        ApplyEvent::Done { detail, .. } => errln!("done: {detail}"),
        ApplyEvent::Failed { message, .. } => errln!("FAILED: {message}"),
        _ => {}
    });
    let (plan, _) = flow::retire_old_secrets(
        &s,
        &data_dir(&t.conn)?,
        &intent,
        keep,
        on_event,
        &CancellationToken::new(),
    )
    .await
    .map_err(|e| match e {
        flow::RetireFailed::Retire(e) => Fail(2, e.to_string()),
        other => Fail(4, other.to_string()),
    })?;
    let retired: Vec<String> = plan
        .changes
        .iter()
        .filter_map(|c| match &c.change {
            Change::RemovePassword { key_id, .. } => Some(key_id.clone()),
            _ => None,
        })
        .collect();
    errln!("Retired {} secret(s); {} is kept.", retired.len(), keep);
    // Entra keeps accepting a removed secret for a while: with a copy of a retired one in the
    // keychain (`apply --keep-in-keychain` earlier), try it until Entra refuses it.
    let statuses = secrets::statuses(&state, chrono::Utc::now());
    let hint_of = |id: &str| {
        statuses
            .iter()
            .find(|x| x.key_id == id)
            .and_then(|x| x.hint.clone())
    };
    let gone: Vec<secrets::SecretStatus> = statuses
        .iter()
        .filter(|x| retired.contains(&x.key_id))
        .cloned()
        .collect();
    let test = match state.app() {
        Some(app) => {
            let key =
                entra_setup_core::setup::run::client_secret_key(&s.account.tenant_id, &app.app_id);
            match secrets::retired_copy(&keychain, &key, &gone, hint_of(keep).as_deref()).await {
                Some(copy) => {
                    let retry = entra_setup_core::checks::SecretRetry::removal();
                    errln!(
                        "Waiting for Entra to stop accepting the retired secret — {}",
                        entra_setup_core::wait::up_to(retry.budget)
                    );
                    let c = entra_setup_core::checks::retired_secret_refused(
                        &entra_setup_core::http::client(),
                        &s.cloud,
                        &s.account.token_endpoint,
                        &app.app_id,
                        &copy,
                        &retry,
                    )
                    .await;
                    errln!("{}", check_line(&c));
                    Some(c)
                }
                None => {
                    errln!("Entra can keep accepting a removed secret for a few minutes while the removal spreads.");
                    None
                }
            }
        }
        None => None,
    };
    if t.conn.json {
        outln!(
            "{}",
            json!({"retired": retired, "kept": keep, "retiredSecretTest": test})
        );
    }
    Ok(())
}

/// `activate-certificate` (with the new certificate's thumbprint) and `retire-certificates`:
/// the two steps of a SAML certificate rotation after `apply --rotate-certificate`.
pub(crate) async fn certificate_cmd(
    t: &Which,
    activate: Option<&str>,
    yes: bool,
) -> Result<(), Fail> {
    use entra_setup_core::setup::certificates::{self, CertificateError};
    let intent = intent_of(&t.provider, &t.inputs, None)?;
    if intent.saml.is_none() {
        return Err(Fail(
            2,
            format!(
                "{} does not sign in with SAML: it has no signing certificates.",
                intent.provider.name
            ),
        ));
    }
    let thumbprint = activate.map(|a| a.trim().replace([':', ' '], "").to_ascii_uppercase());
    if let Some(th) = &thumbprint {
        if th.len() != 40 || !th.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Fail(2, format!("--thumbprint '{}' is not a SHA-1 thumbprint: give the 40 hex digits `apply --rotate-certificate` printed for the new certificate.", activate.unwrap_or_default())));
        }
    }
    let s = sign_in(&t.conn, StepScopes::setup(false), store(&t.conn)).await?;
    let step = match &thumbprint {
        Some(th) => flow::CertificateStep::Activate(th),
        None => flow::CertificateStep::RetireOld,
    };
    // Show what happens before asking.
    let state = entra_setup_core::setup::state::read(&s.graph, &intent, &[])
        .await
        .map_err(|e| Fail(4, e.to_string()))?;
    let tenant = &s.account.tenant_id;
    let preview = match &thumbprint {
        Some(th) => certificates::activate_plan(&intent, &state, tenant, th, chrono::Utc::now()),
        None => certificates::retire_plan(&intent, &state, tenant),
    };
    match &preview {
        Ok(p) => p
            .changes
            .iter()
            .for_each(|c| errln!("  {}\n     {}", c.title, c.reason)),
        // Just added: the certificate may not show yet; the step waits for it.
        Err(CertificateError::NotFound(_)) => {}
        Err(CertificateError::NothingToRetire) => {
            errln!("Nothing to remove: only the active signing certificate is on the app.");
            if t.conn.json {
                outln!("{}", json!({"retired": []}));
            }
            return Ok(());
        }
        Err(e) => return Err(Fail(2, e.to_string())),
    }
    let question = if thumbprint.is_some() {
        "Make the new certificate active?"
    } else {
        "Remove the old certificate(s)?"
    };
    if !yes && !confirm(question) {
        return Err(Fail(7, "Nothing was changed. Run again with --yes.".into()));
    }
    let journal = Journal::open(&data_dir(&t.conn)?, tenant, &intent.unique_name());
    let (plan, _) = flow::certificate_step(&s, &journal, &intent, step)
        .await
        .map_err(|e| match e {
            flow::CertificateFailed::Certificate(e) => Fail(2, e.to_string()),
            other => Fail(4, other.to_string()),
        })?;
    let thumbprints: Vec<String> = plan
        .changes
        .iter()
        .filter_map(|c| match &c.change {
            Change::PreferSigningCertificate { thumbprint } => thumbprint.clone(),
            Change::RemoveSigningCertificate { thumbprint, .. } => Some(thumbprint.clone()),
            _ => None,
        })
        .collect();
    match &thumbprint {
        Some(th) => errln!("Entra signs with {th} now. Once a sign-in to {} works, run `entra-setup retire-certificates`.", intent.service_name()),
        None => errln!("Removed {} old certificate(s): {}.", thumbprints.len(), thumbprints.join(", ")),
    }
    if t.conn.json {
        let key = if thumbprint.is_some() {
            "active"
        } else {
            "retired"
        };
        outln!("{}", json!({ key: thumbprints }));
    }
    Ok(())
}

pub(crate) async fn status_cmd(a: &StatusArgs) -> Result<(), Fail> {
    let c = &a.conn;
    let s = sign_in(c, StepScopes::setup(true), store(c)).await?;
    let dir = data_dir(c)?;
    let previous = found::known(&s.graph, &dir, &s.account.tenant_id)
        .await
        .map_err(|e| Fail(4, e.to_string()))?;
    if previous.is_empty() {
        errln!(
            "No setups in {}: no app in the tenant carries Entra Setup's tag, and {} holds no journal for it. Nothing to check.",
            s.summary.tenant_name,
            dir.display()
        );
    }
    let mut all = vec![];
    for prev in &previous {
        let v = Box::pin(status::check(&s, &dir, prev, a.warn_days)).await;
        errln!(
            "\n{} ({}, {} {}){}",
            v.name,
            v.provider,
            if v.source == journal::SetupSource::Tenant {
                "created"
            } else {
                "last applied"
            },
            v.last_applied.format("%Y-%m-%d"),
            if v.source == journal::SetupSource::Tenant {
                " — found in the tenant; no journal on this computer"
            } else {
                ""
            }
        );
        for x in &v.secrets {
            errln!("  Secret {}", describe_secret(x));
        }
        for c in &v.certificates {
            errln!(
                "  SAML certificate {} \"{}\", expires {}{}",
                c.thumbprint,
                c.display_name,
                c.expires
                    .map_or_else(|| "?".to_string(), |e| e.format("%Y-%m-%d").to_string()),
                if c.preferred { " (signing)" } else { "" }
            );
        }
        if let Some(e) = &v.error {
            errln!("  Could not check: {e}");
        }
        if let Some(st) = v.scim.as_ref().and_then(|x| x.status.as_ref()) {
            errln!("  Provisioning: {}", st.headline);
        }
        if v.attention.is_empty() && v.error.is_none() {
            errln!("  OK: nothing needs attention.");
        }
        for i in &v.attention {
            errln!("  ATTENTION: {i}");
        }
        all.push(v);
    }
    if c.json {
        outln!(
            "{}",
            json!({"tenantId": s.account.tenant_id, "setups": all})
        );
    }
    if all
        .iter()
        .any(|v| !v.attention.is_empty() || v.error.is_some())
    {
        Err(Fail(9, String::new()))
    } else {
        Ok(())
    }
}

pub(crate) fn providers() -> Result<(), Fail> {
    for p in catalogue()? {
        outln!("{} — {}", p.id(), p.name);
        outln!("  {}", p.description);
        if p.file.starts_with("providers/") {
            outln!("  (built in)");
        } else {
            outln!("  (from {})", p.file);
        }
        for i in &p.inputs {
            if i.options.is_empty() {
                outln!("  --input {}=…  {} (e.g. {})", i.id, i.label, i.example);
            } else {
                let values: Vec<&str> = i.options.iter().map(|o| o.value.as_str()).collect();
                let default = i
                    .default
                    .as_deref()
                    .map(|d| format!(", default {d}"))
                    .unwrap_or_default();
                outln!(
                    "  --input {}={}  {}{default}",
                    i.id,
                    values.join("|"),
                    i.label
                );
            }
        }
        if let Some(why) = p.unsupported() {
            outln!("  Not yet: {why}");
        }
    }
    Ok(())
}

/// Undo's failure with its exit code: 12 when it refused to change anything.
fn undo_failed(e: entra_setup_core::graph::GraphError) -> Fail {
    match e {
        entra_setup_core::graph::GraphError::Refused(why) => Fail(12, why),
        e => Fail(4, e.to_string()),
    }
}
