//! Which links the wizard opens in the system browser: Microsoft's portals, docs and sign-in
//! pages over https, the pages each provider profile names (`docs_url`, `link_hosts`), and the
//! local simulator in demo mode. Anything else is refused, so a compromised page in the webview
//! cannot make the app open arbitrary URLs.

use url::Url;

const ALLOWED_HOSTS: &[&str] = &[
    "portal.azure.com",
    "portal.azure.us",
    "portal.azure.cn",
    "entra.microsoft.com",
    "learn.microsoft.com",
    "microsoft.com",
    "www.microsoft.com",
    "aka.ms",
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.partner.microsoftonline.cn",
    "myapps.microsoft.com",
];

/// Whether `host` is one of `hosts`; an entry `*.example.com` stands for its subdomains.
fn listed(hosts: &[String], host: &str) -> bool {
    hosts.iter().any(|h| match h.strip_prefix("*.") {
        Some(domain) => host.ends_with(&format!(".{domain}")),
        None => h == host,
    })
}

/// Why a link is not opened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("'{raw}' is not a valid link: {why}")]
    Invalid { raw: String, why: String },
    #[error("The wizard only opens Microsoft and provider pages; '{0}' is not one of them.")]
    NotAllowed(String),
}

/// Parses and checks a link the UI asked to open. `shown` are the page hosts of the provider
/// on screen (a custom profile's count only then).
pub fn check_external_link(raw: &str, shown: &[String]) -> Result<Url, LinkError> {
    let url = Url::parse(raw.trim()).map_err(|e| LinkError::Invalid {
        raw: raw.to_string(),
        why: e.to_string(),
    })?;
    let host = url.host_str().unwrap_or_default();
    let loopback = matches!(host, "127.0.0.1" | "localhost");
    match url.scheme() {
        "https"
            if ALLOWED_HOSTS.contains(&host)
                || listed(&crate::provider::link_hosts(), host)
                || listed(shown, host) =>
        {
            Ok(url)
        }
        "http" if loopback => Ok(url),
        "https" if loopback => Ok(url),
        _ => Err(LinkError::NotAllowed(host.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::check_external_link;

    fn check_external_link_any(raw: &str) -> Result<url::Url, super::LinkError> {
        check_external_link(raw, &[])
    }

    #[test]
    fn a_custom_profiles_hosts_count_only_while_it_is_shown() {
        let shown = vec!["console.acme.example".to_string()];
        assert!(check_external_link("https://console.acme.example/x", &shown).is_ok());
        assert!(check_external_link("https://console.acme.example/x", &[]).is_err());
    }

    #[test]
    fn allows_portals_and_the_local_simulator_only() {
        assert!(check_external_link_any("https://portal.azure.com/#view/x").is_ok());
        assert!(check_external_link_any("https://microsoft.com/devicelogin").is_ok());
        assert!(check_external_link_any("http://127.0.0.1:4000/devicelogin").is_ok());
        assert!(check_external_link_any("http://portal.azure.com/").is_err());
        assert!(check_external_link_any("https://evil.example/").is_err());
        assert!(check_external_link_any("file:///etc/passwd").is_err());
    }

    #[test]
    fn provider_pages_come_from_the_profiles() {
        // Cloudflare's profile names its dashboard and its teams' domains; Pomerium's its docs.
        assert!(check_external_link_any("https://dash.cloudflare.com/").is_ok());
        assert!(check_external_link_any("https://acme.cloudflareaccess.com/").is_ok());
        assert!(check_external_link_any(
            "https://www.pomerium.com/docs/integrations/user-identity/azure"
        )
        .is_ok());
        assert!(check_external_link_any("https://cloudflareaccess.com.evil.example/").is_err());
    }
}
