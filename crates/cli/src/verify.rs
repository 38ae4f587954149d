//! verify-scim: a SCIM endpoint checked the way Entra will use it.

use super::*;

pub(crate) async fn verify_scim(v: &VerifyScimArgs) -> Result<(), Fail> {
    use entra_setup_core::scim::{self, ScimAuth, ScimStatus, ScimTarget, VerifyOptions};
    // A URL that is not one is a mistake in the command, not a verdict on an endpoint. (Plain
    // http is for the verifier to judge: it refuses to send the token over it.)
    entra_setup_core::endpoint::parse(&v.url, entra_setup_core::endpoint::Http::Anywhere, true)
        .map_err(|why| Fail(2, format!("--url: {why}.")))?;
    let auth = match (&v.token_file, &v.basic_user, &v.basic_password_file) {
        (Some(f), _, _) => ScimAuth::Bearer(read_secret_file("--token-file", f, "bearer token")?),
        (None, Some(user), Some(f)) => ScimAuth::Basic {
            user: user.clone(),
            password: read_secret_file("--basic-password-file", f, "password")?,
        },
        _ => {
            return Err(Fail(
                2,
                "Give --token-file, or --basic-user with --basic-password-file.".into(),
            ))
        }
    };
    let trusted_cert = match &v.trust_cert {
        Some(f) => Some(
            entra_setup_core::scim::read_trusted_cert(f)
                .map_err(|why| Fail(2, format!("--trust-cert: {why}")))?,
        ),
        None => None,
    };
    let target = ScimTarget {
        url: v.url.trim().to_string(),
        auth,
        trusted_cert,
    };
    if !v.json {
        errln!(
            "Checking {} as Entra's provisioning service would{}…",
            target.url,
            if v.write_tests {
                " (with write tests)"
            } else {
                ""
            }
        );
    }
    let report = scim::verify(
        &target,
        &VerifyOptions {
            write_tests: v.write_tests,
            timeout: None,
            ..Default::default()
        },
    )
    .await;
    if v.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| Fail(1, e.to_string()))?
        );
    } else {
        for c in &report.checks {
            let mark = match c.status {
                ScimStatus::Pass => "pass",
                ScimStatus::Warn => "WARN",
                ScimStatus::Fail => "FAIL",
                ScimStatus::Skipped => "skip",
            };
            outln!("{mark}  {:<24} {} ({} ms)", c.id, c.title, c.millis);
            if c.status == ScimStatus::Pass {
                continue;
            }
            outln!("      {}", c.detail);
            if !c.entra_impact.is_empty() {
                outln!("      Entra: {}", c.entra_impact);
            }
            if let Some(fix) = &c.fix {
                outln!("      Fix: {fix}");
            }
            if !c.rfc.is_empty() {
                outln!("      See {}", c.rfc);
            }
            if matches!(c.status, ScimStatus::Fail | ScimStatus::Warn) {
                for x in &c.exchanges {
                    outln!("      > {} {}  [{}]", x.method, x.url, x.auth);
                    if let Some(b) = &x.request_body {
                        outln!("        {b}");
                    }
                    match (&x.status, &x.error) {
                        (_, Some(e)) => outln!("      < no answer: {e}"),
                        (Some(st), None) => {
                            outln!(
                                "      < {st} {}{}",
                                x.content_type.as_deref().unwrap_or("(no content type)"),
                                x.location
                                    .as_deref()
                                    .map(|l| format!(" → {l}"))
                                    .unwrap_or_default()
                            );
                            if let Some(b) = &x.response_body {
                                outln!("        {}", b.chars().take(400).collect::<String>());
                            }
                        }
                        (None, None) => {}
                    }
                }
            }
        }
        outln!();
        outln!("{}", report.verdict);
        match (&report.tenant_url, report.ready) {
            (Some(u), true) => {
                outln!("Tenant URL to enter in Entra: {u}");
                if report.use_aad_opt_flag {
                    outln!("(it carries ?aadOptscim062020: this server needs Entra's RFC-compliant PATCH format)");
                }
            }
            (Some(u), false) => outln!(
                "Once the failures above are fixed, the tenant URL to enter in Entra is {u}."
            ),
            (None, _) => outln!("No tenant URL to enter: the endpoint could not be reached."),
        }
        outln!("Took {} ms.", report.total_millis);
    }
    if report.ready {
        Ok(())
    } else {
        Err(Fail(8, String::new()))
    }
}
