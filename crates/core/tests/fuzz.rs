//! Property-based fuzzing of the parsers of untrusted data (hardening issue, item 12), on the
//! stable toolchain with proptest: random and mutated inputs must never panic, and every
//! refusal must be printable (no control characters from the input reach a terminal). The test
//! command runs proptest's default 256 cases per target; docs/SECURITY.md gives the figures of a
//! longer run (`PROPTEST_CASES=5000 cargo test -p entra-setup-core --test fuzz`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use entra_setup_core::auth::TenantRef;
use entra_setup_core::endpoint::{self, Http};
use entra_setup_core::provider::{self, Provider};
use entra_setup_core::setup::journal::Journal;
use entra_setup_core::setup::sync::ScimToken;
use entra_setup_core::values;
use proptest::prelude::*;

fn printable(message: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        !message.chars().any(|c| c.is_control() && c != '\n'),
        "control characters in {message:?}"
    );
    Ok(())
}

/// A valid text with a few bytes replaced, inserted or removed at random places.
fn mutated(good: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec((any::<prop::sample::Index>(), any::<char>(), 0u8..3), 1..8).prop_map(
        move |edits| {
            let mut chars: Vec<char> = good.chars().collect();
            for (at, c, op) in edits {
                if chars.is_empty() {
                    chars.push(c);
                    continue;
                }
                let i = at.index(chars.len());
                match op {
                    0 => chars[i] = c,
                    1 => chars.insert(i, c),
                    _ => {
                        chars.remove(i);
                    }
                }
            }
            chars.into_iter().collect()
        },
    )
}

const IDP_METADATA: &str = r#"<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sts.windows.net/t/"><IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://login.microsoftonline.com/t/saml2"/></IDPSSODescriptor></EntityDescriptor>"#;
const SP_METADATA: &str = r#"<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://files.example.com"><SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://files.example.com/acs" index="0"/></SPSSODescriptor></EntityDescriptor>"#;
const JOURNAL_LINE: &str =
    r#"{"at":"2026-12-01T10:00:00Z","planId":"p1","event":{"plan":{"changes":1}}}"#;

