//! `entra-setup`: the wizard's plan / apply / undo on the command line, over the same core as
//! the desktop app. For scripting, CI and headless tests.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use entra_setup_core::auth::{BrowserOpener, Method, SignInEvent, StepScopes, SystemBrowser};
use entra_setup_core::checks::{self, CheckResult, SecretRetry, Status};
use entra_setup_core::cloud::CloudChoice;
use entra_setup_core::keychain::{self, MemoryStore, OsKeychain, SecretStore};
use entra_setup_core::outputs;
use entra_setup_core::people;
use entra_setup_core::provider::{self, PermissionKind};
use entra_setup_core::provisioning;
use entra_setup_core::session::{self, AccountRecord, Context, Session, SignInRequest};
use entra_setup_core::setup::apply::ScimApplied;
use entra_setup_core::setup::apply::{ApplyEvent, ApplyOptions};
use entra_setup_core::setup::flow::{self, Prepared, SetupError};
use entra_setup_core::setup::journal::{self, Journal};
use entra_setup_core::setup::plan::Change;
use entra_setup_core::setup::{found, secrets, status, undo, Intent, ScimIntent};
use entra_setup_core::{ExposeSecret, SecretString};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const EXIT_CODES: &str = "\
Exit codes:
  0  success (or nothing to change)
  1  unexpected error
  2  bad arguments or inputs (the message says what to fix)
  3  sign-in failed or was cancelled
  4  Microsoft Graph refused a call, or the apply stopped part-way (run apply again to resume)
  5  admin consent is still needed: the link to send is printed
  6  applied, but a live connection test failed
  7  confirmation needed: run again with --yes
  8  verify-scim: the SCIM endpoint is not ready for Entra (the report says why)
  9  status: a setup needs attention (a secret or SCIM token expiring, drift, a quarantined job)";

#[derive(Parser)]
#[command(name = "entra-setup", version, about = "Connect a Microsoft Entra ID tenant to a service provider: plan, apply, check, rotate secrets, undo.", after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// A folder of your own provider profiles (*.toml), read besides the built-in ones and the
    /// `providers` folder of the app's configuration directory.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "ENTRA_SETUP_PROVIDERS_DIR"
    )]
    providers_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the service providers and the inputs each needs.
    Providers,
    /// Show what apply would change, without changing anything.
    Plan(Target),
    /// Make the changes, hand the provider what it needs, and test the connection.
    Apply(ApplyArgs),
    /// Remove what the wizard created for this provider (from its journal).
    Undo(UndoArgs),
    /// After `apply --rotate-secret` and handing the new secret over: remove the wizard's other
    /// client secrets on the app, keeping --keep (secrets the wizard did not make stay).
    RetireSecrets(RetireArgs),
    /// Check a SCIM endpoint the way Entra's provisioning service will use it.
    VerifyScim(VerifyScimArgs),
    /// Every setup done before in the tenant: secret expiry, drift and provisioning (read-only).
    Status(StatusArgs),
}

#[derive(Args)]
struct StatusArgs {
    #[command(flatten)]
    conn: Conn,
    /// A secret or token expiring within this many days needs attention (0–3650).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(i64).range(0..=3650))]
    warn_days: i64,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("credential").required(true).args(["token_file", "basic_user"])))]
