//! plan and apply: the setup run, the hand-over of the new secret, and the live tests.

use super::*;

pub(crate) fn setup_fail(e: SetupError) -> Fail {
    match e {
        SetupError::Plan(p) => Fail(2, p.to_string()),
        SetupError::Graph(g) => Fail(4, g.to_string()),
    }
}

pub(crate) async fn plan(t: &Target) -> Result<(), Fail> {
    let intent = intent(t)?;
    let s = sign_in(&t.conn, step_scopes(t), store(&t.conn)).await?;
    let (intent, _) = with_scim(t, &s, intent).await?;
    let p = flow::prepare(&s, &data_dir(&t.conn), intent, &[])
        .await
        .map_err(setup_fail)?;
    print_plan(&p);
    if t.conn.json {
        println!(
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
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).is_ok() && matches!(line.trim(), "y" | "Y" | "yes")
}

pub(crate) async fn apply(a: &ApplyArgs) -> Result<(), Fail> {
    let t = &a.target;
    let intent = intent(t)?;
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
        let token = std::fs::read_to_string(token_file)
            .map_err(|e| Fail(2, format!("cannot read {}: {e}", token_file.display())))?;
        raw.insert("api_token".into(), token.trim().to_string());
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
    let (intent, scim_token) = with_scim(t, &s, intent).await?;
    let dir = data_dir(&t.conn);
    let prepared = flow::prepare(&s, &dir, intent, &[])
        .await
        .map_err(setup_fail)?;
    print_plan(&prepared);
    let adds_secret = prepared
        .plan
        .changes
        .iter()
        .any(|c| matches!(c.change, Change::AddPassword { .. }));
    if adds_secret && a.output_dir.is_none() && !a.push && !a.keep_secret {
        return Err(Fail(2, "The plan creates a client secret, which is shown only once: say where it goes with --output-dir DIR, --push or --keep-secret.".into()));
    }
    if prepared.plan.is_empty() {
        if t.conn.json {
            println!(
                "{}",
                json!({"plan": prepared.plan, "result": {"changes": 0}})
            );
        }
        return Ok(());
    }
    if !a.yes
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
        ApplyEvent::Started { seq, title } => eprintln!("[{}] {title}…", seq + 1),
        ApplyEvent::Done { seq, detail } => eprintln!("[{}] done: {detail}", seq + 1),
        ApplyEvent::Failed { seq, message } => eprintln!("[{}] FAILED: {message}", seq + 1),
        ApplyEvent::WaitingForConsent { url, .. } => eprintln!("A Privileged Role Administrator or Global Administrator must open this link to consent:\n  {url}"),
        ApplyEvent::Finished { changes } => eprintln!("Applied {changes} changes."),
    }
    });
    let options = ApplyOptions {
        consent_wait: Duration::from_secs(a.wait_consent),
        consent_poll: Duration::from_secs(5),
        scim_token: scim_token.clone(),
        ..Default::default()
    };
    let applied =
        match flow::execute(&s, &prepared, &options, on_event, &CancellationToken::new()).await {
            Ok(x) => x,
            Err(failed) => {
                if let Some(secret) = &failed.partial.secret {
                    let _ = hand_over(
                        a,
                        &s,
                        &prepared,
                        failed.partial.app_id.as_deref().unwrap_or_default(),
                        secret,
                        push_inputs.as_ref(),
                    )
                    .await;
                }
                return Err(Fail(
                    4,
                    format!(
                        "{}\nJournal: {}. Run apply again to resume.",
                        failed.error,
                        prepared.journal.path().display()
                    ),
                ));
            }
        };
    let app_id = applied.app_id.clone().unwrap_or_default();
    let scim_applied = applied.scim.clone().or_else(|| {
        prepared.state.scim.as_ref().map(|x| ScimApplied {
            app_object_id: x.app_object_id.clone(),
            app_id: x.app_id.clone(),
            sp_id: x.sp_id.clone(),
            job_id: x.job.as_ref().map(|j| j.id.clone()),
        })
    });
    let mut result = json!({"appId": app_id, "objectId": applied.app_object_id, "servicePrincipalId": applied.sp_id, "consentUrl": applied.consent_url, "journal": prepared.journal.path()});
    if let Some(secret) = &applied.secret {
        result["secret"] =
            json!({"keyId": secret.key_id, "hint": secret.hint, "expires": secret.end});
        let handed = hand_over(a, &s, &prepared, &app_id, secret, push_inputs.as_ref()).await?;
        result["handedOver"] = handed;
    }
    let mut code = 0;
    if let Some(url) = &applied.consent_url {
        eprintln!("Admin consent is still needed. Send this link to a Privileged Role Administrator or Global Administrator:\n  {url}");
        code = 5;
    }
    if !a.skip_checks {
        let checks = run_checks(
            &s,
            &app_id,
            applied.secret.as_ref().map(|x| &x.value),
            &prepared,
            applied.consent_url.is_none(),
            scim_applied.as_ref(),
        )
        .await;
        for c in &checks {
            eprintln!(
                "{} {}: {}{}",
                match c.status {
                    Status::Pass => "PASS",
                    Status::Warn => "WARN",
                    Status::Fail => "FAIL",
                },
                c.title,
                c.detail,
                c.fix
                    .as_ref()
                    .map(|f| format!(" Fix: {f}"))
                    .unwrap_or_default()
            );
        }
        if code == 0 && checks.iter().any(|c| c.status == Status::Fail) {
            code = 6;
        }
        result["checks"] = json!(checks);
    }
    if let Some(new) = &applied.secret {
        let old: Vec<String> = secrets::left_after_rotation(
            &prepared.plan,
            &prepared.state,
            &new.key_id,
            chrono::Utc::now(),
        )
        .iter()
        .map(describe_secret)
        .collect();
        if !old.is_empty() {
            eprintln!(
                "The old secret{} still work{} until retired:\n  {}\nOnce {} uses the new secret, run: entra-setup retire-secrets --provider {} --keep {} (with the same --input values)",
                if old.len() == 1 { "" } else { "s" },
                if old.len() == 1 { "s" } else { "" },
                old.join("\n  "),
                prepared.intent.provider.name,
                prepared.intent.provider.id(),
                new.key_id
            );
            result["oldSecrets"] = json!(old);
        }
    }
    if let (Some(sc), Some(_)) = (&scim_applied, &prepared.intent.scim) {
        let status = match &sc.job_id {
            Some(job) => provisioning::job_status(&s.graph, &sc.sp_id, job)
                .await
                .ok(),
            None => None,
        };
        if let Some(st) = &status {
            eprintln!("Provisioning: {}", st.headline);
        }
        result["scim"] = json!({"appId": sc.app_id, "servicePrincipalId": sc.sp_id, "jobId": sc.job_id, "status": status});
        for w in outputs::scim_advice(
            &prepared.intent.provider,
            prepared.journal.scim_record().and_then(|r| r.token_expires),
        ) {
            eprintln!("Warning: {}: {}", w.title, w.detail);
        }
    }
    let advice = if prepared.intent.provider.has_sign_in() {
        outputs::done_advice(
            &prepared.intent.provider,
            Some(&prepared.preflight),
            applied.secret.as_ref().map(|x| x.end),
        )
    } else {
        vec![]
    };
    for w in advice {
        eprintln!("Warning: {}: {}", w.title, w.detail);
    }
    if t.conn.json {
        println!("{}", json!({"plan": prepared.plan, "result": result}));
    }
    if code == 0 {
        Ok(())
    } else {
        Err(Fail(code, String::new()))
    }
}

