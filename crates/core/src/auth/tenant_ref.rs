//! What the admin types in the "tenant" box: a verified domain, a tenant ID, or nothing.

use std::fmt;

use super::AuthError;

/// A tenant as the sign-in request names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantRef {
    /// Any work or school account (`organizations`).
    Organizations,
    /// A Directory (tenant) ID, lower-case.
    Id(String),
    /// A verified domain, lower-case, e.g. `contoso.com` or `contoso.onmicrosoft.com`.
    Domain(String),
}

impl fmt::Display for TenantRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Organizations => f.write_str("organizations"),
            Self::Id(id) => f.write_str(id),
            Self::Domain(d) => f.write_str(d),
        }
    }
}

fn is_hex_and_dashes(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

pub use crate::values::is_guid;

fn invalid(input: &str, reason: impl Into<String>) -> AuthError {
    AuthError::InvalidTenant {
        input: crate::redact::echo(input, 80),
        reason: crate::redact::printable(&reason.into()),
    }
}

fn check_domain(input: &str, domain: &str) -> Result<(), AuthError> {
    if domain.len() > 253 {
        return Err(invalid(input, "a domain name is at most 253 characters."));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err(invalid(input, "enter a domain with a dot, such as contoso.com or contoso.onmicrosoft.com, or the Directory (tenant) ID."));
    }
    for label in &labels {
        if label.is_empty() {
            return Err(invalid(
                input,
                "the domain has an empty part (two dots in a row, or a dot at the start or end).",
            ));
        }
        if label.len() > 63 {
            return Err(invalid(
                input,
                "each part of a domain is at most 63 characters.",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid(
                input,
                "a part of the domain starts or ends with '-'.",
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(invalid(
                input,
                format!(
                    "a domain cannot contain '{}'. Use letters, digits, '-' and dots only.",
                    c.escape_debug()
                ),
            ));
        }
    }
    let tld = labels.last().copied().unwrap_or_default();
    if tld.len() < 2 || !tld.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(invalid(
            input,
            format!("'{tld}' is not a top-level domain. Check the end of the domain."),
        ));
    }
    Ok(())
}

impl TenantRef {
    /// Parses what the admin typed. An empty box means any work account; an email address is
    /// taken as its domain; `common` is treated as `organizations` (personal accounts cannot
    /// administer a tenant).
    pub fn parse(input: &str) -> Result<Self, AuthError> {
        let raw = input.trim();
        if raw.is_empty() {
            return Ok(Self::Organizations);
        }
        let lower = raw.to_ascii_lowercase();
        match lower.as_str() {
            "organizations" | "common" => return Ok(Self::Organizations),
            "consumers" => {
                return Err(invalid(raw, "'consumers' is for personal Microsoft accounts, which cannot administer a tenant. Enter your organisation's domain or tenant ID."))
            }
            _ => {}
        }
        if lower.contains("://") {
            return Err(invalid(
                raw,
                "enter just the domain (contoso.com) or the Directory (tenant) ID, not a URL.",
            ));
        }
        let unbraced = lower.trim_start_matches('{').trim_end_matches('}');
        if is_hex_and_dashes(unbraced) && (unbraced.contains('-') || unbraced.len() >= 16) {
            if is_guid(unbraced) {
                return Ok(Self::Id(unbraced.to_string()));
            }
            let digits = unbraced.bytes().filter(u8::is_ascii_hexdigit).count();
            return Err(invalid(
                raw,
                format!(
                    "this looks like a Directory (tenant) ID but it is malformed: it has {digits} hexadecimal digits, and an ID has 32 in groups of 8-4-4-4-12 (e.g. 72f988bf-86f1-41af-91ab-2d7cd011db47). Copy it again from the Entra admin center (Overview → Tenant ID)."
                ),
            ));
        }
        let domain = match lower.rsplit_once('@') {
            Some((_, d)) => d,
            None => lower.as_str(),
        };
        check_domain(raw, domain)?;
        Ok(Self::Domain(domain.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Item 10 of the hardening issue: a pasted escape sequence is shown, not obeyed.
    #[test]
    fn what_the_admin_typed_is_echoed_without_control_characters() {
        for typed in [
            "\u{1b}[2J\u{1b}[Hcontoso.com",
            "contoso.com\u{7}\r PASS",
            &format!("{}\u{1b}]0;title\u{7}.com", "a".repeat(300)),
        ] {
            let e = TenantRef::parse(typed).unwrap_err().to_string();
            assert!(!e.chars().any(|c| c.is_control()), "{e:?}");
            assert!(e.chars().count() < 400, "{e}");
        }
    }

    #[test]
    fn accepts_domains_ids_and_empty() {
        assert_eq!(TenantRef::parse("").unwrap(), TenantRef::Organizations);
        assert_eq!(
            TenantRef::parse(" Contoso.com ").unwrap(),
            TenantRef::Domain("contoso.com".into())
        );
        assert_eq!(
            TenantRef::parse("adele@contoso.com").unwrap(),
            TenantRef::Domain("contoso.com".into())
        );
        assert_eq!(
            TenantRef::parse("{72F988BF-86F1-41AF-91AB-2D7CD011DB47}").unwrap(),
            TenantRef::Id("72f988bf-86f1-41af-91ab-2d7cd011db47".into())
        );
        assert_eq!(
            TenantRef::parse("common").unwrap(),
            TenantRef::Organizations
        );
    }

    #[test]
    fn malformed_guid_says_what_is_wrong() {
        let e = TenantRef::parse("72f988bf-86f1-41af-91ab-2d7cd011db4")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("malformed") && e.contains("31 hexadecimal digits"),
            "{e}"
        );
    }

    #[test]
    fn bad_domains_are_explained() {
        for (input, expect) in [
            ("contoso", "with a dot"),
            ("contoso..com", "empty part"),
            ("con toso.com", "cannot contain ' '"),
            ("https://login.microsoftonline.com/contoso.com", "not a URL"),
            ("consumers", "personal Microsoft accounts"),
            ("contoso.c0m", "top-level domain"),
        ] {
            let e = TenantRef::parse(input).unwrap_err().to_string();
            assert!(e.contains(expect), "{input}: {e}");
        }
    }
}