struct VerifyScimArgs {
    /// The SCIM base URL (Entra's "Tenant URL"), e.g. https://scim.example.com/scim/v2
    #[arg(long)]
    url: String,
    /// A file holding the bearer token (Entra's "Secret Token"); - reads standard input.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Check with HTTP Basic credentials instead (Entra cannot use these; the report says so).
    #[arg(long, requires = "basic_password_file", value_name = "USER")]
    basic_user: Option<String>,
    /// A file holding the Basic password.
    #[arg(long, value_name = "FILE")]
    basic_password_file: Option<PathBuf>,
    /// Also create, change and delete a clearly named test user and group (removed afterwards).
    #[arg(long)]
    write_tests: bool,
    /// Trust this certificate (PEM), e.g. a test server's self-signed one. Entra will not.
    #[arg(long, value_name = "FILE")]
    trust_cert: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum CloudArg {
    Global,
    Usgov,
    Usgovdod,
    China,
}

#[derive(Args)]
struct Target {
    /// The provider, e.g. cloudflare or pomerium (see `entra-setup providers`).
    #[arg(long)]
    provider: String,
    /// A provider input, e.g. --input team=acme (repeat for several).
    #[arg(long = "input", value_name = "KEY=VALUE")]
    inputs: Vec<String>,
    /// Client secret lifetime in days (default: the provider's; capped by tenant policy).
    #[arg(long)]
    secret_days: Option<u32>,
    /// Add a new client secret next to the current one, even if it is still good (rotation
    /// without downtime; retire the old one later with `retire-secrets`).
    #[arg(long)]
    rotate_secret: bool,
    #[command(flatten)]
    scim: ScimArgs,
    #[command(flatten)]
    conn: Conn,
}

/// Where to sign in, and how the command talks.
#[derive(Args)]
struct Conn {
    /// The tenant: a verified domain or the tenant ID (default: the account's own tenant).
    #[arg(long, default_value = "")]
    tenant: String,
    /// The Microsoft cloud.
    #[arg(long, value_enum, default_value = "global")]
    cloud: CloudArg,
    /// A custom authority (e.g. the simulated tenant); needs --graph.
    #[arg(long, requires = "graph")]
    authority: Option<String>,
    /// A custom Microsoft Graph root; needs --authority.
    #[arg(long, requires = "authority")]
    graph: Option<String>,
    /// Sign in with a device code (printed to stderr) instead of the browser.
    #[arg(long)]
    device_code: bool,
    /// The public client to sign in with (default: Microsoft Graph Command Line Tools).
    #[arg(long)]
    client_id: Option<String>,
    /// Print the result as JSON on stdout (progress stays on stderr).
    #[arg(long)]
    json: bool,
    /// Do not use the OS keychain: sign in every time, keep nothing.
    #[arg(long)]
    no_keychain: bool,
    /// Where journals live (default: the desktop app's data directory).
    #[arg(long, env = "ENTRA_SETUP_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

/// SCIM provisioning (providers that take it: `entra-setup providers` lists them).
#[derive(Args)]
struct ScimArgs {
    /// The provider's SCIM base URL (Entra's "Tenant URL"); sets up provisioning.
    #[arg(long, value_name = "URL")]
    scim_url: Option<String>,
    /// A file holding the provider's SCIM bearer token (`-` reads standard input). Needed the
    /// first time and whenever the URL or scope changes: Entra never gives a saved token back.
    #[arg(long, value_name = "FILE", requires = "scim_url")]
    scim_token_file: Option<PathBuf>,
    /// When the token expires (YYYY-MM-DD), kept for warnings on later runs.
    #[arg(long, value_name = "DATE", requires = "scim_url")]
    scim_token_expires: Option<String>,
    /// Sync all users and groups (default: only those assigned with --assign).
    #[arg(long, requires = "scim_url", conflicts_with = "assign")]
    sync_all: bool,
    /// Assign a user (sign-in name or object ID) or a security group (exact name or object ID);
    /// repeat for several. The set replaces what the wizard assigned before.
    #[arg(long, value_name = "WHO", requires = "scim_url")]
    assign: Vec<String>,
    /// Configure provisioning but do not start it.
    #[arg(long, requires = "scim_url")]
    no_start: bool,
}

#[derive(Args)]
struct ApplyArgs {
    #[command(flatten)]
    target: Target,
    /// Apply without asking.
    #[arg(long)]
    yes: bool,
    /// Write the provider's settings here (files holding the secret are readable by you only).
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// Push the settings to the provider's API (Cloudflare).
    #[arg(long)]
    push: bool,
    /// An input for the push, e.g. --push-input account_id=0123…
    #[arg(long = "push-input", value_name = "KEY=VALUE", requires = "push")]
    push_inputs: Vec<String>,
    /// A file holding the provider API token for --push.
    #[arg(long, requires = "push")]
    push_token_file: Option<PathBuf>,
    /// The provider API's base URL (default: the provider's own).
    #[arg(long, env = "ENTRA_SETUP_PUSH_API")]
    push_api: Option<String>,
    /// Also keep the new client secret in the OS keychain, for later rotation.
    #[arg(long, conflicts_with = "no_keychain")]
    keep_secret: bool,
    /// Wait up to this many seconds for a colleague's admin consent.
    #[arg(long, default_value_t = 0)]
    wait_consent: u64,
    /// Skip the live connection tests.
    #[arg(long)]
    skip_checks: bool,
}

/// Which setup: the provider and its inputs (for commands that change no settings).
#[derive(Args)]
struct Which {
    /// The provider, e.g. cloudflare or pomerium (see `entra-setup providers`).
    #[arg(long)]
    provider: String,
    /// A provider input, e.g. --input team=acme (repeat for several).
    #[arg(long = "input", value_name = "KEY=VALUE")]
    inputs: Vec<String>,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Args)]
struct RetireArgs {
    #[command(flatten)]
    target: Which,
    /// The key id of the secret to keep: the new one, which the provider uses now.
    #[arg(long, value_name = "KEY_ID")]
    keep: String,
    #[arg(long)]
    yes: bool,
}

#[derive(Args)]
struct UndoArgs {
    #[command(flatten)]
    target: Which,
    #[arg(long)]
    yes: bool,
}

/// A failure with its exit code.
struct Fail(u8, String);

impl<E: std::fmt::Display> From<(u8, E)> for Fail {
    fn from((code, e): (u8, E)) -> Self {
        Fail(code, e.to_string())
    }
}

fn parse_pairs(pairs: &[String], what: &str) -> Result<BTreeMap<String, String>, Fail> {
    let mut out = BTreeMap::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| Fail(2, format!("{what} '{p}' must look like KEY=VALUE")))?;
        let k = k.trim();
        if k.is_empty() {
            return Err(Fail(2, format!("{what} '{p}' has no name before '='")));
        }
        if let Some(first) = out.insert(k.to_string(), v.to_string()) {
            return Err(Fail(
                2,
                format!("{what} {k} is given twice ('{first}' and '{v}'): give it once"),
            ));
        }
    }
    Ok(out)
}

fn data_dir(t: &Conn) -> PathBuf {
    t.data_dir.clone().unwrap_or_else(|| {
        dirs::data_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("dev.entrasetup.wizard")
    })
}

fn cloud_choice(t: &Conn) -> CloudChoice {
    match (&t.authority, &t.graph) {
        (Some(a), Some(g)) => CloudChoice::Custom {
            authority: a.clone(),
            graph: g.clone(),
        },
        _ => match t.cloud {
            CloudArg::Global => CloudChoice::Global,
            CloudArg::Usgov => CloudChoice::UsGov,
            CloudArg::Usgovdod => CloudChoice::UsGovDod,
            CloudArg::China => CloudChoice::China,
        },
    }
}

fn intent(t: &Target) -> Result<Intent, Fail> {
    Ok(intent_of(&t.provider, &t.inputs, t.secret_days)?.with_rotation(t.rotate_secret))
}

/// Every provider: built in and the admin's own; a broken profile is a usage error naming its
/// file and line.
fn catalogue() -> Result<Vec<provider::Provider>, Fail> {
    provider::all().map_err(|e| Fail(2, format!("A provider profile cannot be used: {e}")))
}

fn intent_of(provider: &str, inputs: &[String], secret_days: Option<u32>) -> Result<Intent, Fail> {
    let all = catalogue()?;
    let p = all
        .iter()
        .find(|p| p.id() == provider)
        .cloned()
        .ok_or_else(|| {
            let known: Vec<String> = all.iter().map(|p| p.id().to_string()).collect();
            Fail(
                2,
                format!(
                    "No provider '{provider}'. Known providers: {}.",
                    known.join(", ")
                ),
            )
        })?;
    let raw = parse_pairs(inputs, "--input")?;
    Intent::new(p, &raw, secret_days).map_err(|errors| {
        let lines: Vec<String> = errors
            .iter()
            .map(|e| format!("  --input {}=…: {}", e.field, e.message))
            .collect();
        Fail(2, format!("Fix these inputs:\n{}", lines.join("\n")))
    })
}

fn store(t: &Conn) -> Arc<dyn SecretStore> {
    if t.no_keychain {
        Arc::new(MemoryStore::default())
    } else {
        Arc::new(OsKeychain::new())
    }
}

