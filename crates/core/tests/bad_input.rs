//! The bad-input corpus (hardening issue, item 12): hostile and malformed inputs to every parser
//! of untrusted data — what the admin types (tenant, cloud URLs, provider inputs, SCIM URL and
//! token), what files hold (provider profiles, journals, SAML metadata), and what the network
//! answers (Graph JSON, SAML responses, requests to the sign-in listener). Each must be refused
//! with a clear message (no panic, no control characters, no debug dump, bounded length), or,
//! for the listener, answered with an error page while the sign-in keeps waiting.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::Mutex;

use entra_setup_core::auth::TenantRef;
use entra_setup_core::cloud::{Cloud, CloudChoice};
use entra_setup_core::endpoint::{self, Http};
use entra_setup_core::provider;
use entra_setup_core::setup::journal::Journal;
use entra_setup_core::setup::sync::ScimToken;
use entra_setup_core::setup::{Intent, ScimIntent};

thread_local! {
    /// Cases tried by the test running on this thread, by parser (each test runs on its own
    /// thread, its async work included).
    static TRIED: std::cell::RefCell<BTreeMap<&'static str, usize>> =
        const { std::cell::RefCell::new(BTreeMap::new()) };
}

/// The least number of cases each parser's corpus holds: a test whose corpus shrinks, or whose
/// cases stop reaching the parser, fails here. Together they are the corpus of at least 300.
const AT_LEAST: &[(&str, usize)] = &[
    ("tenant", 41),
    ("cloud authority", 30),
    ("cloud graph", 30),
    ("endpoint", 30),
    ("scim tenant url", 30),
    ("scim token", 13),
    ("provider input", 41),
    ("provider profile", 37),
    ("output file name", 17),
    ("SP metadata", 17),
    ("SP metadata from the page", 4),
    ("SP metadata source", 5),
    ("journal line", 15),
    ("IdP metadata", 17),
    ("SAML response", 9),
    ("SAML response (base64)", 6),
    ("Graph answer", 16),
    ("Graph answer (list)", 16),
    ("sign-in listener request", 14),
    ("values::redirect_uri", 44),
    ("values::guid", 4),
    ("values::wait_seconds", 7),
    ("values::future_date", 6),
    ("values::principal", 4),
    ("values::proxy", 5),
];

/// Held by each test: when it ends without failing, the parsers it names must each have been
/// given at least their corpus (`AT_LEAST`), and it must have tried no parser it does not name.
struct Covers(&'static [&'static str]);

impl Drop for Covers {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let tried = TRIED.with(|t| t.borrow().clone());
        let named: Vec<&str> = tried.keys().copied().collect();
        let mut expected = self.0.to_vec();
        expected.sort_unstable();
        assert_eq!(named, expected, "the parsers this test tried");
        for parser in self.0 {
            let least = AT_LEAST
                .iter()
                .find(|(p, _)| p == parser)
                .map(|(_, n)| *n)
                .unwrap_or_else(|| panic!("{parser} is not in AT_LEAST"));
            let n = tried.get(parser).copied().unwrap_or(0);
            assert!(
                n >= least,
                "{parser}: {n} cases refused, expected at least {least}"
            );
        }
    }
}

fn counted(parser: &'static str) {
    TRIED.with(|t| *t.borrow_mut().entry(parser).or_default() += 1);
}

/// A refusal an admin can act on: said in words, printable, and not a dump of internals.
fn assert_clear(parser: &'static str, input: &str, message: &str) {
    counted(parser);
    let shown: String = input.chars().take(60).collect();
    assert!(
        message.trim().len() >= 12,
        "{parser}: {shown:?}: message too short: {message:?}"
    );
    assert!(
        message.chars().count() <= 2_000,
        "{parser}: {shown:?}: message of {} characters",
        message.chars().count()
    );
    assert!(
        !message.chars().any(|c| c.is_control() && c != '\n'),
        "{parser}: {shown:?}: control characters in {message:?}"
    );
    for internal in ["panicked", "Error {", "Some(", "called `", "RUST_BACKTRACE"] {
        assert!(
            !message.contains(internal),
            "{parser}: {shown:?}: internals in {message:?}"
        );
    }
}

