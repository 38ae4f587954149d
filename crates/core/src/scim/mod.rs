//! The SCIM verifier: checks a provider's SCIM endpoint the way Microsoft Entra's provisioning
//! service will use it, before Entra does — so a wrong URL, token or PATCH dialect is found now,
//! not when the provisioning job is quarantined.
//!
//! Read-only checks run by default (concurrently where independent). Write checks create a
//! clearly named test user and group, and remove them even when a check fails.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub(super) const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub(super) const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub(super) const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(super) const ENTERPRISE_USER: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub(super) const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The attribute-less schema Entra lists next to the core Group schema when it creates a
/// group (Microsoft's SCIM tutorial, "Create Group").
pub(super) const ENTRA_LEGACY_GROUP_SCHEMA: &str =
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";

/// How the endpoint authenticates Entra.
pub enum ScimAuth {
    /// A long-lived bearer token: the only kind Entra accepts for non-gallery apps.
    Bearer(SecretString),
    /// HTTP Basic: verified, but Entra's non-gallery provisioning cannot use it.
    Basic {
        user: String,
        password: SecretString,
    },
}

/// The endpoint to check.
pub struct ScimTarget {
    /// The tenant URL as the admin would enter it in Entra (may end with `?aadOptscim062020`).
    pub url: String,
    pub auth: ScimAuth,
    /// A certificate (PEM) the admin explicitly trusts, e.g. a self-signed test server.
    pub trusted_cert: Option<Vec<u8>>,
}

#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// Create, change and delete a test user and group.
    pub write_tests: bool,
    pub timeout: Option<Duration>,
    /// Host names answered from this list instead of DNS (reqwest's resolver override): lets a
    /// test put a server that is not on loopback, by name, on this computer.
    pub resolve: Vec<(String, std::net::SocketAddr)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub enum ScimStatus {
    Pass,
    Warn,
    Fail,
    /// Not run: an earlier failure makes it meaningless, or write tests were not allowed.
    Skipped,
}

/// One HTTP exchange, as the report shows it. Credentials are never recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct Exchange {
    pub method: String,
    pub url: String,
    /// `none`, `bearer <redacted>`, `wrong bearer token`, `basic <redacted>`.
    pub auth: String,
    pub request_body: Option<Value>,
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub location: Option<String>,
    /// The response body (first 4 KiB).
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub millis: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct ScimCheck {
    /// Stable id, e.g. `test_connection_probe`.
    pub id: String,
    pub title: String,
    pub status: ScimStatus,
    /// What was seen.
    pub detail: String,
    /// What Entra will do about it (e.g. "Test Connection fails").
    pub entra_impact: String,
    /// The RFC 7643/7644 section the behaviour comes from.
    pub rfc: String,
    pub fix: Option<String>,
    /// Time spent in this check's requests (sequential ones added up).
    pub millis: u32,
    pub exchanges: Vec<Exchange>,
}

/// The whole verification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct ScimReport {
    pub url: String,
    pub checks: Vec<ScimCheck>,
    /// No check failed: Entra's Test Connection and provisioning should work.
    pub ready: bool,
    pub verdict: String,
    /// Append `?aadOptscim062020` to the tenant URL in Entra (the server wants RFC-style PATCH).
    pub use_aad_opt_flag: bool,
    /// The tenant URL to enter in Entra; none when the endpoint could not be reached at all.
    pub tenant_url: Option<String>,
    pub total_millis: u32,
}

mod client;
mod probes;
mod report;
mod write;

use client::{build_client, describe, looks_like_tls_error, split_url, Cred, Http};
use report::{check, finish, skipped, u_host_port, unreachable};
use write::{write_tests, WRITE_CHECKS};

/// The largest certificate file the verifier takes for `--trust-cert` (a PEM chain is a few KB).
pub const TRUSTED_CERT_LIMIT: u64 = 1024 * 1024;

/// Reads a certificate the admin trusts for one check: a regular file under 1 MB (not a device,
/// a folder or a pipe that never ends) holding a PEM certificate, said plainly otherwise.
pub fn read_trusted_cert(path: &std::path::Path) -> Result<Vec<u8>, crate::values::ValueError> {
    use rustls::pki_types::pem::PemObject;
    let text = crate::files::read_regular(path, TRUSTED_CERT_LIMIT).map_err(|e| {
        crate::values::ValueError(format!(
            "{e}: give the server's certificate as a PEM file (-----BEGIN CERTIFICATE-----)"
        ))
    })?;
    let bytes = text.into_bytes();
    rustls::pki_types::CertificateDer::from_pem_slice(&bytes).map_err(|_| {
        crate::values::ValueError(format!(
            "{} holds no PEM certificate: give the server's certificate as a PEM file (-----BEGIN CERTIFICATE-----)",
            crate::redact::echo(&path.display().to_string(), 300)
        ))
    })?;
    Ok(bytes)
}