fn account_file(t: &Conn) -> PathBuf {
    data_dir(t).join("cli-account.json")
}

/// Resumes the saved CLI session for this cloud and tenant, or signs in.
async fn sign_in(
    t: &Conn,
    scopes: &[StepScopes],
    store: Arc<dyn SecretStore>,
) -> Result<Session, Fail> {
    let http = entra_setup_core::http::client();
    let opener: Arc<dyn BrowserOpener> = Arc::new(SystemBrowser);
    let ctx = Context::new(http, store, opener);
    let cloud = cloud_choice(t);
    if !t.no_keychain {
        if let Some(record) = std::fs::read_to_string(account_file(t))
            .ok()
            .and_then(|s| serde_json::from_str::<AccountRecord>(&s).ok())
        {
            let same_tenant =
                t.tenant.is_empty() || record.tenant_id.eq_ignore_ascii_case(&t.tenant);
            if record.cloud == cloud && same_tenant {
                if let Ok(s) = session::resume(&ctx, &record).await {
                    if session::ensure_scopes(
                        &ctx,
                        &s,
                        scopes,
                        method(t),
                        progress(),
                        &CancellationToken::new(),
                    )
                    .await
                    .is_ok()
                    {
                        eprintln!(
                            "Signed in as {} (saved session).",
                            s.summary.user.user_principal_name
                        );
                        return Ok(s);
                    }
                }
            }
        }
    }
    let req = SignInRequest {
        cloud,
        tenant: t.tenant.clone(),
        method: method(t),
        client_id: t.client_id.clone(),
    };
    let signed = session::sign_in_for(&ctx, &req, scopes, progress(), &CancellationToken::new())
        .await
        .map_err(|e| match e {
            session::SessionError::Auth(
                a @ entra_setup_core::auth::AuthError::InvalidTenant { .. },
            ) => Fail(2, a.to_string()),
            session::SessionError::Auth(a @ entra_setup_core::auth::AuthError::Cloud(_)) => {
                Fail(2, a.to_string())
            }
            session::SessionError::Auth(a) => Fail(3, a.to_string()),
            session::SessionError::Graph(g) => Fail(4, g.to_string()),
        })?;
    for n in &signed.notices {
        eprintln!("Note: {}", n.detail);
    }
    if !t.no_keychain {
        let path = account_file(t);
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(
            &path,
            serde_json::to_string_pretty(&signed.session.account).unwrap_or_default(),
        );
    }
    eprintln!(
        "Signed in as {} to {} ({}).",
        signed.session.summary.user.user_principal_name,
        signed.session.summary.tenant_name,
        signed.session.summary.tenant_id
    );
    Ok(signed.session)
}

/// The permissions the command's steps need: provisioning adds its own.
fn step_scopes(t: &Target) -> &'static [StepScopes] {
    StepScopes::setup(
        t.scim.scim_url.is_some() || provider::find(&t.provider).is_some_and(|p| !p.has_sign_in()),
    )
}

/// Adds provisioning to the intent from the --scim-* flags (names given to --assign are looked
/// up in the tenant), and returns the SCIM token read from its file.
async fn with_scim(
    t: &Target,
    s: &Session,
    intent: Intent,
) -> Result<(Intent, Option<SecretString>), Fail> {
    let a = &t.scim;
    let name = intent.provider.name.clone();
    let Some(url) = &a.scim_url else {
        if intent.provider.has_sign_in() {
            return Ok((intent, None));
        }
        return Err(Fail(2, format!("{name} only provisions users and groups: give --scim-url and --scim-token-file, and --assign WHO or --sync-all.")));
    };
    if intent.provider.scim.is_none() {
        return Err(Fail(
            2,
            format!("{name} takes no SCIM provisioning from Entra: leave out --scim-url."),
        ));
    }
    let token = a
        .scim_token_file
        .as_deref()
        .map(|f| read_secret_file(f, "SCIM token"))
        .transpose()?;
    let expires = a
        .scim_token_expires
        .as_deref()
        .map(|d| {
            chrono::NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").map_err(|_| {
                Fail(
                    2,
                    format!("--scim-token-expires '{d}' must be a date such as 2027-01-31."),
                )
            })
        })
        .transpose()?;
    let mut assign = vec![];
    for who in &a.assign {
        let found = people::resolve(&s.graph, who).await.map_err(|e| match e {
            people::ResolveError::Graph(g) => Fail(4, g.to_string()),
            other => Fail(2, format!("--assign {who}: {other}")),
        })?;
        eprintln!(
            "Assigning {} ({:?} {}).",
            found.display_name, found.kind, found.id
        );
        assign.push(found);
    }
    let flag = |field: &str| match field {
        "scim_url" => "--scim-url",
        "scim_token_expires" => "--scim-token-expires",
        "scim_assign" => "--assign / --sync-all",
        _ => "--scim-*",
    };
    let fail = |errors: Vec<provider::InputError>| {
        Fail(
            2,
            errors
                .iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        flag(&e.field),
                        e.message
                            .replace("\"Assigned users and groups only\"", "no --sync-all")
                            .replace("pick at least one user or group", "give --assign WHO")
                            .replace("choose \"All users and groups\"", "use --sync-all")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
        )
    };
    let si = ScimIntent::new(
        url,
        token.is_some(),
        expires,
        a.sync_all,
        assign,
        !a.no_start,
    )
    .map_err(fail)?;
    let intent = intent.with_scim(si).map_err(fail)?;
    Ok((intent, token))
}

fn method(t: &Conn) -> Method {
    if t.device_code {
        Method::DeviceCode
    } else {
        Method::Browser
    }
}

fn progress() -> Arc<dyn Fn(SignInEvent) + Send + Sync> {
    Arc::new(|e| match e {
        SignInEvent::DeviceCode {
            user_code,
            verification_uri,
            expires_at,
            ..
        } => {
            eprintln!("To sign in, open {verification_uri} and enter the code {user_code} (valid until {}).", expires_at.format("%H:%M UTC"));
        }
        SignInEvent::BrowserOpened { url } => {
            eprintln!("Sign in in the browser that opened. If none did, open:\n  {url}")
        }
        _ => {}
    })
}