proptest! {
    /// Whatever the one redirect URI check accepts, Entra would: https (http only to
    /// localhost or 127.0.0.1), at most 256 characters, no fragment, wildcard, credentials or
    /// forbidden character; whatever it refuses is said printably.
    #[test]
    fn redirect_uris_accepted_are_ones_entra_takes(s in mutated("https://wiki.example.com:8443/oidc/callback?x=1")) {
        match values::redirect_uri(&s) {
            Ok(u) => {
                let t = s.trim();
                prop_assert!(t.chars().count() <= 256);
                prop_assert!(u.scheme() == "https" || matches!(u.host_str(), Some("localhost" | "127.0.0.1")));
                prop_assert!(u.fragment().is_none() && u.username().is_empty() && u.password().is_none());
                prop_assert!(!t.contains('*') && !t.chars().any(|c| "!$'(),;".contains(c)));
                prop_assert!(u.port() != Some(0));
                prop_assert!(u.host_str().is_some_and(|h| h.is_ascii() && !h.contains("xn--")));
            }
            Err(e) => printable(&e.to_string())?,
        }
    }

    /// Numbers, dates, names and proxies: accepted only inside their documented ranges.
    #[test]
    fn values_stay_in_their_ranges(n in any::<String>(), d in mutated("2027-01-31"), who in any::<String>(), p in mutated("http://user:pw@proxy.contoso.com:8080")) {
        if let Ok(secs) = values::wait_seconds(&n) {
            prop_assert!(secs <= values::MAX_WAIT_SECS);
        } else {
            printable(&values::wait_seconds(&n).unwrap_err().0)?;
        }
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        match values::future_date(&d, today) {
            Ok(date) => prop_assert!(date > today && date <= chrono::NaiveDate::from_ymd_opt(2036, 12, 7).unwrap()),
            Err(e) => printable(&e.0)?,
        }
        match values::principal(&who) {
            Ok(v) => prop_assert!(!v.is_empty() && v.chars().count() <= values::MAX_PRINCIPAL_CHARS && !v.chars().any(char::is_control)),
            Err(e) => printable(&e.0)?,
        }
        if let Err(e) = values::proxy("HTTPS_PROXY", &p) {
            printable(&e.0)?;
            prop_assert!(!e.0.contains(":pw@"), "the password is shown: {}", e.0);
        }
    }

    #[test]
    fn tenant_references(s in any::<String>()) {
        if let Err(e) = TenantRef::parse(&s) {
            printable(&e.to_string())?;
        }
    }

    #[test]
    fn tenant_references_near_valid(s in mutated("adele@contoso.onmicrosoft.com")) {
        if let Err(e) = TenantRef::parse(&s) {
            printable(&e.to_string())?;
        }
    }

    #[test]
    fn endpoint_urls(s in mutated("https://scim.example.com:8443/scim/v2?aadOptscim062020")) {
        for http in [Http::Loopback, Http::Anywhere] {
            if let Err(e) = endpoint::parse(&s, http, true) {
                printable(&e.to_string())?;
            }
        }
    }

    #[test]
    fn scim_tokens(s in any::<String>()) {
        if let Err(e) = ScimToken::parse(&s) {
            printable(&e.to_string())?;
        }
    }

    #[test]
    fn provider_inputs(team in any::<String>(), url in mutated("https://authenticate.corp.example.com")) {
        for (p, field, value) in [("cloudflare", "team", team), ("pomerium", "authenticate_url", url)] {
            let mut raw = BTreeMap::new();
            raw.insert(field.to_string(), value);
            if let Err(errors) = entra_setup_core::setup::Intent::new(provider::find(p).unwrap(), &raw, None) {
                for e in errors {
                    printable(&e.message)?;
                }
            }
        }
    }

    #[test]
    fn provider_profiles(src in mutated(include_str!("../../../providers/pomerium.toml"))) {
        if let Err(e) = Provider::parse("fuzz.toml", &src) {
            let _ = e.to_string();
        }
    }

    #[test]
    fn saml_metadata(idp in mutated(IDP_METADATA), sp in mutated(SP_METADATA), junk in any::<String>()) {
        for x in [&idp, &sp, &junk] {
            if let Err(e) = entra_setup_core::saml::parse_idp_metadata(x) {
                let _ = e.to_string();
            }
            if let Err(e) = entra_setup_core::saml::parse_sp_metadata(x) {
                let _ = e.to_string();
            }
        }
    }

    #[test]
    fn saml_responses(b64 in "[A-Za-z0-9+/=]{0,400}", junk in any::<String>()) {
        let certs: Vec<Vec<u8>> = vec![];
        let expected = entra_setup_core::saml::Expected {
            request_id: "_r",
            acs: "https://sp.example.com/acs",
            audience: "https://sp.example.com",
            idp_entity_id: "https://sts.windows.net/t/",
            certificates: &certs,
            now: chrono::Utc::now(),
        };
        prop_assert!(entra_setup_core::saml::verify_response(&b64, &expected).is_err());
        prop_assert!(entra_setup_core::saml::verify_response(&junk, &expected).is_err());
    }

    #[test]
    fn journal_lines(line in mutated(JOURNAL_LINE)) {
        let dir = std::env::temp_dir().join(format!("entra-setup-fuzz-{}", uuid::Uuid::new_v4()));
        let j = Journal::open(&dir, "t", "fuzz");
        std::fs::create_dir_all(j.path().parent().unwrap()).unwrap();
        std::fs::write(j.path(), format!("{line}\n{JOURNAL_LINE}\n")).unwrap();
        if let Err(e) = j.entries() {
            printable(&e.to_string())?;
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn printable_text_has_no_control_characters(s in any::<String>()) {
        printable(&entra_setup_core::redact::printable(&s).replace('\n', " "))?;
        printable(&entra_setup_core::redact::echo(&s, 80))?;
    }
}
