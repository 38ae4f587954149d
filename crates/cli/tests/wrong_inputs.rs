//! Several hundred wrong inputs across every subcommand of `entra-setup` — flags, values, the
//! files and folders it reads, its environment — each refused before the command acts: the
//! exit code, a message that names the flag, key, file or value and says what to do, nothing
//! written, and no control character echoed back. Nothing here reaches a tenant: a wrong input
//! that slipped through would meet an authority nobody listens on and fail the case with exit 3.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One wrong input: its family (for the count), the arguments, extra environment, the exit
/// code expected and what the message must contain.
struct Case {
    family: &'static str,
    args: Vec<String>,
    env: Vec<(String, String)>,
    code: i32,
    says: Vec<String>,
}

/// Where each subcommand points when it would sign in: a port nobody listens on.
const NOWHERE: &str = "http://127.0.0.1:9";

/// A subcommand and the arguments that make it valid (a provider and its inputs).
fn base(cmd: &str) -> Vec<String> {
    let v: Vec<&str> = match cmd {
        "plan" | "apply" => vec![
            cmd,
            "--provider",
            "oidc",
            "--input",
            "name=Wiki",
            "--input",
            "redirect_uris=https://wiki.example.com/cb",
        ],
        "undo" | "retire-certificates" => {
            vec![cmd, "--provider", "cloudflare", "--input", "team=acme"]
        }
        "retire-secrets" => vec![
            cmd,
            "--provider",
            "cloudflare",
            "--input",
            "team=acme",
            "--keep",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
        ],
        "activate-certificate" => vec![
            cmd,
            "--provider",
            "saml",
            "--input",
            "name=Files",
            "--input",
            "entity_id=https://files.example.com/saml/metadata",
            "--input",
            "reply_url=https://files.example.com/saml/acs",
            "--thumbprint",
            "4F1A0B6C229D3E7180ABCDEF0123456789ABCDEF",
        ],
        "status" => vec![cmd],
        "providers" => vec![cmd],
        other => panic!("no base for {other}"),
    };
    v.into_iter().map(String::from).collect()
}

/// The subcommands that sign in (they take --tenant, --cloud, --data-dir, …).
const SIGNING_IN: [&str; 7] = [
    "plan",
    "apply",
    "undo",
    "retire-secrets",
    "activate-certificate",
    "retire-certificates",
    "status",
];

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_string()).collect()
}

fn with(mut args: Vec<String>, more: &[&str]) -> Vec<String> {
    args.extend(more.iter().map(|x| (*x).to_string()));
    args
}

fn case(family: &'static str, args: Vec<String>, says: &[&str]) -> Case {
    Case {
        family,
        args,
        env: vec![],
        code: 2,
        says: s(says),
    }
}

/// Files and folders the cases read, made once.
struct Fixture {
    root: PathBuf,
    token: String,
    empty: String,
    big: String,
    folder: String,
    a_file: String,
    missing: String,
    fifo: Option<String>,
    link_to_folder: Option<String>,
    fifo_profiles: Option<String>,
}