fn print_plan(p: &Prepared) {
    eprintln!(
        "\nPlan for {} ({}):",
        p.plan.display_name, p.plan.unique_name
    );
    for a in &p.preflight.advice {
        eprintln!("  [{:?}] {}: {}", a.severity, a.title, a.detail);
    }
    if p.plan.is_empty() {
        eprintln!("  No changes: the tenant already matches.");
    }
    for c in &p.plan.changes {
        eprintln!(
            "  {}. {}\n     {}\n     {}",
            c.seq + 1,
            c.title,
            c.reason,
            c.request
        );
    }
    for n in &p.plan.notes {
        eprintln!("  Note: {n}");
    }
    let secrets = secrets::statuses(&p.state, chrono::Utc::now());
    if !secrets.is_empty() {
        eprintln!("Client secrets on the app, newest first:");
        for s in &secrets {
            eprintln!("  {}", describe_secret(s));
        }
    }
}

/// One line about a secret: name, hint, key id, expiry in words.
fn describe_secret(s: &secrets::SecretStatus) -> String {
    let when = match (s.expires, s.days_left) {
        (Some(e), Some(d)) if d < 0 => {
            format!("EXPIRED on {} ({} days ago)", e.format("%Y-%m-%d"), -d)
        }
        (Some(e), Some(d)) => format!(
            "expires {} (in {d} days{})",
            e.format("%Y-%m-%d"),
            if s.health == secrets::SecretHealth::ExpiresSoon {
                ", soon"
            } else {
                ""
            }
        ),
        _ => "no end date".into(),
    };
    format!(
        "{} ({}…, key {}): {when}{}",
        if s.display_name.is_empty() {
            "(no name)"
        } else {
            &s.display_name
        },
        s.hint.as_deref().unwrap_or(""),
        s.key_id,
        if s.by_wizard {
            ""
        } else {
            "; not made by the wizard"
        }
    )
}

fn setup_fail(e: SetupError) -> Fail {
    match e {
        SetupError::Plan(p) => Fail(2, p.to_string()),
        SetupError::Graph(g) => Fail(4, g.to_string()),
    }
}

async fn plan(t: &Target) -> Result<(), Fail> {
    let intent = intent(t)?;
    let s = sign_in(&t.conn, step_scopes(t), store(&t.conn)).await?;
    let (intent, _) = with_scim(t, &s, intent).await?;
    let p = flow::prepare(&s, &data_dir(&t.conn), intent, &[])
        .await
        .map_err(setup_fail)?;
    print_plan(&p);
    if t.conn.json {
        println!(
            "{}",
            json!({"plan": p.plan, "preflight": p.preflight, "secrets": secrets::statuses(&p.state, chrono::Utc::now())})
        );
    }
    Ok(())
}

fn confirm(question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).is_ok() && matches!(line.trim(), "y" | "Y" | "yes")
}