fn refused<T, E: Display>(parser: &'static str, input: &str, r: Result<T, E>) {
    match r {
        Ok(_) => panic!("{parser}: accepted {input:?}"),
        Err(e) => assert_clear(parser, input, &e.to_string()),
    }
}

/// Hostile twists of a value that was fine: each makes it invalid for a strict parser.
fn twists(good: &str) -> Vec<String> {
    vec![
        format!("\u{1b}[2J\u{1b}[H{good}"),
        format!("{good}\u{0}"),
        format!("{good}\u{7}\r PASS"),
        format!("{good} {good}"),
        format!("{good}\u{202e}moc"),
        format!("{good}\u{feff}"),
        format!("{good}%0d%0aSet-Cookie:x"),
        format!("{good}<script>alert(1)</script>"),
        format!("{}{good}", "a".repeat(5_000)),
        format!("{good}\n{good}"),
        format!("../../{good}"),
        format!("{good}'; DROP TABLE x;--"),
        format!("{good}😀"),
        format!("\"{good}\""),
    ]
}

#[test]
fn tenants_typed_by_the_admin() {
    let _covers = Covers(&["tenant"]);
    let mut cases: Vec<String> = [
        "consumers",
        "https://contoso.com",
        "contoso..com",
        ".contoso.com",
        "contoso.com.",
        "-contoso.com",
        "contoso-.com",
        "contoso",
        "contoso.c",
        "contoso.123",
        "contosо.com",
        "con_toso.com",
        "contoso.com/extra",
        "contoso.com:443",
        "user@",
        "@",
        "a@b@c",
        "72f988bf-86f1-41af-91ab-2d7cd011db4",
        "72f988bf-86f1-41af-91ab-2d7cd011db477",
        "{72f988bf-86f1-41af-91ab}",
        "72f988bf86f141af91ab2d7cd011db4",
        "\u{0}",
        "\\\\server\\share",
        "*.contoso.com",
        "contoso.com?x=1",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    cases.push(format!("{}.com", "a".repeat(64)));
    cases.push(format!("{}.com", "a.".repeat(130)));
    cases.extend(twists("contoso.com"));
    for c in &cases {
        refused("tenant", c, TenantRef::parse(c));
    }
}

fn hostile_urls() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        "   ",
        "login.microsoftonline.com",
        "http://login.example.com",
        "ftp://login.example.com",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "https://",
        "https://user:pw@login.example.com",
        "https://login.example.com:0",
        "https://login.example.com:99999",
        "https://login.example.com/#frag",
        "https://xn--80ak6aa92e.com",
        "https://exa mple.com",
        "https://[::1",
        "https://login.example.com\\@evil.com",
        "//login.example.com",
        "https:login.example.com",
        "data:text/html,<b>x</b>",
        "https://%00.example.com",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    v.push(format!("https://{}.com", "a".repeat(300)));
    v.extend(twists("https://login.example.com").into_iter().filter(|t| {
        t.chars().any(|c| c.is_whitespace() || c.is_control())
            || t.starts_with('.')
            || t.starts_with('"')
            || t.starts_with('\u{1b}')
            || t.starts_with('a')
    }));
    v
}

#[test]
fn cloud_urls_and_endpoints() {
    let _covers = Covers(&["cloud authority", "cloud graph", "endpoint"]);
    for u in hostile_urls() {
        let choice = CloudChoice::Custom {
            authority: u.clone(),
            graph: "https://graph.example.com".into(),
        };
        refused("cloud authority", &u, Cloud::from_choice(&choice));
        let choice = CloudChoice::Custom {
            authority: "https://login.example.com".into(),
            graph: u.clone(),
        };
        refused("cloud graph", &u, Cloud::from_choice(&choice));
        refused("endpoint", &u, endpoint::parse(&u, Http::Loopback, false));
    }
}

