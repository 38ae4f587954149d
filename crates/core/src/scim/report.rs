//! The report: one row a check, and the verdict.

use std::time::{Duration, Instant};

use super::client::ms;
use super::{Exchange, ScimCheck, ScimReport, ScimStatus, ScimTarget};

#[allow(clippy::too_many_arguments)] // one row of the report table, every column named at the call site
pub(super) fn check(
    id: &str,
    title: &str,
    status: ScimStatus,
    detail: impl Into<String>,
    impact: &str,
    rfc: &str,
    fix: Option<&str>,
    exchanges: Vec<Exchange>,
) -> ScimCheck {
    ScimCheck {
        id: id.into(),
        title: title.into(),
        status,
        detail: detail.into(),
        entra_impact: impact.into(),
        rfc: rfc.into(),
        fix: fix.map(str::to_string),
        millis: exchanges.iter().map(|x| x.millis).sum(),
        exchanges,
    }
}

pub(super) fn skipped(id: &str, title: &str, why: &str) -> ScimCheck {
    check(id, title, ScimStatus::Skipped, why, "", "", None, vec![])
}

/// `host:port` of a URL, for messages.
pub(super) fn u_host_port(u: &Result<url::Url, url::ParseError>) -> String {
    match u {
        Ok(u) => format!(
            "{}:{}",
            u.host_str().unwrap_or_default(),
            u.port_or_known_default().unwrap_or_default()
        ),
        Err(_) => String::new(),
    }
}

/// The endpoint gave no answer at all: why, in plain words.
pub(super) fn unreachable(x: &Exchange, host: &str, timeout: Duration) -> ScimCheck {
    let e = x.error.clone().unwrap_or_default();
    let l = e.to_ascii_lowercase();
    let (detail, fix) = if l.contains("refused") {
        (
            format!("Connection refused: nothing is listening at {host}."),
            "Check the host and port in the URL, and that the SCIM server is running.",
        )
    } else if l.contains("timed out") || l.contains("timeout") || l.contains("deadline") {
        (
            format!(
                "No answer from {host} within {} s: the connection timed out.",
                timeout.as_secs().max(1)
            ),
            "Check that the server is up and that no firewall drops connections to it; Entra gives up on endpoints that do not answer too.",
        )
    } else if l.contains("dns") || l.contains("lookup") || l.contains("resolve") {
        (
            format!("The host name in {host} does not resolve (no DNS record)."),
            "Check the host name for typos; it must be a public name Entra can look up.",
        )
    } else {
        (
            format!("No answer from {host}: {e}"),
            "Check the URL, that the server is up, and that it is reachable from the internet.",
        )
    };
    check(
        "reachable",
        "The endpoint answers",
        ScimStatus::Fail,
        detail,
        "Test Connection fails: Entra cannot reach the endpoint, so there is no tenant URL to enter yet",
        "",
        Some(fix),
        vec![x.clone()],
    )
}

pub(super) fn finish(
    target: &ScimTarget,
    base: String,
    checks: Vec<ScimCheck>,
    flag_in_url_or_needed: bool,
    started: Instant,
    reached: bool,
) -> ScimReport {
    let failed: Vec<&ScimCheck> = checks
        .iter()
        .filter(|c| c.status == ScimStatus::Fail)
        .collect();
    let ready = failed.is_empty();
    let verdict = if ready {
        let warns = checks
            .iter()
            .filter(|c| c.status == ScimStatus::Warn)
            .count();
        if warns > 0 {
            format!(
                "Ready for Entra, with {warns} warning{} to read.",
                if warns == 1 { "" } else { "s" }
            )
        } else {
            "Ready for Entra: Test Connection and provisioning should work.".to_string()
        }
    } else {
        format!(
            "Not ready for Entra: {} check{} failed ({}).",
            failed.len(),
            if failed.len() == 1 { "" } else { "s" },
            failed
                .iter()
                .map(|c| c.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let tenant_url = reached.then(|| {
        if flag_in_url_or_needed {
            format!("{base}?aadOptscim062020")
        } else {
            base
        }
    });
    ScimReport {
        url: target.url.clone(),
        checks,
        ready,
        verdict,
        use_aad_opt_flag: flag_in_url_or_needed,
        tenant_url,
        total_millis: ms(started.elapsed()),
    }
}