async fn apply(a: &ApplyArgs) -> Result<(), Fail> {
    let t = &a.target;
    let intent = intent(t)?;
    // Where the secret goes is checked before anything is created.
    if let Some(dir) = &a.output_dir {
        if dir.exists() && !dir.is_dir() {
            return Err(Fail(
                2,
                format!(
                    "--output-dir {} is a file, not a folder: give a folder (it is created if missing).",
                    dir.display()
                ),
            ));
        }
    }
    if let Some(api) = &a.push_api {
        entra_setup_core::endpoint::parse(api, entra_setup_core::endpoint::Http::Loopback, false)
            .map_err(|why| Fail(2, format!("--push-api: {why}.")))?;
    }
    let push_inputs = if a.push {
        let raw = parse_pairs(&a.push_inputs, "--push-input")?;
        let mut raw = raw;
        let token_file = a.push_token_file.as_ref().ok_or_else(|| {
            Fail(
                2,
                "--push needs --push-token-file with the provider API token".into(),
            )
        })?;
        let token = std::fs::read_to_string(token_file)
            .map_err(|e| Fail(2, format!("cannot read {}: {e}", token_file.display())))?;
        raw.insert("api_token".into(), token.trim().to_string());
        let checked = intent
            .provider
            .validate_push_inputs(&raw)
            .map_err(|errors| {
                Fail(
                    2,
                    errors
                        .iter()
                        .map(|e| format!("--push-input {}: {}", e.field, e.message))
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            })?;
        if intent.provider.push.is_none() {
            return Err(Fail(
                2,
                format!(
                    "{} has no API to push to; use --output-dir",
                    intent.provider.name
                ),
            ));
        }
        Some(checked)
    } else {
        None
    };
    let s = sign_in(&t.conn, step_scopes(t), store(&t.conn)).await?;
    let (intent, scim_token) = with_scim(t, &s, intent).await?;
    let dir = data_dir(&t.conn);
    let prepared = flow::prepare(&s, &dir, intent, &[])
        .await
        .map_err(setup_fail)?;
    print_plan(&prepared);
    let adds_secret = prepared
        .plan
        .changes
        .iter()
        .any(|c| matches!(c.change, Change::AddPassword { .. }));
    if adds_secret && a.output_dir.is_none() && !a.push && !a.keep_secret {
        return Err(Fail(2, "The plan creates a client secret, which is shown only once: say where it goes with --output-dir DIR, --push or --keep-secret.".into()));
    }
    if prepared.plan.is_empty() {
        if t.conn.json {
            println!(
                "{}",
                json!({"plan": prepared.plan, "result": {"changes": 0}})
            );
        }
        return Ok(());
    }
    if !a.yes
        && !confirm(&format!(
            "Apply these {} changes?",
            prepared.plan.changes.len()
        ))
    {
        return Err(Fail(
            7,
            "Nothing was changed. Run again with --yes to apply.".into(),
        ));
    }
    let on_event: Arc<dyn Fn(ApplyEvent) + Send + Sync> = Arc::new(|e| {
        match e {
        ApplyEvent::Started { seq, title } => eprintln!("[{}] {title}…", seq + 1),
        ApplyEvent::Done { seq, detail } => eprintln!("[{}] done: {detail}", seq + 1),
        ApplyEvent::Failed { seq, message } => eprintln!("[{}] FAILED: {message}", seq + 1),
        ApplyEvent::WaitingForConsent { url, .. } => eprintln!("A Privileged Role Administrator or Global Administrator must open this link to consent:\n  {url}"),
        ApplyEvent::Finished { changes } => eprintln!("Applied {changes} changes."),
    }
    });
    let options = ApplyOptions {
        consent_wait: Duration::from_secs(a.wait_consent),
        consent_poll: Duration::from_secs(5),
        scim_token: scim_token.clone(),
        ..Default::default()
    };
    let applied =
        match flow::execute(&s, &prepared, &options, on_event, &CancellationToken::new()).await {
            Ok(x) => x,
            Err(failed) => {
                if let Some(secret) = &failed.partial.secret {
                    let _ = hand_over(
                        a,
                        &s,
                        &prepared,
                        failed.partial.app_id.as_deref().unwrap_or_default(),
                        secret,
                        push_inputs.as_ref(),
                    )
                    .await;
                }
                return Err(Fail(
                    4,
                    format!(
                        "{}\nJournal: {}. Run apply again to resume.",
                        failed.error,
                        prepared.journal.path().display()
                    ),
                ));
            }
        };
    let app_id = applied.app_id.clone().unwrap_or_default();
    let scim_applied = applied.scim.clone().or_else(|| {
        prepared.state.scim.as_ref().map(|x| ScimApplied {
            app_object_id: x.app_object_id.clone(),
            app_id: x.app_id.clone(),
            sp_id: x.sp_id.clone(),
            job_id: x.job.as_ref().map(|j| j.id.clone()),
        })
    });
    let mut result = json!({"appId": app_id, "objectId": applied.app_object_id, "servicePrincipalId": applied.sp_id, "consentUrl": applied.consent_url, "journal": prepared.journal.path()});
    if let Some(secret) = &applied.secret {
        result["secret"] =
            json!({"keyId": secret.key_id, "hint": secret.hint, "expires": secret.end});
        let handed = hand_over(a, &s, &prepared, &app_id, secret, push_inputs.as_ref()).await?;
        result["handedOver"] = handed;
    }
    let mut code = 0;
    if let Some(url) = &applied.consent_url {
        eprintln!("Admin consent is still needed. Send this link to a Privileged Role Administrator or Global Administrator:\n  {url}");
        code = 5;
    }
    if !a.skip_checks {
        let checks = run_checks(
            &s,
            &app_id,
            applied.secret.as_ref().map(|x| &x.value),
            &prepared,
            applied.consent_url.is_none(),
            scim_applied.as_ref(),
        )
        .await;
        for c in &checks {
            eprintln!(
                "{} {}: {}{}",
                match c.status {
                    Status::Pass => "PASS",
                    Status::Warn => "WARN",
                    Status::Fail => "FAIL",
                },
                c.title,
                c.detail,
                c.fix
                    .as_ref()
                    .map(|f| format!(" Fix: {f}"))
                    .unwrap_or_default()
            );
        }
        if code == 0 && checks.iter().any(|c| c.status == Status::Fail) {
            code = 6;
        }
        result["checks"] = json!(checks);
    }
    if let Some(new) = &applied.secret {
        let old: Vec<String> = secrets::left_after_rotation(
            &prepared.plan,
            &prepared.state,
            &new.key_id,
            chrono::Utc::now(),
        )
        .iter()
        .map(describe_secret)
        .collect();
        if !old.is_empty() {
            eprintln!(
                "The old secret{} still work{} until retired:\n  {}\nOnce {} uses the new secret, run: entra-setup retire-secrets --provider {} --keep {} (with the same --input values)",
                if old.len() == 1 { "" } else { "s" },
                if old.len() == 1 { "s" } else { "" },
                old.join("\n  "),
                prepared.intent.provider.name,
                prepared.intent.provider.id(),
                new.key_id
            );
            result["oldSecrets"] = json!(old);
        }
    }
    if let (Some(sc), Some(_)) = (&scim_applied, &prepared.intent.scim) {
        let status = match &sc.job_id {
            Some(job) => provisioning::job_status(&s.graph, &sc.sp_id, job)
                .await
                .ok(),
            None => None,
        };
        if let Some(st) = &status {
            eprintln!("Provisioning: {}", st.headline);
        }
        result["scim"] = json!({"appId": sc.app_id, "servicePrincipalId": sc.sp_id, "jobId": sc.job_id, "status": status});
        for w in outputs::scim_advice(
            &prepared.intent.provider,
            prepared.journal.scim_record().and_then(|r| r.token_expires),
        ) {
            eprintln!("Warning: {}: {}", w.title, w.detail);
        }
    }
    let advice = if prepared.intent.provider.has_sign_in() {
        outputs::done_advice(
            &prepared.intent.provider,
            Some(&prepared.preflight),
            applied.secret.as_ref().map(|x| x.end),
        )
    } else {
        vec![]
    };
    for w in advice {
        eprintln!("Warning: {}: {}", w.title, w.detail);
    }
    if t.conn.json {
        println!("{}", json!({"plan": prepared.plan, "result": result}));
    }
    if code == 0 {
        Ok(())
    } else {
        Err(Fail(code, String::new()))
    }
}

async fn run_checks(
    s: &Session,
    app_id: &str,
    secret: Option<&SecretString>,
    p: &Prepared,
    consented: bool,
    scim: Option<&ScimApplied>,
) -> Vec<CheckResult> {
    let http = entra_setup_core::http::client();
    let mut out = vec![];
    if p.intent.provider.has_sign_in() {
        out.push(checks::discovery(&http, &s.cloud, &s.account.tenant_id).await);
    }
    if let Some((sp, job)) = scim.and_then(|x| x.job_id.as_deref().map(|j| (&x.sp_id, j))) {
        if p.journal.scim_record().is_some() {
            out.push(checks::scim_connection(&s.graph, sp, job).await);
        }
    }
    if let Some(secret) = secret {
        let app_perms = consented
            && !p
                .intent
                .provider
                .permission_names(PermissionKind::Application)
                .is_empty();
        out.extend(
            checks::secret_and_consent(
                &http,
                &s.cloud,
                &s.account.token_endpoint,
                app_id,
                secret,
                app_perms,
                &SecretRetry::default(),
            )
            .await,
        );
    }
    out
}

/// Hands the new secret over as asked; records it in the journal.
async fn hand_over(
    a: &ApplyArgs,
    s: &Session,
    p: &Prepared,
    app_id: &str,
    secret: &entra_setup_core::setup::apply::NewSecret,
    push_inputs: Option<&BTreeMap<String, String>>,
) -> Result<serde_json::Value, Fail> {
    let provider = &p.intent.provider;
    let values = outputs::values(
        &s.cloud,
        &s.account.tenant_id,
        app_id,
        &p.plan.display_name,
        &p.intent.inputs,
        Some(secret.end),
    );
    let mut how = vec![];
    let mut report = json!({});
    if let Some(dir) = &a.output_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| Fail(1, format!("cannot create {}: {e}", dir.display())))?;
        let mut files = vec![];
        for o in &provider.outputs {
            let name = o.file_name.clone().unwrap_or_else(|| {
                format!(
                    "{}.{}",
                    o.id,
                    match o.format {
                        provider::OutputFormat::Json => "json",
                        provider::OutputFormat::Yaml => "yaml",
                        provider::OutputFormat::Hcl => "tf",
                        provider::OutputFormat::Text => "txt",
                    }
                )
            });
            let path = dir.join(name);
            let text = outputs::render_with_secret(provider, &o.id, &values, &secret.value)
                .map_err(|e| Fail(1, e))?;
            outputs::write_private_file(&path, &text)
                .map_err(|e| Fail(1, format!("cannot write {}: {e}", path.display())))?;
            files.push(path);
        }
        let ics = dir.join("secret-expiry.ics");
        outputs::write_private_file(
            &ics,
            &SecretString::from(outputs::expiry_reminder(
                &p.plan.display_name,
                &secret.key_id,
                secret.end,
            )),
        )
        .map_err(|e| Fail(1, e.to_string()))?;
        eprintln!(
            "Wrote {} (readable by you only) and the calendar reminder {}.",
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            ics.display()
        );
        report["files"] = json!(files);
        how.push("saved to a file");
    }
    if let (Some(inputs), Some(push)) = (push_inputs, &provider.push) {
        let body = outputs::render_with_secret(provider, &push.output, &values, &secret.value)
            .map_err(|e| Fail(1, e))?;
        let token = SecretString::from(inputs.get("api_token").cloned().unwrap_or_default());
        let mut push_values = values.clone();
        push_values.extend(
            inputs
                .iter()
                .filter(|(k, _)| k.as_str() != "api_token")
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        let http = entra_setup_core::http::client();
        let r = entra_setup_core::push::push(
            &http,
            push,
            a.push_api.as_deref(),
            &push_values,
            &token,
            &body,
        )
        .await
        .map_err(|e| {
            Fail(
                4,
                format!("{e} (the Entra side is done; push again with the same command)"),
            )
        })?;
        eprintln!(
            "{} {} {} in {}.",
            if r.created { "Created" } else { "Updated" },
            r.object,
            r.id,
            provider.name
        );
        report["pushed"] = json!(r);
        how.push("pushed to the provider");
    }
    if a.keep_secret {
        let store = store(&a.target.conn);
        keychain::set(
            &store,
            &format!("client-secret:{}:{app_id}", s.account.tenant_id),
            SecretString::from(secret.value.expose_secret().to_string()),
        )
        .await
        .map_err(|e| Fail(1, e.to_string()))?;
        how.push("kept in the keychain");
    }
    if !how.is_empty() {
        let _ = p
            .journal
            .handed_over(&p.plan.id, &secret.key_id, &how.join(", "));
    }
    Ok(report)
}