pub(crate) async fn run_checks(
    s: &Session,
    app_id: &str,
    secret: Option<&SecretString>,
    p: &Prepared,
    consented: bool,
    scim: Option<&ScimApplied>,
) -> Vec<CheckResult> {
    let http = entra_setup_core::http::client();
    let mut out = vec![];
    if p.intent.provider.has_sign_in() {
        out.push(checks::discovery(&http, &s.cloud, &s.account.tenant_id).await);
    }
    if let Some((sp, job)) = scim.and_then(|x| x.job_id.as_deref().map(|j| (&x.sp_id, j))) {
        if p.journal.scim_record().is_some() {
            out.push(checks::scim_connection(&s.graph, sp, job).await);
        }
    }
    if let Some(secret) = secret {
        let app_perms = consented
            && !p
                .intent
                .provider
                .permission_names(PermissionKind::Application)
                .is_empty();
        out.extend(
            checks::secret_and_consent(
                &http,
                &s.cloud,
                &s.account.token_endpoint,
                app_id,
                secret,
                app_perms,
                &SecretRetry::default(),
            )
            .await,
        );
    }
    out
}

/// Hands the new secret over as asked; records it in the journal.
pub(crate) async fn hand_over(
    a: &ApplyArgs,
    s: &Session,
    p: &Prepared,
    app_id: &str,
    secret: &entra_setup_core::setup::apply::NewSecret,
    push_inputs: Option<&BTreeMap<String, String>>,
) -> Result<serde_json::Value, Fail> {
    let provider = &p.intent.provider;
    let values = outputs::values(
        &s.cloud,
        &s.account.tenant_id,
        app_id,
        &p.plan.display_name,
        &p.intent.inputs,
        Some(secret.end),
    );
    let mut how = vec![];
    let mut report = json!({});
    if let Some(dir) = &a.output_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| Fail(1, format!("cannot create {}: {e}", dir.display())))?;
        let mut files = vec![];
        for o in &provider.outputs {
            let name = o.file_name.clone().unwrap_or_else(|| {
                format!(
                    "{}.{}",
                    o.id,
                    match o.format {
                        provider::OutputFormat::Json => "json",
                        provider::OutputFormat::Yaml => "yaml",
                        provider::OutputFormat::Hcl => "tf",
                        provider::OutputFormat::Text => "txt",
                    }
                )
            });
            let path = dir.join(name);
            let text = outputs::render_with_secret(provider, &o.id, &values, &secret.value)
                .map_err(|e| Fail(1, e))?;
            outputs::write_private_file(&path, &text)
                .map_err(|e| Fail(1, format!("cannot write {}: {e}", path.display())))?;
            files.push(path);
        }
        let ics = dir.join("secret-expiry.ics");
        outputs::write_private_file(
            &ics,
            &SecretString::from(outputs::expiry_reminder(
                &p.plan.display_name,
                &secret.key_id,
                secret.end,
            )),
        )
        .map_err(|e| Fail(1, e.to_string()))?;
        eprintln!(
            "Wrote {} (readable by you only) and the calendar reminder {}.",
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            ics.display()
        );
        report["files"] = json!(files);
        how.push("saved to a file");
    }
    if let (Some(inputs), Some(push)) = (push_inputs, &provider.push) {
        let body = outputs::render_with_secret(provider, &push.output, &values, &secret.value)
            .map_err(|e| Fail(1, e))?;
        let token = SecretString::from(inputs.get("api_token").cloned().unwrap_or_default());
        let mut push_values = values.clone();
        push_values.extend(
            inputs
                .iter()
                .filter(|(k, _)| k.as_str() != "api_token")
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        let http = entra_setup_core::http::client();
        let r = entra_setup_core::push::push(
            &http,
            push,
            a.push_api.as_deref(),
            &push_values,
            &token,
            &body,
        )
        .await
        .map_err(|e| {
            Fail(
                4,
                format!("{e} (the Entra side is done; push again with the same command)"),
            )
        })?;
        eprintln!(
            "{} {} {} in {}.",
            if r.created { "Created" } else { "Updated" },
            r.object,
            r.id,
            provider.name
        );
        report["pushed"] = json!(r);
        how.push("pushed to the provider");
    }
    if a.keep_secret {
        let store = store(&a.target.conn);
        keychain::set(
            &store,
            &format!("client-secret:{}:{app_id}", s.account.tenant_id),
            SecretString::from(secret.value.expose_secret().to_string()),
        )
        .await
        .map_err(|e| Fail(1, e.to_string()))?;
        how.push("kept in the keychain");
    }
    if !how.is_empty() {
        let _ = p
            .journal
            .handed_over(&p.plan.id, &secret.key_id, &how.join(", "));
    }
    Ok(report)
}
