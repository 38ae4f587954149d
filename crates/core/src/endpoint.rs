//! The one check for every endpoint URL an admin types (a custom authority or Graph root, a
//! provider API, a SCIM tenant URL): what is wrong with it, in words that say what to type.

use url::Url;

/// Where plain http is accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Http {
    /// Only on this computer (127.0.0.1, localhost, [::1]): test servers and the simulator.
    Loopback,
    /// Anywhere: the caller reports plain http itself (the SCIM verifier does).
    Anywhere,
}

/// What is wrong with an endpoint URL, said as what to type instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("it is empty: type the full URL, starting with https://")]
    Empty,
    #[error("'{0}' contains spaces: type the URL without them")]
    Spaces(String),
    #[error("'{0}' has no scheme: write it with https:// in front")]
    NoScheme(String),
    #[error("'{0}' has a port outside 1–65535")]
    BadPort(String),
    #[error(
        "'{url}' is not a valid URL ({why}): type the full URL, e.g. https://host.example.com/path"
    )]
    Invalid { url: String, why: String },
    #[error(
        "'{0}' uses plain http, which is only allowed for 127.0.0.1 or localhost: use https://"
    )]
    PlainHttp(String),
    #[error("'{url}' uses {scheme}://: use https://")]
    Scheme { url: String, scheme: String },
    #[error("'{0}' has no host name")]
    NoHost(String),
    #[error("'{url}' has an internationalised host name ({host}), which can imitate another host: type the plain ASCII host name")]
    Idn { url: String, host: String },
    #[error("'{0}' carries a user name or password: leave them out of the URL")]
    Credentials(String),
    #[error("'{0}' has port 0: use the server's real port")]
    PortZero(String),
    #[error("'{0}' has a #fragment: leave it out")]
    Fragment(String),
    #[error("'{0}' has a ?query: leave it out")]
    Query(String),
    #[error(
        "'{0}' has a host name too long for DNS (a part over 63 characters, or over 253 in all): check the host name"
    )]
    HostTooLong(String),
    #[error("'{0}' contains an invisible control character: type or paste it again")]
    Control(String),
    #[error("'{0}' contains a backslash: URLs use '/'")]
    Backslash(String),
    #[error("'{0}' lacks the '//' after the scheme: write it as https://host")]
    Slashes(String),
}

/// Whether a URL the wizard sends a credential to is safe to send it over: https, or plain
/// http to this computer only (the simulator, a test server).
pub fn secure_transport(u: &Url) -> bool {
    match u.scheme() {
        "https" => true,
        "http" => {
            matches!(
                u.host(),
                Some(url::Host::Ipv4(ip)) if ip.is_loopback()
            ) || matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
                || u.host_str() == Some("localhost")
        }
        _ => false,
    }
}

/// Parses an endpoint URL and refuses what would go wrong later: no scheme, another scheme,
/// plain http off this computer, no host, a user name or password, port 0, a query or
/// fragment (unless `query` is allowed), and internationalised host names, which can imitate
/// another host (`xn--` labels).
pub fn parse(value: &str, http: Http, query: bool) -> Result<Url, EndpointError> {
    let v = value.trim();
    let at = || crate::redact::echo(v, 200);
    if v.is_empty() {
        return Err(EndpointError::Empty);
    }
    if v.chars().any(char::is_whitespace) {
        return Err(EndpointError::Spaces(at()));
    }
    if v.chars().any(char::is_control) {
        return Err(EndpointError::Control(at()));
    }
    if v.contains('\\') {
        return Err(EndpointError::Backslash(at()));
    }
    // `https:host` parses as `https://host`; say what was meant instead of guessing.
    if let Some((scheme, rest)) = v.split_once(':') {
        if matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https")
            && !rest.starts_with("//")
        {
            return Err(EndpointError::Slashes(at()));
        }
    }
    let u = Url::parse(v).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase => EndpointError::NoScheme(at()),
        url::ParseError::InvalidPort => EndpointError::BadPort(at()),
        other => EndpointError::Invalid {
            url: at(),
            why: other.to_string(),
        },
    })?;
    if let Some(url::Host::Domain(d)) = u.host() {
        if d.len() > 253 || d.split('.').any(|label| label.len() > 63) {
            return Err(EndpointError::HostTooLong(at()));
        }
    }
    let loopback = matches!(u.host(), Some(url::Host::Domain("localhost")))
        || matches!(u.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback());
    match u.scheme() {
        "https" => {}
        "http" if loopback || http == Http::Anywhere => {}
        "http" => return Err(EndpointError::PlainHttp(at())),
        other => {
            return Err(EndpointError::Scheme {
                url: at(),
                scheme: crate::redact::echo(other, 40),
            })
        }
    }
    let Some(host) = u.host_str() else {
        return Err(EndpointError::NoHost(at()));
    };
    if host
        .split('.')
        .any(|label| label.to_ascii_lowercase().starts_with("xn--"))
    {
        return Err(EndpointError::Idn {
            url: at(),
            host: crate::redact::echo(host, 200),
        });
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(EndpointError::Credentials(at()));
    }
    if u.port() == Some(0) {
        return Err(EndpointError::PortZero(at()));
    }
    if u.fragment().is_some() {
        return Err(EndpointError::Fragment(at()));
    }
    if u.query().is_some() && !query {
        return Err(EndpointError::Query(at()));
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bad_url_is_told_what_is_wrong() {
        let bad = |v: &str, want: &str| {
            let e = parse(v, Http::Loopback, false).unwrap_err();
            assert!(e.to_string().contains(want), "{v}: {e}");
        };
        bad("login.example.com", "no scheme");
        bad("ftp://login.example.com", "ftp://");
        bad("http://login.example.com", "plain http");
        bad("https://x/?a=1", "?query");
        bad("https://x/#f", "#fragment");
        bad("https://user:pw@x.example", "user name or password");
        bad("https://x.example:99999", "1–65535");
        bad("https://x.example:0", "port 0");
        bad(
            "https://xn--lgin-mcrosoftonline-2xb.com",
            "internationalised",
        );
        bad("https://lоgin.example.com", "internationalised");
        bad("https://a b", "spaces");
        assert!(parse("http://127.0.0.1:8080", Http::Loopback, false).is_ok());
        assert!(parse("http://scim.example.com", Http::Anywhere, false).is_ok());
        assert!(parse(
            "https://x.example/scim?aadOptscim062020",
            Http::Loopback,
            true
        )
        .is_ok());
    }
}