async fn undo_cmd(u: &UndoArgs) -> Result<(), Fail> {
    let t = &u.target;
    let intent = intent_of(&t.provider, &t.inputs, None)?;
    let s = sign_in(
        &t.conn,
        StepScopes::setup(!intent.provider.has_sign_in()),
        store(&t.conn),
    )
    .await?;
    let journal = Journal::open(
        &data_dir(&t.conn),
        &s.account.tenant_id,
        &intent.unique_name(),
    );
    let pending = undo::pending(&journal);
    if pending.is_empty() {
        // No journal here (another computer, or a lost data folder): undo from what the tenant
        // shows is the wizard's.
        let apps = undo::tenant_pending(&s.graph, &intent)
            .await
            .map_err(|e| Fail(4, e.to_string()))?;
        if apps.is_empty() {
            eprintln!(
                "Nothing to undo: the journal at {} records nothing the wizard created, and the tenant has no app named {} carrying Entra Setup's tag.",
                journal.path().display(),
                intent.unique_name()
            );
            if t.conn.json {
                println!("{}", json!({"undone": []}));
            }
            return Ok(());
        }
        eprintln!(
            "No journal for {} on this computer; the tenant shows {} app(s) Entra Setup made for it:",
            intent.display_name(),
            apps.len()
        );
        for a in &apps {
            eprintln!(
                "  {} (uniqueName {}, object id {})",
                a.display_name, a.unique_name, a.object_id
            );
        }
        eprintln!("Undo deletes them, with their enterprise apps, grants, secrets, assignments and provisioning.");
        if !u.yes && !confirm("Undo?") {
            return Err(Fail(
                7,
                "Nothing was changed. Run again with --yes to undo.".into(),
            ));
        }
        let done = undo::undo_from_tenant(
            &s.graph,
            &journal,
            &apps,
            Arc::new(|d| eprintln!("{} ({})", d.what, d.id)),
        )
        .await
        .map_err(|e| Fail(4, e.to_string()))?;
        if t.conn.json {
            println!("{}", json!({"undone": done, "source": "tenant"}));
        }
        return Ok(());
    }
    eprintln!(
        "Undo will remove {} object(s) the wizard created for {}.",
        pending.len(),
        intent.display_name()
    );
    if !u.yes && !confirm("Undo?") {
        return Err(Fail(
            7,
            "Nothing was changed. Run again with --yes to undo.".into(),
        ));
    }
    let done = undo::undo(
        &s.graph,
        &journal,
        Arc::new(|d| eprintln!("{} ({})", d.what, d.id)),
    )
    .await
    .map_err(|e| Fail(4, e.to_string()))?;
    if t.conn.json {
        println!("{}", json!({"undone": done}));
    }
    Ok(())
}