fn fixture() -> Fixture {
    let root = std::env::temp_dir().join(format!("entra-setup-wrong-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir(&root).unwrap();
    let p = |name: &str| root.join(name).to_str().unwrap().to_string();
    std::fs::write(root.join("token"), "t0k3n-for-the-test-0123456789").unwrap();
    std::fs::write(root.join("empty"), "").unwrap();
    std::fs::write(root.join("big"), "x".repeat(100 * 1024)).unwrap();
    std::fs::create_dir(root.join("folder")).unwrap();
    std::fs::write(root.join("a-file"), "not a folder").unwrap();
    let (fifo, link_to_folder, fifo_profiles) = if cfg!(unix) {
        let fifo = root.join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success());
        let profiles = root.join("profiles-with-a-fifo");
        std::fs::create_dir(&profiles).unwrap();
        let in_profiles = std::process::Command::new("mkfifo")
            .arg(profiles.join("acme.toml"))
            .status()
            .is_ok_and(|s| s.success());
        #[cfg(unix)]
        std::os::unix::fs::symlink(root.join("folder"), root.join("link")).unwrap();
        (
            made.then(|| p("fifo")),
            Some(p("link")),
            in_profiles.then(|| p("profiles-with-a-fifo")),
        )
    } else {
        (None, None, None)
    };
    Fixture {
        token: p("token"),
        empty: p("empty"),
        big: p("big"),
        folder: p("folder"),
        a_file: p("a-file"),
        missing: p("missing"),
        fifo,
        link_to_folder,
        fifo_profiles,
        root,
    }
}

fn numbers(out: &mut Vec<Case>) {
    let waits = [
        "18446744073709551615",
        "-1",
        "86401",
        "1e3",
        "",
        " ",
        "0x10",
        "NaN",
        "1.5",
        "９",
        "5s",
        "\u{1b}[2J5",
    ];
    for flag in ["--wait-consent", "--wait-for-consent"] {
        for v in waits {
            out.push(case("number", with(base("apply"), &[flag, v]), &[flag]));
        }
    }
    for cmd in ["plan", "apply"] {
        for v in [
            "0",
            "731",
            "-5",
            "99999999999",
            "abc",
            "",
            "1.5",
            "\u{9b}31m30",
        ] {
            out.push(case(
                "number",
                with(base(cmd), &["--secret-days", v]),
                &["--secret-days"],
            ));
        }
    }
    for v in ["-1", "3651", "abc", "", "99999999999999999999", "30d"] {
        out.push(case(
            "number",
            with(base("status"), &["--warn-days", v]),
            &["--warn-days"],
        ));
    }
    for cmd in ["plan", "apply"] {
        for (v, says) in [
            ("2027-1-31", "YYYY-MM-DD"),
            ("31/01/2027", "YYYY-MM-DD"),
            ("2027-02-30", "YYYY-MM-DD"),
            ("2020-01-01", "not in the future"),
            ("2207-01-01", "10 years"),
            ("tomorrow", "YYYY-MM-DD"),
            ("", "YYYY-MM-DD"),
            ("2027-01-31T00:00", "YYYY-MM-DD"),
            ("\u{1b}[2J2027-01-31", "YYYY-MM-DD"),
        ] {
            out.push(case(
                "number",
                s(&[
                    cmd,
                    "--provider",
                    "scim",
                    "--input",
                    "service=Files",
                    "--scim-url",
                    "https://scim.example.com/v2",
                    "--sync-all",
                    "--scim-token-expires",
                    v,
                ]),
                &["--scim-token-expires", says],
            ));
        }
    }
}

fn files(out: &mut Vec<Case>, f: &Fixture) {
    // A folder of profiles that is not one.
    let mut bad_dirs: Vec<(&str, &str)> =
        vec![(&f.missing, "does not exist"), (&f.a_file, "not a folder")];
    if cfg!(unix) {
        bad_dirs.push(("/dev/null", "not a folder"));
    }
    for (dir, says) in &bad_dirs {
        for cmd in SIGNING_IN.iter().chain(&["providers"]) {
            out.push(case(
                "file",
                with(base(cmd), &["--providers-dir", dir]),
                &["--providers-dir", says],
            ));
        }
        for cmd in ["providers", "plan", "status"] {
            let mut c = case("environment", base(cmd), &["--providers-dir", says]);
            c.env
                .push(("ENTRA_SETUP_PROVIDERS_DIR".into(), (*dir).to_string()));
            out.push(c);
        }
    }
    // A FIFO among the profiles: refused, never read (it would block every command).
    if let Some(dir) = &f.fifo_profiles {
        for cmd in ["providers", "plan", "status"] {
            out.push(case(
                "file",
                with(base(cmd), &["--providers-dir", dir]),
                &["acme.toml", "not a regular file"],
            ));
        }
    }
    // Files holding secrets, certificates and metadata.
    let mut bad_files: Vec<(String, &str)> = vec![
        (f.missing.clone(), "missing"),
        (f.folder.clone(), "not a regular file"),
        (f.empty.clone(), "empty"),
        (f.big.clone(), "larger than"),
    ];
    if cfg!(unix) {
        bad_files.push(("/dev/zero".into(), "not a regular file"));
    }
    if let Some(fifo) = &f.fifo {
        bad_files.push((fifo.clone(), "not a regular file"));
    }
    if let Some(link) = &f.link_to_folder {
        bad_files.push((link.clone(), "not a regular file"));
    }
    for (file, says) in &bad_files {
        let shown = Path::new(file).file_name().unwrap().to_str().unwrap();
        let says_file = if file.starts_with("/dev/") {
            file.as_str()
        } else {
            shown
        };
        out.push(case(
            "file",
            s(&[
                "verify-scim",
                "--url",
                "https://scim.example.com/v2",
                "--token-file",
                file,
            ]),
            &[says_file, says],
        ));
        out.push(case(
            "file",
            s(&[
                "verify-scim",
                "--url",
                "https://scim.example.com/v2",
                "--basic-user",
                "admin",
                "--basic-password-file",
                file,
            ]),
            &[says_file],
        ));
        out.push(case(
            "file",
            s(&[
                "verify-scim",
                "--url",
                "https://scim.example.com/v2",
                "--token-file",
                &f.token,
                "--trust-cert",
                file,
            ]),
            &[says_file],
        ));
        for cmd in ["plan", "apply"] {
            out.push(case(
                "file",
                s(&[
                    cmd,
                    "--provider",
                    "scim",
                    "--input",
                    "service=Files",
                    "--scim-url",
                    "https://scim.example.com/v2",
                    "--scim-token-file",
                    file,
                    "--sync-all",
                ]),
                &[says_file],
            ));
        }
        out.push(case(
            "file",
            s(&[
                "apply",
                "--provider",
                "cloudflare",
                "--input",
                "team=acme",
                "--push",
                "--push-input",
                "account_id=023e105f4ecef8ad9ca31a8372d0c353",
                "--push-token-file",
                file,
            ]),
            &[says_file],
        ));
        out.push(case(
            "file",
            s(&[
                "plan",
                "--provider",
                "saml",
                "--input",
                "name=Files",
                "--sp-metadata",
                file,
            ]),
            &["--sp-metadata"],
        ));
    }
    // Folders the command writes to that are files.
    for cmd in SIGNING_IN {
        out.push(case(
            "file",
            with(base(cmd), &["--data-dir", &f.a_file]),
            &["--data-dir", "not a folder"],
        ));
    }
    out.push(case(
        "file",
        with(base("apply"), &["--output-dir", &f.a_file]),
        &["--output-dir", "not a folder"],
    ));
}

fn conflicts(out: &mut Vec<Case>) {
    for cmd in SIGNING_IN {
        for cloud in ["global", "usgov", "usgovdod", "china"] {
            // The offline tail adds --authority and --graph: with --cloud, one would be ignored.
            out.push(case(
                "conflict",
                with(base(cmd), &["--cloud", cloud]),
                &["--cloud", "cannot be used with"],
            ));
        }
    }
    let others: [(&str, &[&str]); 5] = [
        (
            "saml",
            &[
                "--input",
                "name=Files",
                "--input",
                "entity_id=https://files.example.com/saml/metadata",
                "--input",
                "reply_url=https://files.example.com/saml/acs",
            ],
        ),
        (
            "scim",
            &[
                "--input",
                "service=Files",
                "--scim-url",
                "https://scim.example.com/v2",
                "--sync-all",
            ],
        ),
        ("twingate", &["--input", "network=acme", "--sync-all"]),
        ("firezone", &["--input", "account=acme", "--sync-all"]),
        (
            "file-transfer",
            &[
                "--input",
                "subdomain=acme",
                "--input",
                "entity_id=https://acme.files.example.com/saml/metadata",
                "--input",
                "reply_url=https://acme.files.example.com/saml/acs",
            ],
        ),
    ];
    for (provider, inputs) in others {
        for cmd in ["plan", "apply"] {
            for flag in [&["--rotate-secret"][..], &["--secret-days", "30"][..]] {
                let mut args = s(&[cmd, "--provider", provider]);
                args.extend(s(inputs));
                args.extend(s(flag));
                out.push(case("conflict", args, &[flag[0], "Leave"]));
            }
        }
    }
    for (provider, inputs) in [
        (
            "oidc",
            &[
                "--input",
                "name=Wiki",
                "--input",
                "redirect_uris=https://wiki.example.com/cb",
            ][..],
        ),
        ("cloudflare", &["--input", "team=acme"][..]),
        (
            "pomerium",
            &[
                "--input",
                "authenticate_url=https://authenticate.example.com",
            ][..],
        ),
    ] {
        for cmd in ["plan", "apply"] {
            let mut args = s(&[cmd, "--provider", provider]);
            args.extend(s(inputs));
            args.push("--rotate-certificate".into());
            out.push(case(
                "conflict",
                args,
                &["--rotate-certificate", "--rotate-secret"],
            ));
        }
    }
    let apply = base("apply");
    for (more, says) in [
        (&["--keep-secret", "--no-keychain"][..], "--keep-secret"),
        (&["--push-input", "account_id=x"][..], "--push"),
        (&["--push-token-file", "x"][..], "--push"),
        (&["--no-start"][..], "--scim-url"),
        (&["--scim-token-file", "x"][..], "--scim-url"),
        (&["--scim-token-expires", "2027-01-31"][..], "--scim-url"),
        (&["--sync-all", "--assign", "Sales"][..], "--sync-all"),
        (
            &["--adopt-keep", "0f8fad5b-d9cb-469f-a165-70867728950e"][..],
            "--adopt",
        ),
        (&["--sync-all"][..], "--sync-all needs --scim-url"),
        (&["--assign", "Sales"][..], "--assign needs --scim-url"),
        (&["--push"][..], "--push-token-file"),
    ] {
        out.push(case("conflict", with(apply.clone(), more), &[says]));
    }
    out.push(case(
        "conflict",
        s(&["verify-scim", "--url", "https://scim.example.com/v2"]),
        &["--token-file"],
    ));
    out.push(case(
        "conflict",
        s(&[
            "verify-scim",
            "--url",
            "https://scim.example.com/v2",
            "--basic-user",
            "admin",
        ]),
        &["--basic-password-file"],
    ));
}

fn empties(out: &mut Vec<Case>) {
    for cmd in SIGNING_IN.iter().filter(|c| **c != "status") {
        let mut args = base(cmd);
        args[2] = String::new();
        out.push(case("empty", args, &["No provider ''", "Known providers"]));
    }
    let plan = s(&["plan", "--provider", "oidc"]);
    for (inputs, says) in [
        (
            &[
                "--input",
                "",
                "--input",
                "redirect_uris=https://wiki.example.com/cb",
            ][..],
            "KEY=VALUE",
        ),
        (
            &[
                "--input",
                "=Wiki",
                "--input",
                "redirect_uris=https://wiki.example.com/cb",
            ][..],
            "no name",
        ),
        (
            &[
                "--input",
                "name",
                "--input",
                "redirect_uris=https://wiki.example.com/cb",
            ][..],
            "KEY=VALUE",
        ),
        (
            &["--input", "name=Wiki", "--input", "redirect_uris=,"][..],
            "redirect_uris",
        ),
        (
            &["--input", "name=Wiki", "--input", "redirect_uris= , ,"][..],
            "redirect_uris",
        ),
        (
            &["--input", "name=Wiki", "--input", "redirect_uris="][..],
            "redirect_uris",
        ),
        (
            &[
                "--input",
                "name=",
                "--input",
                "redirect_uris=https://wiki.example.com/cb",
            ][..],
            "name",
        ),
        (
            &[
                "--input",
                "name=   ",
                "--input",
                "redirect_uris=https://wiki.example.com/cb",
            ][..],
            "name",
        ),
    ] {
        out.push(case("empty", with(plan.clone(), inputs), &[says]));
    }
    for cmd in ["plan", "apply"] {
        for v in ["", " ", "\t"] {
            out.push(case(
                "empty",
                with(base(cmd), &["--assign", v]),
                &["--assign", "empty"],
            ));
        }
    }
    for (cmd, flag, says) in [
        ("retire-secrets", "--keep", "not a secret's key id"),
        ("activate-certificate", "--thumbprint", "SHA-1 thumbprint"),
        ("plan", "--client-id", "not an application (client) ID"),
        ("plan", "--sp-metadata", "--sp-metadata"),
        ("apply", "--push-api", "--push-api"),
        ("plan", "--authority", "--authority"),
    ] {
        let mut args = base(cmd);
        if let Some(i) = args.iter().position(|a| a == flag) {
            args[i + 1] = String::new();
        } else {
            args.extend([flag.to_string(), String::new()]);
        }
        if flag == "--authority" {
            // The offline tail's --authority comes later and would win: say it differently.
            args.extend(["--graph".to_string(), NOWHERE.to_string()]);
        }
        out.push(case("empty", args, &[says]));
    }
    out.push(case(
        "empty",
        s(&["verify-scim", "--url", "", "--token-file", "x"]),
        &["--url"],
    ));
    for cmd in ["plan", "apply"] {
        out.push(case(
            "empty",
            s(&[
                cmd,
                "--provider",
                "scim",
                "--input",
                "service=Files",
                "--scim-url",
                "",
                "--sync-all",
            ]),
            &["--scim-url"],
        ));
    }
}

fn duplicates(out: &mut Vec<Case>) {
    for cmd in ["plan", "apply"] {
        for (a, b) in [
            ("Sales", "Sales"),
            ("Sales", "sales"),
            ("alex@contoso.com", "ALEX@contoso.com"),
            ("Sales", " Sales "),
        ] {
            out.push(case(
                "duplicate",
                with(base(cmd), &["--assign", a, "--assign", b]),
                &["--assign", "given twice"],
            ));
        }
        out.push(case(
            "duplicate",
            with(base(cmd), &["--input", "name=Other"]),
            &["--input name is given twice"],
        ));
    }
    for cmd in SIGNING_IN {
        out.push(case(
            "duplicate",
            with(
                base(cmd),
                &["--tenant", "contoso.com", "--tenant", "fabrikam.com"],
            ),
            &["--tenant", "cannot be used multiple times"],
        ));
    }
    out.push(case(
        "duplicate",
        with(
            base("apply"),
            &[
                "--push",
                "--push-token-file",
                "x",
                "--push-input",
                "account_id=a",
                "--push-input",
                "account_id=b",
            ],
        ),
        &["--push-input account_id is given twice"],
    ));
}

fn redirect_uris(out: &mut Vec<Case>) {
    let bad: [(&str, &str); 25] = [
        ("https://wiki.example.com/cb#frag", "#fragment"),
        ("https://wiki.example.com/cb#", "#fragment"),
        ("https://*.example.com/cb", "wildcard"),
        ("https://wiki.example.com/*", "wildcard"),
        ("https://wiki.example.com:0/cb", "port 0"),
        ("https://wiki.example.com:99999/cb", "port outside"),
        (
            "https://user:pw@wiki.example.com/cb",
            "user name or password",
        ),
        ("https://user@wiki.example.com/cb", "user name or password"),
        ("https://wikі.example.com/cb", "internationalised host name"),
        (
            "https://xn--bcher-kva.example.com/cb",
            "internationalised host name",
        ),
        ("http://wiki.example.com/cb", "plain http"),
        ("http://[::1]:8080/cb", "IPv6"),
        ("https://[2001:db8::1]/cb", "IPv6"),
        ("https://wiki.example.com/cb;x", "';'"),
        ("https://wiki.example.com/c(b)", "'('"),
        ("https://wiki.example.com/cb!", "'!'"),
        ("https://wiki.example.com/c$b", "'$'"),
        ("wiki.example.com/cb", "no scheme"),
        ("ftp://wiki.example.com/cb", "ftp://"),
        ("javascript:alert(1)", "redirect URI"),
        ("https:wiki.example.com/cb", "'//'"),
        ("https://wiki.example.com/c\\b", "backslash"),
        ("https://wiki.example.com/c b", "spaces"),
        ("https://wiki.example.com/\u{1b}[2Jcb", "control character"),
        ("https://", "redirect URI"),
    ];
    let long = format!("https://wiki.example.com/{}", "p".repeat(240));
    let mut all: Vec<(String, &str)> = bad.iter().map(|(u, w)| ((*u).to_string(), *w)).collect();
    all.push((long, "characters long"));
    for (uri, why) in &all {
        out.push(case(
            "redirect-uri",
            s(&[
                "plan",
                "--provider",
                "oidc",
                "--input",
                "name=Wiki",
                "--input",
                &format!("redirect_uris={uri}"),
            ]),
            &["redirect_uris", why, "Entra accepts"],
        ));
        out.push(case(
            "redirect-uri",
            s(&[
                "plan",
                "--provider",
                "oidc",
                "--input",
                "name=Wiki",
                "--input",
                &format!("redirect_uris=https://wiki.example.com/ok,{uri}"),
            ]),
            &["redirect_uris"],
        ));
        out.push(case(
            "redirect-uri",
            s(&[
                "apply",
                "--provider",
                "file-transfer-oauth",
                "--input",
                "subdomain=acme",
                "--input",
                &format!("redirect_uri={uri}"),
            ]),
            &["redirect_uri"],
        ));
        out.push(case(
            "redirect-uri",
            s(&[
                "plan",
                "--provider",
                "saml",
                "--input",
                "name=Files",
                "--input",
                "entity_id=https://files.example.com/saml/metadata",
                "--input",
                &format!("reply_url={uri}"),
            ]),
            &["reply_url"],
        ));
    }
}

fn identifiers(out: &mut Vec<Case>) {
    let not_guids = [
        "not-a-guid",
        "0f8fad5b-d9cb-469f-a165-70867728950",
        "0f8fad5bd9cb469fa16570867728950e",
        "{0f8fad5b-d9cb-469f-a165-70867728950e}",
        "urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e",
        "0f8fad5b-d9cb-469f-a165-70867728950g",
        "0f8fad5b-d9cb-469f-a165-70867728950e/../x",
        "'; DROP",
    ];
    for v in not_guids {
        let mut args = base("retire-secrets");
        let i = args.iter().position(|a| a == "--keep").unwrap();
        args[i + 1] = v.into();
        out.push(case("identifier", args, &["--keep", "GUID"]));
        out.push(case(
            "identifier",
            with(base("plan"), &["--client-id", v]),
            &["--client-id", "GUID"],
        ));
    }
    for v in [
        "4F1A",
        "zz1A0B6C229D3E7180ABCDEF0123456789ABCDEF",
        "4F1A0B6C229D3E7180ABCDEF0123456789ABCDEF00",
        "4F:1A",
        "../../etc",
        "sha1",
    ] {
        let mut args = base("activate-certificate");
        let i = args.iter().position(|a| a == "--thumbprint").unwrap();
        args[i + 1] = v.into();
        out.push(case("identifier", args, &["--thumbprint", "40 hex digits"]));
    }
    for (v, says) in [
        ("contoso", "domain with a dot"),
        ("https://login.microsoftonline.com/contoso.com", "not a URL"),
        ("consumers", "personal Microsoft accounts"),
        ("72f988bf-86f1-41af-91ab-2d7cd011db4", "malformed"),
        ("contoso..com", "empty part"),
        ("-contoso.com", "'-'"),
        ("con toso.com", "--tenant"),
        ("contoso.com/", "--tenant"),
        (&"a".repeat(300), "--tenant"),
        ("contoso.com\u{202e}", "--tenant"),
    ] {
        for cmd in ["plan", "status"] {
            out.push(case(
                "identifier",
                with(base(cmd), &["--tenant", v]),
                &["--tenant", says],
            ));
        }
    }
    for v in ["x", "", "0f8fad5b"] {
        out.push(case(
            "identifier",
            with(base("apply"), &["--adopt", "--adopt-keep", v]),
            &["--adopt-keep"],
        ));
    }
}

fn echoes(out: &mut Vec<Case>) {
    let controls = [
        "\u{1b}[2J",
        "\u{8}\u{8}",
        "\u{7}",
        "\u{9b}31m",
        "\u{202e}",
        "\r",
    ];
    for c in controls {
        let v = format!("a{c}b");
        out.push(case(
            "echo",
            s(&["plan", "--provider", &v, "--input", "x=y"]),
            &["No provider"],
        ));
        out.push(case(
            "echo",
            with(base("plan"), &["--input", &format!("{v}=1")]),
            &["is not an input here"],
        ));
        out.push(case(
            "echo",
            s(&[
                "plan",
                "--provider",
                "cloudflare",
                "--input",
                &format!("team={v}"),
            ]),
            &["team"],
        ));
        out.push(case(
            "echo",
            with(base("plan"), &["--assign", &v]),
            &["--assign"],
        ));
        out.push(case(
            "echo",
            with(base("plan"), &["--tenant", &format!("{v}.com")]),
            &["--tenant"],
        ));
        out.push(case(
            "echo",
            s(&[
                "verify-scim",
                "--url",
                &format!("https://{v}.example.com"),
                "--token-file",
                "x",
            ]),
            &["--url"],
        ));
        out.push(case(
            "echo",
            with(base("plan"), &[&format!("--{v}")]),
            &["unexpected argument"],
        ));
        out.push(case(
            "echo",
            with(
                base("apply"),
                &[
                    "--push",
                    "--push-token-file",
                    "x",
                    "--push-api",
                    &format!("https://{v}"),
                ],
            ),
            &["--push-api"],
        ));
    }
}

fn lengths(out: &mut Vec<Case>) {
    let huge = "a".repeat(120 * 1024);
    let long = "a".repeat(1000);
    for v in [&huge, &long] {
        let says = if v.len() > 65_536 {
            "characters long"
        } else {
            "characters in all"
        };
        out.push(case(
            "length",
            with(base("plan"), &["--assign", v]),
            &[says],
        ));
        out.push(case(
            "length",
            with(base("plan"), &["--tenant", v]),
            &[says],
        ));
        out.push(case(
            "length",
            with(base("plan"), &["--client-id", v]),
            &[says],
        ));
        out.push(case(
            "length",
            s(&["plan", "--provider", v]),
            &["characters"],
        ));
        out.push(case(
            "length",
            with(base("plan"), &["--input", &format!("name={v}")]),
            &["name"],
        ));
        out.push(case(
            "length",
            s(&[
                "verify-scim",
                "--url",
                &format!("https://{v}.example.com"),
                "--token-file",
                "x",
            ]),
            &["--url"],
        ));
    }
}

fn environment(out: &mut Vec<Case>) {
    for (var, v) in [
        ("HTTPS_PROXY", "http://bob:s3cret-pw@:8080"),
        ("HTTPS_PROXY", "ftp://bob:s3cret-pw@proxy.contoso.com:21"),
        ("HTTPS_PROXY", "http://bob:s3cret-pw@proxy.contoso.com:0"),
        ("HTTPS_PROXY", "bob:s3cret-pw@proxy contoso:80"),
        ("HTTPS_PROXY", "http://[::1"),
        ("HTTPS_PROXY", "\u{1b}[2Jhttp://proxy:80"),
        (
            "https_proxy",
            "http://bob:s3cret-pw@proxy.contoso.com:99999",
        ),
        ("HTTP_PROXY", "gopher://proxy.contoso.com:70"),
        ("ALL_PROXY", "http://bob:s3cret-pw@ :80"),
    ] {
        for cmd in ["plan", "status", "undo"] {
            let mut c = case("environment", base(cmd), &[var, "proxy"]);
            c.env.push((var.into(), v.into()));
            out.push(c);
        }
        let mut c = case(
            "environment",
            s(&[
                "verify-scim",
                "--url",
                "https://scim.example.com/v2",
                "--token-file",
                "x",
            ]),
            &[var],
        );
        c.env.push((var.into(), v.into()));
        out.push(c);
    }
    for v in [
        "ftp://api.example.com",
        "api.example.com",
        "https://u:p@api.example.com",
        "http://api.example.com",
    ] {
        let mut c = case(
            "environment",
            with(base("apply"), &["--push", "--push-token-file", "x"]),
            &["--push-api"],
        );
        c.env.push(("ENTRA_SETUP_PUSH_API".into(), v.into()));
        out.push(c);
    }
}

/// What a message must carry besides the names: words that say what to do.
const WHAT_TO_DO: [&str; 22] = [
    "give",
    "use ",
    "leave",
    "set ",
    "type",
    "write",
    "enter",
    "choose",
    "put ",
    "remove",
    "check",
    "--help",
    "fix",
    "shorten",
    "install",
    "trust",
    "copy",
    "paste",
    "known providers",
    "must",
    "needs",
    "name a",
];

fn bidi(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

async fn run(case: Arc<Case>, root: PathBuf) -> Result<(), String> {
    let data = root.join(format!("data-{}", uuid::Uuid::new_v4()));
    let mut args = case.args.clone();
    let signs_in = SIGNING_IN.contains(&args[0].as_str());
    if signs_in {
        if !args.iter().any(|a| a == "--no-keychain") {
            args.push("--no-keychain".into());
        }
        args.extend(
            ["--device-code", "--authority", NOWHERE, "--graph", NOWHERE].map(String::from),
        );
    }
    let out_dir = root.join(format!("out-{}", uuid::Uuid::new_v4()));
    if args[0] == "apply" && !args.iter().any(|a| a == "--output-dir") {
        args.extend(["--output-dir".into(), out_dir.to_str().unwrap().to_string()]);
    }
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_entra-setup"));
    cmd.args(&args)
        .current_dir(&root)
        .env("ENTRA_SETUP_DATA_DIR", &data)
        .env("ENTRA_SETUP_RETRY_MS", "1")
        .stdin(std::process::Stdio::null());
    for v in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "ENTRA_SETUP_PROVIDERS_DIR",
        "ENTRA_SETUP_PUSH_API",
    ] {
        cmd.env_remove(v);
    }
    for (k, v) in &case.env {
        cmd.env(k, v);
    }
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), cmd.output())
        .await
        .map_err(|_| "did not finish in 60 s (a hang)".to_string())?
        .map_err(|e| e.to_string())?;
    let code = output.status.code().unwrap_or(-1);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut problems = vec![];
    if code != case.code {
        problems.push(format!("exit {code}, wanted {}", case.code));
    }
    for want in &case.says {
        if !text.contains(want.as_str()) {
            problems.push(format!("does not say {want:?}"));
        }
    }
    let lower = text.to_lowercase();
    if !WHAT_TO_DO.iter().any(|w| lower.contains(w)) {
        problems.push("does not say what to do".into());
    }
    if let Some(c) = text
        .chars()
        .find(|c| (c.is_control() && *c != '\n' && *c != '\t') || bidi(*c))
    {
        problems.push(format!("echoes control character U+{:04X}", u32::from(c)));
    }
    if text.len() > 8 * 1024 {
        problems.push(format!(
            "prints {} bytes (a value echoed whole?)",
            text.len()
        ));
    }
    if text.contains("s3cret-pw") {
        problems.push("shows the proxy password".into());
    }
    for (what, dir) in [("data folder", &data), ("output folder", &out_dir)] {
        if dir.exists() {
            problems.push(format!("wrote to the {what}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: {:?}\n  {}\n  output: {}",
            case.family,
            case.args
                .iter()
                .map(|a| a.chars().take(120).collect::<String>())
                .collect::<Vec<_>>(),
            problems.join("; "),
            text.chars().take(600).collect::<String>()
        ))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hundreds_of_wrong_inputs_are_refused_before_anything_is_done() {
    let f = fixture();
    let mut cases = vec![];
    numbers(&mut cases);
    files(&mut cases, &f);
    conflicts(&mut cases);
    empties(&mut cases);
    duplicates(&mut cases);
    redirect_uris(&mut cases);
    identifiers(&mut cases);
    echoes(&mut cases);
    lengths(&mut cases);
    environment(&mut cases);
    let mut per_family = std::collections::BTreeMap::<&str, usize>::new();
    for c in &cases {
        *per_family.entry(c.family).or_default() += 1;
    }
    eprintln!("{} wrong inputs: {per_family:?}", cases.len());
    assert!(cases.len() >= 400, "only {} cases", cases.len());
    let limit = Arc::new(tokio::sync::Semaphore::new(6));
    let mut tasks = tokio::task::JoinSet::new();
    for c in cases {
        let (c, root, limit) = (Arc::new(c), f.root.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            run(c, root).await
        });
    }
    let mut failures = vec![];
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r.unwrap() {
            failures.push(e);
        }
    }
    let _ = std::fs::remove_dir_all(&f.root);
    assert!(
        failures.is_empty(),
        "{} of the wrong inputs were not handled:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
