//! What the commands print: the plan, secrets, and the meaning of exit codes.

use super::*;

pub(crate) fn print_plan(p: &Prepared) {
    errln!(
        "\nPlan for {} ({}):",
        p.plan.display_name,
        p.plan.unique_name
    );
    for a in &p.preflight.advice {
        errln!("  [{:?}] {}: {}", a.severity, a.title, a.detail);
    }
    if p.plan.is_empty() {
        errln!("  No changes: the tenant already matches.");
    }
    for c in &p.plan.changes {
        errln!(
            "  {}. {}\n     {}\n     {}",
            c.seq + 1,
            c.title,
            c.reason,
            c.request
        );
    }
    for n in &p.plan.notes {
        errln!("  Note: {n}");
    }
    if let Some(path) = &p.intent.provider.custom {
        errln!(
            "  Custom profile: {} (not built into Entra Setup: it decides the permissions asked for and where settings are pushed)",
            entra_setup_core::redact::echo(path, 200)
        );
    }
    for f in &p.foreign {
        errln!(
            "  NOT THE WIZARD'S ALONE: \"{}\" ({}) — apply stops here until you adopt it:",
            entra_setup_core::redact::echo(&f.display_name, 120),
            f.app_object_id
        );
        for l in f.lines() {
            errln!("    - {l}");
        }
    }
    let secrets = secrets::statuses(&p.state, chrono::Utc::now());
    if !secrets.is_empty() {
        errln!("Client secrets on the app, newest first:");
        for s in &secrets {
            errln!("  {}", describe_secret(s));
        }
    }
}

/// One line about a secret: name, hint, key id, expiry in words.
pub(crate) fn describe_secret(s: &secrets::SecretStatus) -> String {
    let when = match (s.expires, s.days_left) {
        (Some(e), Some(d)) if d < 0 => {
            format!("EXPIRED on {} ({} days ago)", e.format("%Y-%m-%d"), -d)
        }
        (Some(e), Some(d)) => format!(
            "expires {} (in {d} days{})",
            e.format("%Y-%m-%d"),
            if s.health == secrets::SecretHealth::ExpiresSoon {
                ", soon"
            } else {
                ""
            }
        ),
        _ => "no end date".into(),
    };
    format!(
        "{} ({}…, key {}): {when}{}",
        if s.display_name.is_empty() {
            "(no name)"
        } else {
            &s.display_name
        },
        s.hint.as_deref().unwrap_or(""),
        s.key_id,
        if s.by_wizard {
            ""
        } else {
            "; not made by the wizard"
        }
    )
}

/// The exit code's meaning, for `--json` error objects.
pub(crate) fn exit_kind(code: u8) -> &'static str {
    match code {
        2 => "usage",
        3 => "signIn",
        4 => "graph",
        5 => "consentNeeded",
        6 => "liveCheckFailed",
        7 => "confirmationNeeded",
        8 => "scimNotReady",
        9 => "attention",
        10 => "passwordAdminUnconfirmed",
        _ => "unexpected",
    }
}