async fn retire_cmd(r: &RetireArgs) -> Result<(), Fail> {
    let t = &r.target;
    let keep = r.keep.trim();
    if uuid::Uuid::parse_str(keep).is_err() {
        return Err(Fail(
            2,
            format!("--keep '{keep}' is not a secret's key id: give the key id (a GUID such as 0f8fad5b-d9cb-469f-a165-70867728950e) that `apply --rotate-secret` printed for the new secret."),
        ));
    }
    let intent = intent_of(&t.provider, &t.inputs, None)?;
    if !intent.provider.has_sign_in() {
        return Err(Fail(
            2,
            format!(
                "{} has no client secrets to retire: it only provisions.",
                intent.provider.name
            ),
        ));
    }
    let s = sign_in(&t.conn, StepScopes::setup(false), store(&t.conn)).await?;
    // Show what goes before asking (the retire re-reads the app right before removing).
    let preview = match flow::retire_preview(&s, &intent, keep).await {
        Ok((_, p)) => p,
        Err(flow::RetireFailed::Retire(secrets::RetireError::NothingToRetire)) => {
            eprintln!(
                "Nothing to retire: {} has no other secret made by the wizard.",
                intent.display_name()
            );
            if t.conn.json {
                println!("{}", json!({"retired": []}));
            }
            return Ok(());
        }
        Err(flow::RetireFailed::Retire(e)) => return Err(Fail(2, e.to_string())),
        Err(e) => return Err(Fail(4, e.to_string())),
    };
    for c in &preview.changes {
        eprintln!("  {}\n     {}", c.title, c.reason);
    }
    for n in &preview.notes {
        eprintln!("  Note: {n}");
    }
    if !r.yes && !confirm(&format!("Retire {} secret(s)?", preview.changes.len())) {
        return Err(Fail(
            7,
            "Nothing was changed. Run again with --yes to retire.".into(),
        ));
    }
    let on_event: Arc<dyn Fn(ApplyEvent) + Send + Sync> = Arc::new(|e| match e {
        ApplyEvent::Done { detail, .. } => eprintln!("done: {detail}"),
        ApplyEvent::Failed { message, .. } => eprintln!("FAILED: {message}"),
        _ => {}
    });
    let (plan, _) = flow::retire_old_secrets(
        &s,
        &data_dir(&t.conn),
        &intent,
        keep,
        on_event,
        &CancellationToken::new(),
    )
    .await
    .map_err(|e| match e {
        flow::RetireFailed::Retire(e) => Fail(2, e.to_string()),
        other => Fail(4, other.to_string()),
    })?;
    let retired: Vec<String> = plan
        .changes
        .iter()
        .filter_map(|c| match &c.change {
            Change::RemovePassword { key_id, .. } => Some(key_id.clone()),
            _ => None,
        })
        .collect();
    eprintln!("Retired {} secret(s); {} is kept.", retired.len(), keep);
    if t.conn.json {
        println!("{}", json!({"retired": retired, "kept": keep}));
    }
    Ok(())
}

async fn status_cmd(a: &StatusArgs) -> Result<(), Fail> {
    let c = &a.conn;
    let s = sign_in(c, StepScopes::setup(true), store(c)).await?;
    let dir = data_dir(c);
    let previous = found::known(&s.graph, &dir, &s.account.tenant_id)
        .await
        .map_err(|e| Fail(4, e.to_string()))?;
    if previous.is_empty() {
        eprintln!(
            "No setups in {}: no app in the tenant carries Entra Setup's tag, and {} holds no journal for it. Nothing to check.",
            s.summary.tenant_name,
            dir.display()
        );
    }
    let mut all = vec![];
    for prev in &previous {
        let v = Box::pin(status::check(&s, &dir, prev, a.warn_days)).await;
        eprintln!(
            "\n{} ({}, {} {}){}",
            v.name,
            v.provider,
            if v.source == journal::SetupSource::Tenant {
                "created"
            } else {
                "last applied"
            },
            v.last_applied.format("%Y-%m-%d"),
            if v.source == journal::SetupSource::Tenant {
                " — found in the tenant; no journal on this computer"
            } else {
                ""
            }
        );
        for x in &v.secrets {
            eprintln!("  Secret {}", describe_secret(x));
        }
        if let Some(e) = &v.error {
            eprintln!("  Could not check: {e}");
        }
        if let Some(st) = v.scim.as_ref().and_then(|x| x.status.as_ref()) {
            eprintln!("  Provisioning: {}", st.headline);
        }
        if v.attention.is_empty() && v.error.is_none() {
            eprintln!("  OK: nothing needs attention.");
        }
        for i in &v.attention {
            eprintln!("  ATTENTION: {i}");
        }
        all.push(v);
    }
    if c.json {
        println!(
            "{}",
            json!({"tenantId": s.account.tenant_id, "setups": all})
        );
    }
    if all
        .iter()
        .any(|v| !v.attention.is_empty() || v.error.is_some())
    {
        Err(Fail(9, String::new()))
    } else {
        Ok(())
    }
}

/// Reads a one-line secret from a file (or standard input for `-`), without its line ending.
fn read_secret_file(path: &std::path::Path, what: &str) -> Result<SecretString, Fail> {
    let raw = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| {
            Fail(
                2,
                format!("Cannot read the {what} from standard input: {e}"),
            )
        })?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| {
            Fail(
                2,
                format!("Cannot read the {what} from {}: {e}", path.display()),
            )
        })?
    };
    let value = raw.trim();
    if value.is_empty() {
        return Err(Fail(
            2,
            format!(
                "{} holds no {what}: put the value on its first line.",
                path.display()
            ),
        ));
    }
    if value.contains('\n') {
        return Err(Fail(
            2,
            format!(
                "{} holds more than one line: put only the {what} in it.",
                path.display()
            ),
        ));
    }
    Ok(SecretString::from(value.to_string()))
}