/// Verifies a SCIM endpoint.
pub async fn verify(target: &ScimTarget, opts: &VerifyOptions) -> ScimReport {
    let started = Instant::now();
    let timeout = opts.timeout.unwrap_or(Duration::from_secs(20));
    let (base, aad_opt_in_url) = split_url(&target.url);
    let mut checks = vec![];

    // https
    let parsed = url::Url::parse(&base);
    let (scheme, host) = match &parsed {
        Ok(u) => (
            u.scheme().to_string(),
            u.host_str().unwrap_or_default().to_string(),
        ),
        Err(e) => {
            let c = check(
                "https",
                "The URL is valid and uses https",
                ScimStatus::Fail,
                format!("'{}' is not a URL: {e}", target.url),
                "Entra refuses the tenant URL",
                "RFC 7644 §7.1",
                Some("Enter the full SCIM base URL, e.g. https://scim.example.com/scim/v2"),
                vec![],
            );
            return finish(target, base, vec![c], false, started, false);
        }
    };
    let loopback = matches!(host.as_str(), "127.0.0.1" | "localhost" | "[::1]");
    checks.push(match (scheme.as_str(), loopback) {
        ("https", _) => check("https", "The URL uses https", ScimStatus::Pass, "https", "", "RFC 7644 §7.1", None, vec![]),
        ("http", true) => check("https", "The URL uses https", ScimStatus::Warn, "Plain http on this computer: fine for a local test server, but Entra only calls https endpoints.", "Entra refuses http tenant URLs", "RFC 7644 §7.1", Some("Put the endpoint behind https with a certificate from a public CA before entering it in Entra."), vec![]),
        _ => {
            // Nothing is sent: a token over plain http can be read by anyone on the way.
            checks.push(check("https", "The URL uses https", ScimStatus::Fail, format!("The URL uses {scheme}://, so nothing was sent to it: a token over plain http can be read on the way. Entra sends tokens only over https (TLS 1.2)."), "Entra refuses the tenant URL", "RFC 7644 §7.1", Some("Use the provider's https SCIM URL."), vec![]));
            return finish(target, base, checks, false, started, false);
        }
    });
    if is_private_address(&base) {
        checks.push(check("entra_can_reach", "Entra can reach the address", ScimStatus::Warn, format!("{host} is on this computer or a private network."), "Entra's provisioning service runs in Microsoft's cloud and cannot connect to it: fine for a local test, but Test Connection fails from a real tenant", "", Some("Enter the provider's public https URL in Entra."), vec![]));
    }

    // tls: the chain must be valid without help; a certificate the admin trusts only passes with a warning.
    let strict = match build_client(None, timeout, &opts.resolve) {
        Ok(c) => c,
        Err(e) => {
            checks.push(check(
                "tls",
                "The TLS certificate is valid",
                ScimStatus::Fail,
                e.to_string(),
                "",
                "",
                None,
                vec![],
            ));
            return finish(target, base, checks, aad_opt_in_url, started, true);
        }
    };
    let mut client = strict.clone();
    // reachable: one request without credentials before any token is sent (for https it also
    // shows whether the certificate is trusted).
    let probe = |c: reqwest::Client| {
        let http = Http::new(c, &base);
        async move {
            http.call(
                reqwest::Method::GET,
                "/ServiceProviderConfig",
                None,
                Cred::None,
            )
            .await
            .0
        }
    };
    let x = probe(strict.clone()).await;
    let tls_failed = scheme == "https" && x.error.as_deref().is_some_and(looks_like_tls_error);
    if x.error.is_some() && !tls_failed {
        checks.push(unreachable(&x, &u_host_port(&parsed), timeout));
        return finish(target, base, checks, false, started, false);
    }
    if scheme == "https" {
        if tls_failed {
            match &target.trusted_cert {
                Some(pem) => match build_client(Some(pem), timeout, &opts.resolve) {
                    Ok(c) => {
                        // The certificate trusted for the check must be the one that makes the
                        // handshake work: a wrong or expired one fails here, not at /Users.
                        let again = probe(c.clone()).await;
                        if again.error.as_deref().is_some_and(looks_like_tls_error) {
                            let d = format!(
                                "{} — even with the certificate you trusted: it is not the server's certificate (or the CA that signed it), or it has expired.",
                                describe(&again)
                            );
                            checks.push(check("tls", "The TLS certificate is valid", ScimStatus::Fail, d, "Test Connection fails: Entra only trusts certificates from public CAs", "RFC 7644 §7.1", Some("Trust the certificate the server presents now (--trust-cert with its PEM file), or renew the server's certificate."), vec![x, again]));
                            return finish(target, base, checks, aad_opt_in_url, started, true);
                        }
                        checks.push(check("tls", "The TLS certificate is valid", ScimStatus::Warn, "The certificate does not chain to a public CA; it is accepted only because you trusted it for this check.", "Entra refuses certificates that do not chain to a public CA: Test Connection fails", "RFC 7644 §7.1", Some("Install a certificate from a public CA before entering the URL in Entra."), vec![x]));
                        client = c;
                    }
                    Err(e) => {
                        checks.push(check(
                            "tls",
                            "The TLS certificate is valid",
                            ScimStatus::Fail,
                            e.to_string(),
                            "",
                            "",
                            None,
                            vec![x],
                        ));
                        return finish(target, base, checks, aad_opt_in_url, started, true);
                    }
                },
                None => {
                    let d = format!(
                        "{} — the certificate is self-signed or not from a trusted CA.",
                        describe(&x)
                    );
                    checks.push(check("tls", "The TLS certificate is valid", ScimStatus::Fail, d, "Test Connection fails: Entra only trusts certificates from public CAs", "RFC 7644 §7.1", Some("Use a certificate from a public CA. To test a server you run yourself, trust its certificate explicitly (--trust-cert)."), vec![x]));
                    return finish(target, base, checks, aad_opt_in_url, started, true);
                }
            }
        } else {
            checks.push(check(
                "tls",
                "The TLS certificate is valid",
                ScimStatus::Pass,
                "The certificate chains to a trusted CA.",
                "",
                "RFC 7644 §7.1",
                None,
                vec![x],
            ));
        }
    } else {
        checks.push(skipped(
            "tls",
            "The TLS certificate is valid",
            "Plain http: no certificate to check.",
        ));
    }

    let http = Http::new(client, &base);
    let auth = &target.auth;
    let probe_ok = probes::read_only(&http, auth, &mut checks).await;

    let mut aad_opt = false;
    if opts.write_tests {
        if probe_ok {
            let (w, flag) = write_tests(&http, auth, aad_opt_in_url).await;
            checks.extend(w);
            aad_opt = flag;
        } else {
            for (id, title) in WRITE_CHECKS {
                checks.push(skipped(
                    id,
                    title,
                    "The Test Connection probe failed, so writes were not attempted.",
                ));
            }
        }
    }
    if let ScimAuth::Basic { .. } = auth {
        checks.push(check("bearer_token", "Entra can authenticate", ScimStatus::Fail, "The endpoint was checked with HTTP Basic credentials.", "Entra's non-gallery provisioning only sends a bearer token (Secret Token): it cannot use a user name and password", "RFC 7644 §2", Some("Ask the provider for a long-lived bearer token."), vec![]));
    }
    if aad_opt_in_url && !opts.write_tests {
        checks.push(check("aadopt_untested", "The aadOptscim062020 formats were tried", ScimStatus::Warn, "The URL carries ?aadOptscim062020, so Entra will send its RFC-style PATCH requests, but the write checks did not run to try them on this server.", "If the server does not accept them, updates, disables and member removals fail", "RFC 7644 §3.5.2", Some("Run the check again with the write checks on."), vec![]));
    }
    finish(
        target,
        base,
        checks,
        aad_opt_in_url || aad_opt,
        started,
        true,
    )
}

/// An address only this computer or its private network can reach (loopback, private and
/// link-local IPs, `localhost`, `.local`): Entra's provisioning service, in Microsoft's cloud,
/// cannot connect to it.
pub fn is_private_address(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    match u.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost") || d.ends_with(".local")
        }
        Some(url::Host::Ipv4(ip)) => {
            ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
        }
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || (ip.segments()[0] & 0xfe00) == 0xfc00
                || (ip.segments()[0] & 0xffc0) == 0xfe80
        }
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_tenant_url() {
        assert_eq!(
            split_url("https://x.example/scim/v2/?aadOptscim062020"),
            ("https://x.example/scim/v2".to_string(), true)
        );
        assert_eq!(
            split_url("https://x.example/scim/v2"),
            ("https://x.example/scim/v2".to_string(), false)
        );
        assert_eq!(
            client::urlencode("userName eq \"a b\""),
            "userName%20eq%20%22a%20b%22"
        );
    }
}
