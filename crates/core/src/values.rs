//! One place per kind of value the admin gives (a CLI flag, an `--input`, a profile field, a
//! form in the desktop app): each function parses and checks one kind and says, in the one
//! message every caller shows, what is wrong and what to give instead. Values are echoed back
//! through [`crate::redact::echo`]: control and bidi characters removed, long ones shortened
//! with their length.
//!
//! Tenants have theirs in [`crate::auth::TenantRef::parse`], endpoint URLs in
//! [`crate::endpoint::parse`], file reads in [`crate::files::read_regular`].

use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use url::Url;

/// What is wrong with a value, said as what to give instead (already printable).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

fn bad(message: impl Into<String>) -> ValueError {
    ValueError(message.into())
}

fn shown(raw: &str) -> String {
    crate::redact::echo(raw, 80)
}

/// The longest name, sign-in name or object ID the admin may give for a user or group: a
/// group's display name is at most 256 characters in Entra, a user principal name 113.
pub const MAX_PRINCIPAL_CHARS: usize = 256;

/// The longest wait for something outside the wizard (a colleague's consent, the vendor's
/// apps): one day.
pub const MAX_WAIT_SECS: u64 = 86_400;

/// How far ahead an expiry date may be: ten years (no provider issues tokens for longer; a
/// date further out is a typo in the year).
pub const MAX_DATE_YEARS: i32 = 10;

/// `8-4-4-4-12` hexadecimal digits, as Entra writes object, application, tenant and key ids.
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// An id Entra gave (object id, key id, application id): exactly `8-4-4-4-12` hex digits.
/// `what` names it in the message ("a secret's key id").
pub fn guid(raw: &str, what: &str) -> Result<String, ValueError> {
    let v = raw.trim();
    if is_guid(v) {
        return Ok(v.to_ascii_lowercase());
    }
    Err(bad(format!(
        "'{}' is not {what}: give a GUID of 32 hexadecimal digits in groups of 8-4-4-4-12, such as 0f8fad5b-d9cb-469f-a165-70867728950e",
        shown(v)
    )))
}

/// A number of seconds to wait: 0 to [`MAX_WAIT_SECS`] (a day). For clap's `value_parser`.
pub fn wait_seconds(raw: &str) -> Result<u64, ValueError> {
    let v = raw.trim();
    match v.parse::<u64>() {
        Ok(n) if n <= MAX_WAIT_SECS => Ok(n),
        Ok(_) => Err(bad(format!(
            "{} seconds is longer than a day: give 0 to {MAX_WAIT_SECS} seconds",
            shown(v)
        ))),
        Err(_) => Err(bad(format!(
            "'{}' is not a number of seconds: give a whole number from 0 to {MAX_WAIT_SECS}",
            shown(v)
        ))),
    }
}