async fn verify_scim(v: &VerifyScimArgs) -> Result<(), Fail> {
    use entra_setup_core::scim::{self, ScimAuth, ScimStatus, ScimTarget, VerifyOptions};
    // A URL that is not one is a mistake in the command, not a verdict on an endpoint. (Plain
    // http is for the verifier to judge: it refuses to send the token over it.)
    entra_setup_core::endpoint::parse(&v.url, entra_setup_core::endpoint::Http::Anywhere, true)
        .map_err(|why| Fail(2, format!("--url: {why}.")))?;
    let auth = match (&v.token_file, &v.basic_user, &v.basic_password_file) {
        (Some(f), _, _) => ScimAuth::Bearer(read_secret_file(f, "bearer token")?),
        (None, Some(user), Some(f)) => ScimAuth::Basic {
            user: user.clone(),
            password: read_secret_file(f, "password")?,
        },
        _ => {
            return Err(Fail(
                2,
                "Give --token-file, or --basic-user with --basic-password-file.".into(),
            ))
        }
    };
    let trusted_cert = match &v.trust_cert {
        Some(f) => Some(std::fs::read(f).map_err(|e| {
            Fail(
                2,
                format!("Cannot read the certificate {}: {e}", f.display()),
            )
        })?),
        None => None,
    };
    let target = ScimTarget {
        url: v.url.trim().to_string(),
        auth,
        trusted_cert,
    };
    if !v.json {
        eprintln!(
            "Checking {} as Entra's provisioning service would{}…",
            target.url,
            if v.write_tests {
                " (with write tests)"
            } else {
                ""
            }
        );
    }
    let report = scim::verify(
        &target,
        &VerifyOptions {
            write_tests: v.write_tests,
            timeout: None,
        },
    )
    .await;
    if v.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| Fail(1, e.to_string()))?
        );
    } else {
        for c in &report.checks {
            let mark = match c.status {
                ScimStatus::Pass => "pass",
                ScimStatus::Warn => "WARN",
                ScimStatus::Fail => "FAIL",
                ScimStatus::Skipped => "skip",
            };
            println!("{mark}  {:<24} {} ({} ms)", c.id, c.title, c.millis);
            if c.status == ScimStatus::Pass {
                continue;
            }
            println!("      {}", c.detail);
            if !c.entra_impact.is_empty() {
                println!("      Entra: {}", c.entra_impact);
            }
            if let Some(fix) = &c.fix {
                println!("      Fix: {fix}");
            }
            if !c.rfc.is_empty() {
                println!("      See {}", c.rfc);
            }
            if matches!(c.status, ScimStatus::Fail | ScimStatus::Warn) {
                for x in &c.exchanges {
                    println!("      > {} {}  [{}]", x.method, x.url, x.auth);
                    if let Some(b) = &x.request_body {
                        println!("        {b}");
                    }
                    match (&x.status, &x.error) {
                        (_, Some(e)) => println!("      < no answer: {e}"),
                        (Some(st), None) => {
                            println!(
                                "      < {st} {}{}",
                                x.content_type.as_deref().unwrap_or("(no content type)"),
                                x.location
                                    .as_deref()
                                    .map(|l| format!(" → {l}"))
                                    .unwrap_or_default()
                            );
                            if let Some(b) = &x.response_body {
                                println!("        {}", b.chars().take(400).collect::<String>());
                            }
                        }
                        (None, None) => {}
                    }
                }
            }
        }
        println!();
        println!("{}", report.verdict);
        match (&report.tenant_url, report.ready) {
            (Some(u), true) => {
                println!("Tenant URL to enter in Entra: {u}");
                if report.use_aad_opt_flag {
                    println!("(it carries ?aadOptscim062020: this server needs Entra's RFC-compliant PATCH format)");
                }
            }
            (Some(u), false) => println!(
                "Once the failures above are fixed, the tenant URL to enter in Entra is {u}."
            ),
            (None, _) => println!("No tenant URL to enter: the endpoint could not be reached."),
        }
        println!("Took {} ms.", report.total_millis);
    }
    if report.ready {
        Ok(())
    } else {
        Err(Fail(8, String::new()))
    }
}

/// The exit code's meaning, for `--json` error objects.
fn exit_kind(code: u8) -> &'static str {
    match code {
        2 => "usage",
        3 => "signIn",
        4 => "graph",
        5 => "consentNeeded",
        6 => "liveCheckFailed",
        7 => "confirmationNeeded",
        8 => "scimNotReady",
        9 => "attention",
        _ => "unexpected",
    }
}

fn providers() -> Result<(), Fail> {
    for p in catalogue()? {
        println!("{} — {}", p.id(), p.name);
        println!("  {}", p.description);
        if p.file.starts_with("providers/") {
            println!("  (built in)");
        } else {
            println!("  (from {})", p.file);
        }
        for i in &p.inputs {
            println!("  --input {}=…  {} (e.g. {})", i.id, i.label, i.example);
        }
        if let Some(why) = p.unsupported() {
            println!("  Not yet: {why}");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("ENTRA_SETUP_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let wants_json = std::env::args().any(|a| a == "--json");
    let cli = match Cli::try_parse() {
        Ok(c) => {
            // The core reads the admin's own profiles from here, whatever the command.
            if let Some(dir) = &c.providers_dir {
                std::env::set_var("ENTRA_SETUP_PROVIDERS_DIR", dir);
            }
            Ok(c)
        }
        Err(e) => Err(e),
    };
    let cli = match cli {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let message = e.render().to_string();
            if wants_json {
                println!(
                    "{}",
                    json!({"error": {"exitCode": 2, "kind": "usage", "message": message.trim()}})
                );
            }
            eprint!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("entra-setup: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match &cli.cmd {
            Cmd::Providers => providers(),
            Cmd::Plan(t) => Box::pin(plan(t)).await,
            Cmd::Apply(a) => Box::pin(apply(a)).await,
            Cmd::Undo(u) => Box::pin(undo_cmd(u)).await,
            Cmd::RetireSecrets(r) => Box::pin(retire_cmd(r)).await,
            Cmd::Status(a) => Box::pin(status_cmd(a)).await,
            Cmd::VerifyScim(v) => verify_scim(v).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(code, message)) => {
            if !message.is_empty() {
                eprintln!("entra-setup: {message}");
            }
            if wants_json && !message.is_empty() {
                println!(
                    "{}",
                    json!({"error": {"exitCode": code, "kind": exit_kind(code), "message": message}})
                );
            }
            ExitCode::from(code)
        }
    }
}
