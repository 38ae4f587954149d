//! Which links the wizard opens in the system browser: Microsoft's portals, docs and sign-in
//! pages over https, and the local simulator in demo mode. Anything else is refused, so a
//! compromised page in the webview cannot make the app open arbitrary URLs.

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
    "developers.cloudflare.com",
    "dash.cloudflare.com",
    "www.pomerium.com",
];

/// Parses and checks a link the UI asked to open.
pub fn check_external_link(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("'{raw}' is not a valid link: {e}"))?;
    let host = url.host_str().unwrap_or_default();
    let loopback = matches!(host, "127.0.0.1" | "localhost");
    match url.scheme() {
        "https" if ALLOWED_HOSTS.contains(&host) || host.ends_with(".cloudflareaccess.com") => {
            Ok(url)
        }
        "http" if loopback => Ok(url),
        "https" if loopback => Ok(url),
        _ => Err(format!(
            "The wizard only opens Microsoft and provider pages; '{host}' is not one of them."
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::check_external_link;

    #[test]
    fn allows_portals_and_the_local_simulator_only() {
        assert!(check_external_link("https://portal.azure.com/#view/x").is_ok());
        assert!(check_external_link("https://microsoft.com/devicelogin").is_ok());
        assert!(check_external_link("http://127.0.0.1:4000/devicelogin").is_ok());
        assert!(check_external_link("http://portal.azure.com/").is_err());
        assert!(check_external_link("https://evil.example/").is_err());
        assert!(check_external_link("file:///etc/passwd").is_err());
    }
}