#[test]
fn scim_urls_and_tokens() {
    let _covers = Covers(&["scim tenant url", "scim token"]);
    for u in hostile_urls() {
        refused(
            "scim tenant url",
            &u,
            ScimIntent::new(&u, true, None, true, vec![], true).map_err(|errors| {
                errors
                    .iter()
                    .map(|e| format!("{}: {}", e.label, e.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
        );
    }
    let mut tokens: Vec<String> = [
        "",
        "   ",
        "Bearer abc",
        "bearer abc",
        "BEARER   abc",
        "abc def",
        "abc\ndef",
        "abc\tdef",
        "abc\u{a0}def",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    tokens.extend(
        twists("tok3n")
            .into_iter()
            .filter(|t| t.trim().chars().any(char::is_whitespace)),
    );
    for t in &tokens {
        refused("scim token", t, ScimToken::parse(t));
    }
}

#[test]
fn provider_inputs() {
    let _covers = Covers(&["provider input"]);
    let cases: Vec<(&str, &str, Vec<String>)> = vec![
        (
            "cloudflare",
            "team",
            [
                "",
                "acme corp",
                "ACME!",
                "acme.example",
                "-acme",
                "acme-",
                "https://acme.cloudflareaccess.com/x",
            ]
            .iter()
            .map(|s| (*s).to_string())
            .chain(twists("acme"))
            .collect(),
        ),
        (
            "pomerium",
            "authenticate_url",
            hostile_urls().into_iter().take(20).collect(),
        ),
    ];
    for (p, field, values) in cases {
        let provider = provider::find(p).unwrap();
        for v in values {
            let mut raw = BTreeMap::new();
            raw.insert(field.to_string(), v.clone());
            let r = Intent::new(provider.clone(), &raw, None).map_err(|errors| {
                errors
                    .iter()
                    .map(|e| format!("{}: {}", e.label, e.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            });
            refused("provider input", &v, r);
        }
    }
}

#[test]
fn provider_profiles() {
    let _covers = Covers(&["provider profile"]);
    let good = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../providers/cloudflare.toml"),
    )
    .unwrap();
    let mut cases: Vec<String> = vec![
        String::new(),
        "[[".into(),
        "id = ".into(),
        "\u{0}\u{1}\u{2}".into(),
        "id = \"x\"".into(),
        "id = 5\nname = \"x\"".into(),
        good.replace("id = \"cloudflare\"", "id = \"Cloud Flare\""),
        good.replace("id = \"cloudflare\"", "id = \"\""),
        good.replace("id = \"cloudflare\"", "id = \"../../etc\""),
        good.replace("instance_input = \"team\"", "instance_input = \"nope\""),
        good.replace(
            "pattern = '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$'",
            "pattern = '^[a-z'",
        ),
        good.replace("[[inputs]]", "[[inputs]]\n[[inputs]]"),
        good.replace("name = \"Cloudflare One\"", "name = 42"),
        good.replace("link_hosts = [", "link_hosts = [\"http://evil.example\", "),
        good.replace("link_hosts = [", "link_hosts = [\"*\", "),
        format!("{good}\n[unknown_section]\nx = 1\n"),
        format!("{good}\nid = \"again\"\n"),
        good.replacen('[', "{", 1),
        good.replace("id = \"team\"", "id = \"team\"\nid = \"team2\""),
        // A shared profile is code: where it writes, where it sends, what it asks for.
        good.replace(
            "file_name = \"cloudflare-entra-id.tf\"",
            "file_name = \"../../.config/autostart/x.desktop\"",
        ),
        good.replace(
            "file_name = \"cloudflare-entra-id.tf\"",
            "file_name = \"/etc/cron.d/x\"",
        ),
        good.replace(
            "file_name = \"cloudflare-entra-id.tf\"",
            "file_name = \"C:\\\\Users\\\\x\\\\Startup\\\\x.bat\"",
        ),
        good.replace(
            "file_name = \"cloudflare-entra-id.tf\"",
            "file_name = \".bashrc\"",
        ),
        good.replace(
            "file_name = \"cloudflare-entra-id.tf\"",
            "file_name = \"CON.tf\"",
        ),
        good.replace(
            "file_name = \"cloudflare-entra-id.tf\"",
            "file_name = \"x\u{202e}ft.exe\"",
        ),
        good.replace("id = \"terraform\"", "id = \"../terraform\""),
        good.replace(
            "api_base = \"https://api.cloudflare.com/client/v4\"",
            "api_base = \"https://api.cloudflare.com\"",
        )
        .replace(
            "url = \"{api_base}/accounts/{account_id}/access/identity_providers\"\nitems",
            "url = \"{api_base}.evil.example/{account_id}\"\nitems",
        ),
        good.replace(
            "api_base = \"https://api.cloudflare.com/client/v4\"",
            "api_base = \"https://api.cloudflare.com\"",
        )
        .replace(
            "url = \"{api_base}/accounts/{account_id}/access/identity_providers/{id}\"",
            "url = \"{api_base}@evil.example/{id}\"",
        ),
        good.replace(
            "api_base = \"https://api.cloudflare.com/client/v4\"",
            "api_base = \"https://api.cloudflare.com\"",
        )
        .replace(
            "url = \"{api_base}/accounts/{account_id}/access/identity_providers/{id}\"",
            "url = \"{api_base}:8443/{id}\"",
        ),
        good.replace("\"*.cloudflareaccess.com\"", "\"*.github.io\""),
        good.replace("\"*.cloudflareaccess.com\"", "\"*.co.uk\""),
        good.replace("\"*.cloudflareaccess.com\"", "\"com\""),
        good.replace(
            "name = \"GroupMember.Read.All\"",
            "name = \"Application.ReadWrite.All\"",
        ),
    ];
    for cut in [10, 100, 400, 700] {
        let mut at = cut.min(good.len());
        while !good.is_char_boundary(at) {
            at -= 1;
        }
        cases.push(good[..at].to_string());
    }
    for (i, c) in cases.iter().enumerate() {
        let r = provider::Provider::parse(&format!("case{i}.toml"), c);
        refused("provider profile", c, r);
    }
}

#[test]
fn file_names_and_metadata_sources() {
    let _covers = Covers(&[
        "output file name",
        "SP metadata source",
        "SP metadata from the page",
    ]);
    let long = "a".repeat(200);
    for bad in [
        "../x",
        "..",
        "a/b",
        "a\\b",
        "/etc/passwd",
        "C:\\x",
        ".hidden",
        "",
        "x y",
        "nul",
        "COM1.txt",
        "x\u{202e}fdp.exe",
        "x\u{1b}[2J",
        long.as_str(),
        "x:stream",
        "x*",
        "x?",
    ] {
        let r = entra_setup_core::files::inside(std::path::Path::new("/out"), bad);
        refused("output file name", bad, r);
    }
    for bad in [
        "\\\\attacker.example\\share\\md.xml",
        "//attacker.example/share/md.xml",
        "/dev/zero",
        "/proc/self/environ",
        "",
    ] {
        let r = entra_setup_core::saml::MetadataSource::parse(bad);
        refused("SP metadata source", bad, r);
    }
    for bad in ["/tmp/md.xml", "C:\\md.xml", "file:///etc/passwd", "md.xml"] {
        let r = entra_setup_core::saml::MetadataSource::url_only(bad);
        refused("SP metadata from the page", bad, r);
    }
}

#[test]
fn journal_lines() {
    let _covers = Covers(&["journal line"]);
    let dir = support::data_dir("entra-setup-bad-journal");
    let good = r#"{"at":"2026-12-01T10:00:00Z","planId":"p1","event":{"plan":{"changes":1}}}"#;
    let lines: Vec<String> = vec![
        "{".into(),
        "not json".into(),
        "[]".into(),
        "null".into(),
        "42".into(),
        r#"{"at":"yesterday","planId":"p1","event":{"plan":{"changes":1}}}"#.into(),
        r#"{"at":"2026-12-01T10:00:00Z","planId":"p1","event":{"explode":{}}}"#.into(),
        r#"{"at":"2026-12-01T10:00:00Z","planId":1,"event":{"plan":{"changes":1}}}"#.into(),
        r#"{"at":"2026-12-01T10:00:00Z","planId":"p1","event":{"plan":{"changes":-1}}}"#.into(),
        r#"{"at":"2026-12-01T10:00:00Z","planId":"p1","event":{"plan":{"changes":1e99}}}"#.into(),
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
        format!("{good}\u{0}"),
        "\u{feff}{}".into(),
        good.replace("\"p1\"", "\"p1\u{1b}[2J\""),
        good.replace('}', ""),
    ];
    for (i, line) in lines.iter().enumerate() {
        let j = Journal::open(&dir, "t", &format!("case{i}"));
        std::fs::create_dir_all(j.path().parent().unwrap()).unwrap();
        // The damaged line sits between two sound ones, so it is not a torn last line.
        std::fs::write(j.path(), format!("{good}\n{line}\n{good}\n")).unwrap();
        let r = j.entries();
        match &r {
            Err(e) => assert!(e.to_string().contains("line 2"), "{e}"),
            Ok(_) => panic!("journal: accepted {line:?}"),
        }
        refused("journal line", line, r);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn saml_metadata() {
    let _covers = Covers(&["IdP metadata", "SP metadata"]);
    let billion_laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&lol2;"/>"#;
    let xxe = r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&e;"/>"#;
    let md = "urn:oasis:names:tc:SAML:2.0:metadata";
    let cases: Vec<String> = vec![
        String::new(),
        "<".into(),
        "not xml at all".into(),
        "<html><body>Login</body></html>".into(),
        billion_laughs.into(),
        xxe.into(),
        format!(r#"<EntityDescriptor xmlns="{md}"/>"#),
        format!(r#"<EntityDescriptor xmlns="{md}" entityID=""/>"#),
        format!(r#"<EntityDescriptor xmlns="urn:wrong" entityID="https://sp.example.com"/>"#),
        format!(r#"<EntitiesDescriptor xmlns="{md}"></EntitiesDescriptor>"#),
        format!(
            r#"<EntityDescriptor xmlns="{md}" entityID="https://sp.example.com"><SPSSODescriptor/></EntityDescriptor>"#
        ),
        format!(
            r#"<EntityDescriptor xmlns="{md}" entityID="https://sp.example.com"><IDPSSODescriptor><KeyDescriptor><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>!!!not base64!!!</X509Certificate></X509Data></KeyInfo></KeyDescriptor></IDPSSODescriptor></EntityDescriptor>"#
        ),
        format!(
            r#"<EntityDescriptor xmlns="{md}" entityID="https://sp.example.com"><SPSSODescriptor><AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="javascript:alert(1)"/></SPSSODescriptor></EntityDescriptor>"#
        ),
        format!(
            r#"<EntityDescriptor xmlns="{md}" entityID="https://sp.example.com"><SPSSODescriptor><AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="http://evil.example.com/acs"/></SPSSODescriptor></EntityDescriptor>"#
        ),
        format!("{}{}", "<a>".repeat(5_000), "</a>".repeat(5_000)),
        format!(
            r#"<EntityDescriptor xmlns="{md}" entityID="{}"/>"#,
            "x".repeat(100_000)
        ),
        "\u{feff}\u{0}<x/>".into(),
    ];
    for c in &cases {
        refused(
            "IdP metadata",
            c,
            entra_setup_core::saml::parse_idp_metadata(c),
        );
        refused(
            "SP metadata",
            c,
            entra_setup_core::saml::parse_sp_metadata(c),
        );
    }
}

#[test]
fn saml_responses() {
    let _covers = Covers(&["SAML response", "SAML response (base64)"]);
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let cert = rcgen::generate_simple_self_signed(vec!["idp".into()]).unwrap();
    let certs = vec![cert.cert.der().to_vec()];
    let expected = entra_setup_core::saml::Expected {
        request_id: "_req1",
        acs: "http://127.0.0.1:9/acs",
        audience: "https://sp.example.com",
        idp_entity_id: "https://sts.windows.net/t/",
        certificates: &certs,
        now: chrono::Utc::now(),
    };
    let p = "urn:oasis:names:tc:SAML:2.0:protocol";
    let a = "urn:oasis:names:tc:SAML:2.0:assertion";
    let unsigned = format!(
        r#"<samlp:Response xmlns:samlp="{p}" xmlns:saml="{a}" ID="_r" InResponseTo="_req1" Destination="http://127.0.0.1:9/acs"><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status><saml:Assertion ID="_a"><saml:Issuer>https://sts.windows.net/t/</saml:Issuer><saml:Subject><saml:NameID>adele@contoso.com</saml:NameID></saml:Subject></saml:Assertion></samlp:Response>"#
    );
    let xmls: Vec<String> = vec![
        String::new(),
        "<".into(),
        "<html/>".into(),
        unsigned.clone(),
        unsigned.replace("Success", "Requester"),
        unsigned.replace("_req1", "_other"),
        unsigned.replace(
            "<saml:Assertion",
            "<saml:Assertion ID=\"_evil\"><saml:NameID>lee@contoso.com</saml:NameID></saml:Assertion><saml:Assertion",
        ),
        format!(r#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>{unsigned}"#),
        format!("{}{}", "<a>".repeat(5_000), "</a>".repeat(5_000)),
    ];
    for x in &xmls {
        refused(
            "SAML response",
            x,
            entra_setup_core::saml::verify_response(&b64(x), &expected),
        );
    }
    for raw in ["", "!!!!", "%%%", "PHg+", "\u{0}", &"A".repeat(3_000_001)] {
        refused(
            "SAML response (base64)",
            raw,
            entra_setup_core::saml::verify_response(raw, &expected),
        );
    }
}

/// A fake Graph that answers each request with the next hostile body.
async fn hostile_graph(
    answers: Vec<(u16, String)>,
) -> (entra_setup_core::graph::GraphClient, String) {
    use std::sync::Arc;
    let queue = Arc::new(Mutex::new(
        answers
            .into_iter()
            .collect::<std::collections::VecDeque<_>>(),
    ));
    let app = axum::Router::new().fallback(move || {
        let queue = queue.clone();
        async move {
            let (status, body) = queue
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or((500, String::new()));
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/json")],
                body,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let cloud = Cloud::from_choice(&CloudChoice::Custom {
        authority: base.clone(),
        graph: base.clone(),
    })
    .unwrap();
    let tokens = Arc::new(entra_setup_core::auth::TokenSource::new(
        entra_setup_core::http::client(),
        cloud.clone(),
        "client".into(),
        format!("{base}/token"),
        None,
        None,
    ));
    let scopes = tokens.qualify(entra_setup_core::auth::StepScopes::SyncMode.scopes());
    tokens
        .seed(
            &scopes,
            entra_setup_core::SecretString::from("at".to_string()),
            chrono::Utc::now() + chrono::Duration::hours(1),
        )
        .await;
    let graph =
        entra_setup_core::graph::GraphClient::new(entra_setup_core::http::client(), &cloud, tokens)
            .with_retry(support::fast_retry());
    (graph, base)
}

#[tokio::test]
async fn graph_answers() {
    let _covers = Covers(&["Graph answer", "Graph answer (list)"]);
    let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let bodies: Vec<(u16, String)> = vec![
        (200, "not json".into()),
        (200, "<html>proxy login</html>".into()),
        (200, "{".into()),
        (200, deep.clone()),
        (200, "{\"value\": 5}".into()),
        (200, "{\"value\": [1, 2, \"x\"]}".into()),
        (
            200,
            "{\"value\": [], \"@odata.nextLink\": \"https://evil.example.com/v1.0/users\"}".into(),
        ),
        (200, "{\"value\": [], \"@odata.nextLink\": 7}".into()),
        (
            200,
            "{\"value\": [], \"@odata.nextLink\": \"javascript:alert(1)\"}".into(),
        ),
        (
            200,
            format!("{{\"value\": [], \"pad\": \"{}\"}}", "x".repeat(33 << 20)),
        ),
        (
            400,
            "{\"error\": {\"code\": \"Request_BadRequest\", \"message\": \"\\u001b[2Jbad\"}}"
                .into(),
        ),
        (400, "{\"error\": 5}".into()),
        (403, "".into()),
        (403, "<html>Forbidden</html>".into()),
        (404, deep),
        (
            400,
            format!(
                "{{\"error\": {{\"code\": \"x\", \"message\": \"{}\"}}}}",
                "m".repeat(100_000)
            ),
        ),
    ];
    let n = bodies.len();
    // Each answer twice: once to a single read, once to a list.
    let doubled: Vec<(u16, String)> = bodies.iter().flat_map(|b| [b.clone(), b.clone()]).collect();
    let (graph, _) = hostile_graph(doubled).await;
    let s = entra_setup_core::auth::StepScopes::SyncMode;
    for (status, body) in bodies.iter().take(n) {
        let input = format!(
            "HTTP {status}: {}",
            body.chars().take(80).collect::<String>()
        );
        let one = graph
            .get("/users/x")
            .scopes(s)
            .send_json::<entra_setup_core::graph::models::User>()
            .await;
        refused("Graph answer", &input, one);
        let list = graph
            .get("/users")
            .scopes(s)
            .list::<entra_setup_core::graph::models::User>()
            .await;
        refused("Graph answer (list)", &input, list);
    }
}

#[tokio::test]
async fn requests_to_the_sign_in_listener() {
    let _covers = Covers(&["sign-in listener request"]);
    use entra_setup_core::auth::LoopbackListener;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = LoopbackListener::bind("127.0.0.1").await.unwrap();
    listener.expect_state("s1");
    let addr = listener
        .redirect_uri()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let requests: Vec<String> = vec![
        "GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n".into(),
        "GET /?code=x HTTP/1.1\r\nHost: {addr}\r\n\r\n".into(),
        "GET /?code=x&state=wrong HTTP/1.1\r\nHost: {addr}\r\n\r\n".into(),
        "GET /?code=x&state=s1 HTTP/1.1\r\nHost: evil.example.com\r\n\r\n".into(),
        "GET /?code=x&state=s1 HTTP/1.1\r\n\r\n".into(),
        "GET /?state=s1&state=s1&code=a&code=b HTTP/1.1\r\nHost: {addr}\r\n\r\n".into(),
        "GET /?error=access_denied&error_description=%1b%5b2J HTTP/1.1\r\nHost: {addr}\r\n\r\n"
            .into(),
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 5\r\n\r\nab".into(),
        "BREW / HTCPCP/1.0\r\n\r\n".into(),
        "\u{0}\u{1}\u{2}\r\n\r\n".into(),
        format!(
            "GET /{} HTTP/1.1\r\nHost: {{addr}}\r\n\r\n",
            "a".repeat(100_000)
        ),
        "GET /%zz HTTP/1.1\r\nHost: {addr}\r\n\r\n".into(),
        "GET /?code=x&state=s1%00 HTTP/1.1\r\nHost: {addr}\r\n\r\n".into(),
        "GET /favicon.ico HTTP/1.1\r\nHost: {addr}\r\n\r\n".into(),
    ];
    for r in &requests {
        let raw = r.replace("{addr}", &addr);
        let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let _ = conn.write_all(raw.as_bytes()).await;
        let mut answer = Vec::new();
        // Half a request gets no answer at all (the listener waits, then drops it): a second
        // is enough to see that nothing succeeded.
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            conn.read_to_end(&mut answer),
        )
        .await;
        let text = String::from_utf8_lossy(&answer);
        let status_ok = text.starts_with("HTTP/1.1 2");
        assert!(!status_ok, "the listener accepted {raw:?}: {text}");
        counted("sign-in listener request");
    }
    // After all that, the browser's real answer still ends the sign-in.
    let page = reqwest::get(format!("http://{addr}/?code=the-code&state=s1"))
        .await
        .unwrap();
    assert!(page.status().is_success());
    let code = listener
        .wait(
            std::time::Duration::from_secs(5),
            &tokio_util::sync::CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(code, "the-code");
}

/// The corpus is at least 300 cases over every parser of untrusted data, each held by its test.
#[test]
fn the_corpus_is_at_least_three_hundred_cases() {
    let total: usize = AT_LEAST.iter().map(|(_, n)| n).sum();
    assert!(total >= 300, "{total}");
    for parser in [
        "tenant",
        "cloud authority",
        "endpoint",
        "scim token",
        "provider input",
        "provider profile",
        "journal line",
        "IdP metadata",
        "SAML response",
        "Graph answer",
        "sign-in listener request",
        "output file name",
        "SP metadata source",
    ] {
        assert!(AT_LEAST.iter().any(|(p, _)| *p == parser), "{parser}");
    }
}

/// The one check per kind of value (`values`): redirect URIs, ids, waits, dates, names and
/// proxies, each refused with a message that says what to give.
#[test]
fn values_of_each_kind() {
    let _covers = Covers(&[
        "values::redirect_uri",
        "values::guid",
        "values::wait_seconds",
        "values::future_date",
        "values::principal",
        "values::proxy",
    ]);
    use entra_setup_core::values;
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
    let mut uris: Vec<String> = [
        "https://wiki.example.com/cb#frag",
        "https://*.example.com/cb",
        "https://wiki.example.com:0/cb",
        "https://u:p@wiki.example.com/cb",
        "https://wikі.example.com/cb",
        "http://wiki.example.com/cb",
        "http://[::1]/cb",
        "https://wiki.example.com/a,b",
        "javascript:alert(1)",
        "data:text/html,x",
        "file:///etc/passwd",
        "//wiki.example.com/cb",
        "",
    ]
    .map(String::from)
    .to_vec();
    uris.push(format!("https://wiki.example.com/{}", "x".repeat(250)));
    uris.extend(hostile_urls());
    for u in &uris {
        if values::redirect_uri(u).is_ok() {
            continue; // a hostile *endpoint* URL may still be a fine redirect URI
        }
        refused("values::redirect_uri", u, values::redirect_uri(u));
    }
    for n in [
        "18446744073709551615",
        "86401",
        "-1",
        "1e3",
        "",
        "0x1",
        "\u{1b}[2J1",
    ] {
        refused("values::wait_seconds", n, values::wait_seconds(n));
    }
    for d in [
        "2027-1-1",
        "2026-12-07",
        "2037-01-01",
        "2027-02-29",
        "０２０２７-01-01",
        "2027-01-01\u{202e}",
    ] {
        refused("values::future_date", d, values::future_date(d, today));
    }
    for w in ["", " ", "a\u{7}b", &"x".repeat(257)] {
        refused("values::principal", w, values::principal(w));
    }
    for g in [
        "",
        "0f8fad5b",
        "{0f8fad5b-d9cb-469f-a165-70867728950e}",
        "0f8fad5bd9cb469fa16570867728950e",
    ] {
        refused("values::guid", g, values::guid(g, "an object id"));
    }
    for p in [
        "ftp://proxy:21",
        "http://:8080",
        "http://proxy:0",
        "proxy host:80",
        "\u{1b}[2J",
    ] {
        refused("values::proxy", p, values::proxy("HTTPS_PROXY", p));
    }
}