/// A calendar date written `YYYY-MM-DD`, after `today` and at most [`MAX_DATE_YEARS`] ahead.
pub fn future_date(raw: &str, today: NaiveDate) -> Result<NaiveDate, ValueError> {
    let v = raw.trim();
    let well_formed = v.len() == 10
        && v.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let date = well_formed
        .then(|| NaiveDate::parse_from_str(v, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| {
            bad(format!(
                "'{}' is not a date: write it as YYYY-MM-DD, e.g. {}",
                shown(v),
                today + chrono::Days::new(90)
            ))
        })?;
    if date <= today {
        return Err(bad(format!(
            "{date} is not in the future: a token that has expired stops provisioning. Get a new token from the provider, or leave the date out if it never expires"
        )));
    }
    let limit = today
        .with_year(today.year() + MAX_DATE_YEARS)
        .unwrap_or(NaiveDate::MAX);
    if date > limit {
        return Err(bad(format!(
            "{date} is more than {MAX_DATE_YEARS} years ahead: check the year (the latest accepted is {limit})"
        )));
    }
    Ok(date)
}

/// A user (sign-in name or object id) or a group (exact display name or object id): not empty,
/// at most [`MAX_PRINCIPAL_CHARS`] characters, no control characters.
pub fn principal(raw: &str) -> Result<String, ValueError> {
    let v = raw.trim();
    if v.is_empty() {
        return Err(bad(
            "it is empty: give a user's sign-in name (alex@contoso.com), a group's exact name, or an object ID",
        ));
    }
    let n = v.chars().count();
    if n > MAX_PRINCIPAL_CHARS {
        return Err(bad(format!(
            "'{}' is {n} characters long: a sign-in name or group name is at most {MAX_PRINCIPAL_CHARS}",
            shown(v)
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(bad(format!(
            "'{}' contains a control character: type the name again",
            shown(v)
        )));
    }
    Ok(v.to_string())
}

/// Refuses a list that names the same thing twice (ignoring case, as Entra compares names),
/// naming the repeated item.
pub fn distinct<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<(), ValueError> {
    let mut seen = std::collections::BTreeSet::new();
    for item in items {
        if !seen.insert(item.trim().to_lowercase()) {
            return Err(bad(format!(
                "'{}' is given twice: give each once",
                shown(item.trim())
            )));
        }
    }
    Ok(())
}

/// A folder that must already exist and be readable (e.g. a folder of provider profiles).
pub fn existing_folder(path: &Path) -> Result<PathBuf, ValueError> {
    let at = shown(&path.display().to_string());
    let meta = std::fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            bad(format!("{at} does not exist: give a folder that does"))
        } else {
            bad(format!("{at} cannot be read ({e})"))
        }
    })?;
    if !meta.is_dir() {
        return Err(bad(format!(
            "{at} is a file, not a folder: give its folder"
        )));
    }
    std::fs::read_dir(path).map_err(|e| bad(format!("{at} cannot be read ({e})")))?;
    Ok(path.to_path_buf())
}

/// What is wrong with a redirect URI or SAML Reply URL, by the rules Entra and RFC 6749 set.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("redirect URI {why}. {}", ENTRA_ACCEPTS)]
pub struct RedirectUriError {
    pub why: String,
}

/// What Entra accepts as a redirect URI (reference §1 and §12; RFC 6749 §3.1.2).
pub const ENTRA_ACCEPTS: &str = "Entra accepts an absolute https:// URL (http:// only for localhost or 127.0.0.1) of at most 256 characters, with an ASCII host name, and without a #fragment, a * wildcard, a user name or password, or any of ! $ ' ( ) , ;";

/// Entra's limit on one redirect URI.
pub const MAX_REDIRECT_URI_CHARS: usize = 256;

/// The one check of a redirect URI or Reply URL, for profiles, `--input`, metadata and the
/// desktop alike: Entra's rules (https except loopback, at most 256 characters, none of
/// `! $ ' ( ) , ;`, no wildcard, no `[::1]`) and RFC 6749's (absolute, no fragment), plus the
/// endpoint rules (no credentials, port 1–65535, no look-alike internationalised host).
pub fn redirect_uri(raw: &str) -> Result<Url, RedirectUriError> {
    let v = raw.trim();
    let why = |s: String| RedirectUriError { why: s };
    let at = || shown(v);
    let n = v.chars().count();
    if n > MAX_REDIRECT_URI_CHARS {
        return Err(why(format!(
            "'{}' is {n} characters long, over Entra's {MAX_REDIRECT_URI_CHARS}",
            at()
        )));
    }
    if v.contains('*') {
        return Err(why(format!(
            "'{}' has a * wildcard, which Entra does not accept: list each URL in full",
            at()
        )));
    }
    let u = crate::endpoint::parse(v, crate::endpoint::Http::Loopback, true)
        .map_err(|e| why(e.to_string()))?;
    if matches!(u.host(), Some(url::Host::Ipv6(_))) {
        return Err(why(format!(
            "'{}' names an IPv6 address, which Entra does not accept in a redirect URI: use http://127.0.0.1 for this computer, or a host name",
            at()
        )));
    }
    if let Some(c) = v.chars().find(|c| "!$'(),;".contains(*c)) {
        return Err(why(format!(
            "'{}' contains '{c}', which Entra does not accept",
            at()
        )));
    }
    Ok(u)
}

/// A proxy from the environment (`HTTPS_PROXY` and the like): an http, https or socks5 URL (a
/// value without a scheme is http, as curl and reqwest read it) with a host and a port in
/// range. The message names the variable and shows the value with any password masked.
pub fn proxy(var: &str, value: &str) -> Result<Url, ValueError> {
    let v = value.trim();
    let full = if v.contains("://") {
        v.to_string()
    } else {
        format!("http://{v}")
    };
    let masked = || crate::http::mask_proxy(v);
    let fail = |what: &str| {
        bad(format!(
            "the proxy in {var} ({}) {what}: set it to a URL such as http://proxy.contoso.com:8080, or unset it",
            masked()
        ))
    };
    if v.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(fail("contains spaces or control characters"));
    }
    let u = Url::parse(&full).map_err(|e| fail(&format!("is not a URL ({e})")))?;
    if !matches!(u.scheme(), "http" | "https" | "socks5" | "socks5h") {
        return Err(fail(&format!(
            "uses {}://, which is not a proxy scheme (http, https, socks5)",
            crate::redact::echo(u.scheme(), 20)
        )));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(fail("has no host name"));
    }
    if u.port() == Some(0) {
        return Err(fail("has port 0"));
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 7).unwrap_or_default()
    }

    #[test]
    fn redirect_uris_follow_entras_rules_and_say_which_rule() {
        for ok in [
            "https://wiki.example.com/oidc/callback",
            "https://wiki.example.com:8443/cb?tenant=1",
            "http://localhost:8080/cb",
            "http://127.0.0.1/cb",
        ] {
            assert!(redirect_uri(ok).is_ok(), "{ok}");
        }
        for (bad, says) in [
            ("https://a.example.com/cb#frag", "#fragment"),
            ("https://*.example.com/cb", "wildcard"),
            ("https://a.example.com:0/cb", "port 0"),
            ("https://a.example.com:70000/cb", "port outside"),
            ("https://u:p@a.example.com/cb", "user name or password"),
            ("https://exаmple.com/cb", "internationalised host name"),
            ("http://wiki.example.com/cb", "plain http"),
            ("http://[::1]:8080/cb", "IPv6"),
            ("https://a.example.com/cb;x", "contains ';'"),
            ("wiki.example.com/cb", "no scheme"),
            ("ftp://a.example.com/cb", "ftp://"),
            ("", "empty"),
            ("https://a.example.com/\u{1b}[2J", "control character"),
        ] {
            let e = redirect_uri(bad).expect_err(bad).to_string();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(e.contains("Entra accepts"), "{e}");
            assert!(!e.contains('\u{1b}'), "{e:?}");
        }
        let long = format!("https://a.example.com/{}", "p".repeat(240));
        assert!(redirect_uri(&long)
            .unwrap_err()
            .to_string()
            .contains("262 characters long"));
    }

    #[test]
    fn dates_are_strict_and_within_ten_years() {
        assert_eq!(
            future_date("2027-01-31", today()),
            Ok(NaiveDate::from_ymd_opt(2027, 1, 31).unwrap_or_default())
        );
        for (bad, says) in [
            ("2027-1-31", "not a date"),
            ("31/01/2027", "not a date"),
            ("2027-02-30", "not a date"),
            ("+2027-01-31", "not a date"),
            ("2026-12-07", "not in the future"),
            ("1970-01-01", "not in the future"),
            ("2207-01-01", "more than 10 years"),
        ] {
            let e = future_date(bad, today()).expect_err(bad).0;
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn numbers_principals_and_lists_have_ranges() {
        assert_eq!(wait_seconds("600"), Ok(600));
        for bad in ["18446744073709551615", "86401", "-1", "1e3", ""] {
            assert!(wait_seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(
            principal("  alex@contoso.com "),
            Ok("alex@contoso.com".into())
        );
        assert!(principal(&"a".repeat(120_000))
            .unwrap_err()
            .0
            .contains("120000 characters long"));
        assert!(principal("a\u{8}b").is_err());
        assert!(principal(" ").is_err());
        assert!(distinct(["Sales", "sales"])
            .unwrap_err()
            .0
            .contains("twice"));
        assert!(distinct(["Sales", "Support"]).is_ok());
        assert!(guid("not-a-guid", "a secret's key id").is_err());
        assert_eq!(
            guid("0F8FAD5B-D9CB-469F-A165-70867728950E", "an id"),
            Ok("0f8fad5b-d9cb-469f-a165-70867728950e".into())
        );
    }

    #[test]
    fn proxies_are_named_with_the_password_masked() {
        assert!(proxy("HTTPS_PROXY", "proxy.contoso.com:8080").is_ok());
        assert!(proxy("HTTPS_PROXY", "socks5://127.0.0.1:1080").is_ok());
        for bad in [
            "http://user:s3cret@:8080",
            "ftp://user:s3cret@proxy:21",
            "http://user:s3cret@proxy:0",
            "http://user:s3cret@proxy host:80",
        ] {
            let e = proxy("HTTPS_PROXY", bad).expect_err(bad).0;
            assert!(e.contains("HTTPS_PROXY"), "{e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
    }

    #[test]
    fn folders_must_exist() {
        let f = std::env::temp_dir().join(format!("values-{}", uuid::Uuid::new_v4()));
        assert!(existing_folder(&f)
            .unwrap_err()
            .0
            .contains("does not exist"));
        std::fs::write(&f, "x").ok();
        assert!(existing_folder(&f).unwrap_err().0.contains("not a folder"));
        std::fs::remove_file(&f).ok();
        assert!(existing_folder(&std::env::temp_dir()).is_ok());
    }
}
