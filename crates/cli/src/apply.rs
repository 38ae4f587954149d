//! plan and apply: the setup run, the hand-over of the new secret, and the live tests.

use super::*;

pub(crate) fn setup_fail(e: SetupError) -> Fail {
    match e {
        SetupError::Plan(p @ entra_setup_core::setup::plan::PlanError::VendorAppMissing { .. }) => {
            Fail(11, p.to_string())
        }
        SetupError::Plan(p) => Fail(2, p.to_string()),
        SetupError::Graph(g) => Fail(4, g.to_string()),
        SetupError::Journal(j) => Fail(1, j.to_string()),
        SetupError::Inputs(errors) => Fail(
            2,
            errors
                .iter()
                .map(|e| format!("--input {}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    }
}

pub(crate) async fn plan(t: &Target) -> Result<(), Fail> {
    let intent = intent(t).await?;
    let flags = scim_flags(t, &intent)?;
    let s = sign_in(&t.conn, step_scopes(t), store(&t.conn)).await?;
    let (intent, _) = with_scim(t, &s, intent, flags).await?;
    let p = flow::prepare(&s, &data_dir(&t.conn)?, intent, &[])
        .await
        .map_err(setup_fail)?;
    print_plan(&p);
    if t.conn.json {
        outln!(
            "{}",
            json!({"plan": p.plan, "preflight": p.preflight, "secrets": secrets::statuses(&p.state, chrono::Utc::now())})
        );
    }
    Ok(())
}

pub(crate) fn confirm(question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    err!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).is_ok() && matches!(line.trim(), "y" | "Y" | "yes")
}

pub(crate) async fn apply(a: &ApplyArgs) -> Result<(), Fail> {
    let t = &a.target;
    let intent = intent(t).await?;
    let flags = scim_flags(t, &intent)?;
    // Where the secret goes is checked before anything is created.
    if let Some(dir) = &a.output_dir {
        if dir.exists() && !dir.is_dir() {
            return Err(Fail(
                2,
                format!(
                    "--output-dir {} is a file, not a folder: give a folder (it is created if missing).",
                    dir.display()
                ),
            ));
        }
    }
    if let Some(api) = &a.push_api {
        entra_setup_core::endpoint::parse(api, entra_setup_core::endpoint::Http::Loopback, false)
            .map_err(|why| Fail(2, format!("--push-api: {why}.")))?;
    }
    let push_inputs = if a.push {
        let raw = parse_pairs(&a.push_inputs, "--push-input")?;
        let mut raw = raw;
        let token_file = a.push_token_file.as_ref().ok_or_else(|| {
            Fail(
                2,
                "--push needs --push-token-file with the provider API token".into(),
            )
        })?;
        let token = read_secret_file("--push-token-file", token_file, "provider API token")?;
        // The token file fills the profile's secret push input (Cloudflare's api_token).
        let token_input = intent
            .provider
            .push
            .iter()
            .flat_map(|p| p.inputs.iter())
            .find(|i| i.secret)
            .map_or_else(|| "api_token".to_string(), |i| i.id.clone());
        raw.insert(token_input, token.expose_secret().to_string());
        let checked = intent
            .provider
            .validate_push_inputs(&raw)
            .map_err(|errors| {
                Fail(
                    2,
                    errors
                        .iter()
                        .map(|e| format!("--push-input {}: {}", e.field, e.message))
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            })?;
        if intent.provider.push.is_none() {
            return Err(Fail(
                2,
                format!(
                    "{} has no API to push to; use --output-dir",
                    intent.provider.name
                ),
            ));
        }
        Some(checked)
    } else {
        None
    };
    let s = sign_in(&t.conn, step_scopes(t), store(&t.conn)).await?;
    let (mut intent, scim_token) = with_scim(t, &s, intent, flags).await?;
    // The vendor's own apps: what to give the vendor's console, and their consent (waited for).
    let vendor = intent.provider.vendor_apps().next().is_some();
    let mut consent_missing = false;
    if vendor {
        intent.tenant_id.clone_from(&s.account.tenant_id);
        consent_missing = !connect_vendor(a, &s, &intent).await?;
    }
    let dir = data_dir(&t.conn)?;
    let prepared = flow::prepare(&s, &dir, intent, &[])
        .await
        .map_err(setup_fail)?;
    print_plan(&prepared);
    // An app someone else also holds: nothing is written, not even a question asked, before
    // the admin has seen who and chosen to adopt it.
    if !prepared.foreign.is_empty() && !a.adopt {
        return Err(Fail(
            13,
            entra_setup_core::setup::custody::NotAdopted(prepared.foreign.clone()).to_string(),
        ));
    }
    let adoption = a.adopt.then(|| entra_setup_core::setup::custody::Adoption {
        keep: a.adopt_keep.clone(),
    });
    if let Some(adoption) = &adoption {
        if prepared.foreign.is_empty() {
            errln!(
                "--adopt: every app of the setup is the wizard's alone; there is nothing to adopt."
            );
        }
        adoption.check(&prepared.foreign).map_err(|m| Fail(2, m))?;
    }
    let adds_secret = prepared
        .plan
        .changes
        .iter()
        .any(|c| matches!(c.change, Change::AddPassword { .. }));
    if adds_secret && a.output_dir.is_none() && !a.push && !a.keep_secret {
        return Err(Fail(2, "The plan creates a client secret, which is shown only once: say where it goes with --output-dir DIR, --push or --keep-secret.".into()));
    }
    // A SAML setup with nothing to change still hands over (and asks about the lockout guard).
    if prepared.plan.is_empty() && prepared.intent.saml.is_none() && !vendor {
        if t.conn.json {
            outln!(
                "{}",
                json!({"plan": prepared.plan, "result": {"changes": 0}})
            );
        }
        return Ok(());
    }
    if !a.yes
        && !prepared.plan.is_empty()
        && !confirm(&format!(
            "Apply these {} changes?",
            prepared.plan.changes.len()
        ))
    {
        return Err(Fail(
            7,
            "Nothing was changed. Run again with --yes to apply.".into(),
        ));
    }
    let on_event: Arc<dyn Fn(ApplyEvent) + Send + Sync> = Arc::new(|e| {
        match e {
        ApplyEvent::Started { seq, title } => errln!("[{}] {title}…", seq + 1),
        ApplyEvent::Done { seq, detail } => errln!("[{}] done: {detail}", seq + 1),
        ApplyEvent::Failed { seq, message } => errln!("[{}] FAILED: {message}", seq + 1),
        ApplyEvent::WaitingForConsent { url, .. } => errln!("A Privileged Role Administrator or Global Administrator must open this link to consent:\n  {url}"),
        ApplyEvent::Waiting { seq, message } => errln!("[{}] {message}", seq + 1),
        ApplyEvent::Finished { changes } => errln!("Applied {changes} changes."),
    }
    });
    let options = ApplyOptions {
        consent_wait: Duration::from_secs(a.wait_consent),
        consent_poll: Duration::from_secs(5),
        scim_token: scim_token.clone(),
        adopt: adoption,
        ..Default::default()
    };
    let (mut run, failure) =
        Run::apply(&s, prepared, &options, on_event, &CancellationToken::new()).await;
    if let Some(error) = failure {
        match &error {
            entra_setup_core::setup::apply::ApplyError::Busy(why) => {
                return Err(Fail(12, why.clone()))
            }
            entra_setup_core::setup::apply::ApplyError::NotAdopted(n) => {
                return Err(Fail(13, n.to_string()))
            }
            _ => {}
        }
        // A secret made before the stop is still handed over: it is shown only once.
        if run.secret.is_some() {
            let _ = hand_over(a, &s, &mut run, push_inputs.as_ref()).await;
        }
        return Err(Fail(
            4,
            format!(
                "{error}\nJournal: {}. Run apply again to resume.",
                run.prepared.journal.path().display()
            ),
        ));
    }
    let p = &run.prepared;
    let mut result = json!({"appId": run.app_id, "objectId": run.app_object_id, "servicePrincipalId": run.sp_id, "consentUrl": run.consent_url, "journal": p.journal.path()});
    if let Some(secret) = &run.secret {
        result["secret"] =
            json!({"keyId": secret.key_id, "hint": secret.hint, "expires": secret.end});
    }
    if run.secret.is_some() {
        result["handedOver"] = hand_over(a, &s, &mut run, push_inputs.as_ref()).await?;
    }
    let mut code = 0;
    if let Some(url) = &run.consent_url {
        errln!("Admin consent is still needed. Send this link to a Privileged Role Administrator or Global Administrator:\n  {url}");
        code = 5;
    }
    if !a.skip_checks {
        let checks = run.checks(&s).await;
        for c in &checks {
            errln!("{}", check_line(c));
        }
        // A vendor's missing consent has its own exit code (11, below).
        let failed = |c: &&entra_setup_core::checks::CheckResult| {
            c.status == Status::Fail && !(consent_missing && c.id.starts_with("vendor_consent"))
        };
        if code == 0 && checks.iter().any(|c| failed(&c)) {
            code = 6;
        }
        result["checks"] = json!(checks);
    }
    if vendor {
        result["vendor"] = vendor_hand_over(a, &s, &mut run)?;
        if code == 0 && consent_missing {
            code = 11;
        }
    }
    if run.saml.is_some() {
        result["saml"] = saml_hand_over(a, &s, &mut run).await?;
        // The lockout guard: single sign-on is not done until someone can still get in
        // without it.
        if code == 0 && !a.confirm_password_admin {
            errln!(
                "Single sign-on is set up in Entra. Before users rely on it, make sure at least one administrator of {} still signs in with a password, not SSO: if SSO breaks (an expired certificate, a wrong Entity ID), they can still get in and fix it. Then run the same command with --confirm-password-admin.",
                run.prepared.intent.service_name()
            );
            code = 10;
        }
    }
    let view = run.done_view(&s, false, vec![]).await;
    let p = &run.prepared;
    if let (Some(offer), Some(new)) = (&view.retire, &run.secret) {
        let old: Vec<String> = offer.old.iter().map(describe_secret).collect();
        if !old.is_empty() {
            errln!(
                "The old secret{} still work{} until retired:\n  {}\nOnce {} uses the new secret, run: entra-setup retire-secrets --provider {} --keep {} (with the same --input values)",
                if old.len() == 1 { "" } else { "s" },
                if old.len() == 1 { "s" } else { "" },
                old.join("\n  "),
                p.intent.provider.name,
                p.intent.provider.id(),
                new.key_id
            );
            result["oldSecrets"] = json!(old);
        }
    }
    if let (Some(sc), Some(_)) = (&view.scim, &p.intent.scim) {
        if let Some(st) = &sc.status {
            errln!("Provisioning: {}", st.headline);
        }
        result["scim"] = json!({"appId": sc.app_id, "servicePrincipalId": sc.service_principal_id, "jobId": sc.job_id, "status": sc.status});
        for w in &sc.advice {
            errln!("Warning: {}: {}", w.title, w.detail);
        }
    }
    for w in &view.advice {
        errln!("Warning: {}: {}", w.title, w.detail);
    }
    if t.conn.json {
        outln!("{}", json!({"plan": p.plan, "result": result}));
    }
    if code == 0 {
        Ok(())
    } else {
        Err(Fail(code, String::new()))
    }
}

/// Says what the vendor's console needs and where, then checks the vendor's apps' consent,
/// waiting up to --wait-for-consent seconds for it. True when every app is there and consented.
async fn connect_vendor(a: &ApplyArgs, s: &Session, intent: &Intent) -> Result<bool, Fail> {
    use entra_setup_core::setup::vendor;
    let name = &intent.provider.name;
    let roles = entra_setup_core::setup::plan::RoleFacts::from_summary(&s.summary);
    if let Some(note) = vendor::role_note(intent, roles.can_grant_app_roles) {
        errln!("Note: {note}");
    }
    for (what, value) in vendor::hand_over(intent) {
        errln!("{what} for {name}'s console: {value}");
    }
    if let Some(v) = &intent.provider.vendor {
        match vendor::console_url(intent) {
            Some(url) => errln!(
                "{}
  {url}",
                v.console_steps
            ),
            None => errln!("{}", v.console_steps),
        }
    }
    let wait = Duration::from_secs(a.wait_for_consent);
    let poll = entra_setup_core::wait::pause_override()
        .unwrap_or(Duration::from_secs(5))
        .min(wait.max(Duration::from_millis(1)));
    if !wait.is_zero() {
        errln!(
            "Waiting up to {}s for {name}'s apps to appear with their consent…",
            wait.as_secs()
        );
    }
    let last = std::sync::Mutex::new(String::new());
    let on_check = |c: &[vendor::VendorConsent]| {
        let line = c
            .iter()
            .map(|x| format!("{}: {:?}", x.name, x.status))
            .collect::<Vec<_>>()
            .join(", ");
        let mut last = last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *last != line {
            errln!("  {line}");
            *last = line;
        }
    };
    let consents = vendor::wait_for_consent(&s.graph, intent, wait, poll, &on_check)
        .await
        .map_err(|e| Fail(4, e.to_string()))?;
    for c in &consents {
        let name = entra_setup_core::redact::echo(&c.name, 120);
        if c.status == vendor::ConsentStatus::Complete {
            errln!("PASS \"{name}\": present and consented.");
        } else {
            errln!("FAIL \"{name}\": {}", c.message);
        }
        if let Some(owner) = &c.owner_tenant {
            errln!(
                "     owned by tenant {}; verified publisher: {}",
                entra_setup_core::redact::echo(owner, 60),
                c.verified_publisher
                    .as_deref()
                    .map_or("none".to_string(), |p| entra_setup_core::redact::echo(
                        p, 80
                    ))
            );
        }
        if !c.extra.is_empty() {
            errln!(
                "WARN \"{name}\" also holds permissions {} does not need: {}. Check who granted them (Enterprise applications → {name} → Permissions).",
                intent.provider.name,
                c.extra.join(", ")
            );
        }
    }
    Ok(vendor::complete(&consents))
}

/// Says which files were written.
fn print_written(files: &[std::path::PathBuf]) {
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    errln!("Wrote {}.", names.join(", "));
}

/// The hand-over of a setup with vendor apps: the outputs written with --output-dir, and what
/// to do in the vendor's console (for a vendor's own directory sync: which mode, where, when).
fn vendor_hand_over(a: &ApplyArgs, s: &Session, run: &mut Run) -> Result<serde_json::Value, Fail> {
    let mut report = json!({});
    if let (Some(dir), None) = (&a.output_dir, &run.secret) {
        let files = run.save_all(s, dir).map_err(|e| Fail(1, e.to_string()))?;
        print_written(&files);
        report["files"] = json!(files);
    }
    let intent = &run.prepared.intent;
    if let (Some(spec), Some(choice)) = (&intent.provider.directory_sync, &intent.directory_sync) {
        let mode = if choice.sync_all {
            &spec.all_label
        } else {
            &spec.assigned_label
        };
        errln!(
            "In {}: {}, choose \"{mode}\". {}",
            intent.provider.name,
            spec.where_to_choose,
            spec.schedule
        );
        report["syncMode"] = json!(mode);
    }
    Ok(report)
}

/// The SAML hand-over: the metadata URL printed (services that read it get certificate
/// renewals by themselves), and with --output-dir the settings, the federation metadata
/// (fetched and checked live) and the signing certificate written there.
async fn saml_hand_over(
    a: &ApplyArgs,
    s: &Session,
    run: &mut Run,
) -> Result<serde_json::Value, Fail> {
    let values = run.values(s);
    let url = values.get("saml_metadata_url").cloned().unwrap_or_default();
    let mut report = json!({
        "metadataUrl": url,
        "idpEntityId": values.get("saml_idp_entity_id"),
        "ssoUrl": values.get("saml_sso_url"),
        "certificateSha1": values.get("saml_cert_sha1"),
        "certificateSha256": values.get("saml_cert_sha256"),
    });
    if let Some(dir) = &a.output_dir {
        // With a secret, hand_over already saved the outputs.
        let mut files = if run.secret.is_none() {
            run.save_all(s, dir).map_err(|e| Fail(1, e.to_string()))?
        } else {
            vec![]
        };
        files.extend(run.save_saml(s, dir).await.map_err(|e| {
            Fail(
                6,
                format!("{e} The Entra side is done; run apply again to fetch it."),
            )
        })?);
        print_written(&files);
        report["files"] = json!(files);
    }
    if let Some(new) = run.saml.as_ref().and_then(|x| x.pending.as_ref()) {
        let view = entra_setup_core::setup::view::CertificateView::of(new);
        report["newCertificate"] = json!({
            "thumbprint": view.thumbprint,
            "sha256": view.sha256,
            "expires": view.expires,
        });
        if let Some(dir) = &a.output_dir {
            let path = dir.join("saml-signing-certificate-new.pem");
            std::fs::write(&path, &view.pem)
                .map_err(|e| Fail(1, format!("Could not write {}: {e}", path.display())))?;
            report["newCertificateFile"] = json!(path);
        }
        errln!(
            "A new signing certificate was added next to the active one: {} (SHA-256 {}). Entra still signs with the current one. Give {} the new certificate, then run `entra-setup activate-certificate --thumbprint {}` with the same --provider and --input options.",
            view.thumbprint,
            view.sha256,
            run.prepared.intent.service_name(),
            view.thumbprint
        );
    }
    if !a.target.conn.json {
        outln!("App Federation Metadata URL: {url}");
    }
    Ok(report)
}

/// Hands the new secret over as asked (files, the provider's API, the keychain); the run
/// journals each.
pub(crate) async fn hand_over(
    a: &ApplyArgs,
    s: &Session,
    run: &mut Run,
    push_inputs: Option<&BTreeMap<String, String>>,
) -> Result<serde_json::Value, Fail> {
    let mut report = json!({});
    if let Some(dir) = &a.output_dir {
        let mut files = run.save_all(s, dir).map_err(|e| Fail(1, e.to_string()))?;
        let ics = files.pop();
        errln!(
            "Wrote {} (readable by you only) and the calendar reminder {}.",
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            ics.map(|f| f.display().to_string()).unwrap_or_default()
        );
        report["files"] = json!(files);
    }
    if let Some(inputs) = push_inputs {
        let http = entra_setup_core::http::client();
        let r = run
            .push(s, &http, inputs, a.push_api.as_deref())
            .await
            .map_err(|e| {
                Fail(
                    4,
                    format!("{e} (the Entra side is done; push again with the same command)"),
                )
            })?;
        errln!(
            "{} {} {} in {}.",
            if r.created { "Created" } else { "Updated" },
            r.object,
            r.id,
            run.prepared.intent.provider.name
        );
        report["pushed"] = json!(r);
    }
    if a.keep_secret {
        run.keep(&store(&a.target.conn))
            .await
            .map_err(|e| Fail(1, e.to_string()))?;
    }
    Ok(report)
}
