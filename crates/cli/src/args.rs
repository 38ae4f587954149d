//! The command line: commands, flags and what each one means.

use super::*;
use entra_setup_core::values;

pub(crate) const EXIT_CODES: &str = "\
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
  9  status: a setup needs attention (a secret or SCIM token expiring, drift, a quarantined job)
 10  single sign-on is set up in Entra, but nobody confirmed that an administrator of the service
     still signs in with a password: check that, then run again with --confirm-password-admin
 11  the vendor's own app (Twingate, Firezone) is not in the tenant, is disabled, or lacks
     consent: connect it in the vendor's console (the message says where), or wait for it with
     --wait-for-consent SECONDS
 12  nothing was changed: another Entra Setup (the desktop app or a command) is applying to or
     undoing in this tenant (wait for it, then run again), or Undo found that an object the
     journal names is not this setup's
 13  nothing was changed: an app of the setup has owners, credentials or redirect URIs the
     wizard did not put there (someone may have registered it first under the name the wizard
     looks for); the message lists them. Check them, then run again with --adopt to take the
     app over (they are removed, each journaled; keep one with --adopt-keep ID)";

// Clap's value parsers: the core's one check per kind of value (`entra_setup_core::values`).
fn folder(raw: &str) -> Result<PathBuf, values::ValueError> {
    values::existing_folder(std::path::Path::new(raw))
}
fn wait_seconds(raw: &str) -> Result<u64, values::ValueError> {
    values::wait_seconds(raw)
}
fn principal(raw: &str) -> Result<String, values::ValueError> {
    values::principal(raw)
}
fn key_id(raw: &str) -> Result<String, values::ValueError> {
    values::guid(
        raw,
        "a secret's key id (the one `apply --rotate-secret` printed)",
    )
}
fn client_id(raw: &str) -> Result<String, values::ValueError> {
    values::guid(raw, "an application (client) ID")
}
fn expiry_date(raw: &str) -> Result<chrono::NaiveDate, values::ValueError> {
    values::future_date(raw, chrono::Utc::now().date_naive())
}
fn keepable(raw: &str) -> Result<String, values::ValueError> {
    let v = raw.trim();
    if values::is_guid(v) || values::redirect_uri(v).is_ok() {
        return Ok(v.to_string());
    }
    Err(values::ValueError(format!(
        "'{}' is neither an owner's or credential's id (a GUID such as 0f8fad5b-d9cb-469f-a165-70867728950e) nor a redirect URI: give one the exit-13 message listed",
        entra_setup_core::redact::echo(v, 80)
    )))
}
fn tenant(raw: &str) -> Result<String, String> {
    entra_setup_core::auth::TenantRef::parse(raw)
        .map(|_| raw.trim().to_string())
        .map_err(|e| e.to_string())
}

#[derive(Parser)]
#[command(name = "entra-setup", version, about = "Connect a Microsoft Entra ID tenant to a service provider: plan, apply, check, rotate secrets and certificates, undo.", after_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
    /// A folder of your own provider profiles (*.toml), read besides the built-in ones and the
    /// `providers` folder of the app's configuration directory.
    /// The folder must exist.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "ENTRA_SETUP_PROVIDERS_DIR",
        value_parser = folder
    )]
    pub(crate) providers_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
pub(crate) enum Cmd {
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
    /// SAML rotation, once the service has the new certificate (`apply --rotate-certificate`
    /// printed its thumbprint): Entra signs with it from now on.
    ActivateCertificate(ActivateArgs),
    /// SAML rotation, after the service signs in with the new certificate: remove the app's
    /// other signing certificates (never the active one).
    RetireCertificates(RetireCertificatesArgs),
    /// Check a SCIM endpoint the way Entra's provisioning service will use it.
    VerifyScim(VerifyScimArgs),
    /// Every setup done before in the tenant: secret expiry, drift and provisioning (read-only).
    Status(StatusArgs),
}

impl Cmd {
    /// How the command signs in and where it keeps its data, if it does.
    pub(crate) fn conn(&self) -> Option<&Conn> {
        match self {
            Cmd::Providers | Cmd::VerifyScim(_) => None,
            Cmd::Plan(t) => Some(&t.conn),
            Cmd::Apply(a) => Some(&a.target.conn),
            Cmd::Undo(UndoArgs { target, .. })
            | Cmd::RetireSecrets(RetireArgs { target, .. })
            | Cmd::ActivateCertificate(ActivateArgs { target, .. })
            | Cmd::RetireCertificates(RetireCertificatesArgs { target, .. }) => Some(&target.conn),
            Cmd::Status(s) => Some(&s.conn),
        }
    }
}

#[derive(Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) conn: Conn,
    /// A secret or token expiring within this many days needs attention (0–3650).
    #[arg(long, default_value_t = 30, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..=3650))]
    pub(crate) warn_days: i64,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("credential").required(true).args(["token_file", "basic_user"])))]
pub(crate) struct VerifyScimArgs {
    /// The SCIM base URL (Entra's "Tenant URL"), e.g. https://scim.example.com/scim/v2
    #[arg(long)]
    pub(crate) url: String,
    /// A file holding the bearer token (Entra's "Secret Token"); - reads standard input.
    #[arg(long, value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// Check with HTTP Basic credentials instead (Entra cannot use these; the report says so).
    #[arg(long, requires = "basic_password_file", value_name = "USER", value_parser = principal)]
    pub(crate) basic_user: Option<String>,
    /// A file holding the Basic password.
    #[arg(long, value_name = "FILE")]
    pub(crate) basic_password_file: Option<PathBuf>,
    /// Also create, change and delete a clearly named test user and group (removed afterwards).
    #[arg(long)]
    pub(crate) write_tests: bool,
    /// Trust this certificate (PEM), e.g. a test server's self-signed one. Entra will not.
    #[arg(long, value_name = "FILE")]
    pub(crate) trust_cert: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum CloudArg {
    Global,
    Usgov,
    Usgovdod,
    China,
}

#[derive(Args)]
pub(crate) struct Target {
    /// The provider, e.g. cloudflare or pomerium (see `entra-setup providers`).
    #[arg(long)]
    pub(crate) provider: String,
    /// A provider input, e.g. --input team=acme (repeat for several).
    #[arg(long = "input", value_name = "KEY=VALUE")]
    pub(crate) inputs: Vec<String>,
    /// Client secret lifetime in days, 1–730 (default: the provider's; capped by tenant
    /// policy). Only for services that sign in with a client secret.
    #[arg(long, value_name = "DAYS", allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..=730))]
    pub(crate) secret_days: Option<u32>,
    /// Add a new client secret next to the current one, even if it is still good (rotation
    /// without downtime; retire the old one later with `retire-secrets`).
    #[arg(long)]
    pub(crate) rotate_secret: bool,
    /// SAML: add a new signing certificate next to the active one, even if it is still good
    /// (rotation without downtime: `activate-certificate` once the service has it, then
    /// `retire-certificates`).
    #[arg(long)]
    pub(crate) rotate_certificate: bool,
    /// The service's own SAML metadata (a file, or an https URL): fills entity_id, reply_url
    /// and logout_url of a SAML provider.
    #[arg(long, value_name = "FILE|URL")]
    pub(crate) sp_metadata: Option<String>,
    #[command(flatten)]
    pub(crate) scim: ScimArgs,
    #[command(flatten)]
    pub(crate) conn: Conn,
}

/// Where to sign in, and how the command talks.
#[derive(Args)]
pub(crate) struct Conn {
    /// The tenant: a verified domain (contoso.com) or the Directory (tenant) ID, a GUID
    /// (default: the account's own tenant).
    #[arg(long, default_value = "", value_parser = tenant, allow_hyphen_values = true)]
    pub(crate) tenant: String,
    /// The Microsoft cloud (not with --authority/--graph, which name their own).
    #[arg(long, value_enum, default_value = "global", conflicts_with_all = ["authority", "graph"])]
    pub(crate) cloud: CloudArg,
    /// A custom authority (e.g. the simulated tenant); needs --graph.
    #[arg(long, requires = "graph")]
    pub(crate) authority: Option<String>,
    /// A custom Microsoft Graph root; needs --authority.
    #[arg(long, requires = "authority")]
    pub(crate) graph: Option<String>,
    /// Sign in with a device code (printed to stderr) instead of the browser.
    #[arg(long)]
    pub(crate) device_code: bool,
    /// The public client to sign in with, its application (client) ID, a GUID (default:
    /// Microsoft Graph Command Line Tools).
    #[arg(long, value_name = "GUID", value_parser = client_id)]
    pub(crate) client_id: Option<String>,
    /// Print the result as JSON on stdout (progress stays on stderr).
    #[arg(long)]
    pub(crate) json: bool,
    /// Do not use the OS keychain: sign in every time, keep nothing.
    #[arg(long)]
    pub(crate) no_keychain: bool,
    /// Where journals and the saved sign-in live (default: the desktop app's data directory,
    /// dev.entrasetup.wizard in $XDG_DATA_HOME or ~/.local/share on Linux, ~/Library/Application
    /// Support on macOS, %APPDATA% on Windows; made if missing, private to you). With no home
    /// folder to find it in, the command stops rather than use a shared temporary folder.
    #[arg(long, value_name = "DIR", env = "ENTRA_SETUP_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
}

/// SCIM provisioning (providers that take it: `entra-setup providers` lists them).
#[derive(Args)]
pub(crate) struct ScimArgs {
    /// The provider's SCIM base URL (Entra's "Tenant URL"); sets up provisioning.
    #[arg(long, value_name = "URL")]
    pub(crate) scim_url: Option<String>,
    /// A file holding the provider's SCIM bearer token (`-` reads standard input). Needed the
    /// first time and whenever the URL or scope changes: Entra never gives a saved token back.
    #[arg(long, value_name = "FILE", requires = "scim_url")]
    pub(crate) scim_token_file: Option<PathBuf>,
    /// When the token expires (YYYY-MM-DD, after today and at most 10 years ahead), kept for
    /// warnings on later runs.
    #[arg(long, value_name = "DATE", requires = "scim_url", value_parser = expiry_date)]
    pub(crate) scim_token_expires: Option<chrono::NaiveDate>,
    /// Sync all users and groups (default: only those assigned with --assign). For a vendor
    /// that syncs the directory itself (Firezone): its "All groups" mode.
    #[arg(long, conflicts_with = "assign")]
    pub(crate) sync_all: bool,
    /// Assign a user (sign-in name or object ID) or a security group (exact name or object ID);
    /// repeat for several. The set replaces what the wizard assigned before. With SCIM: who is
    /// provisioned; on a SAML app without SCIM: who may sign in (everyone when left out).
    /// At most 256 characters each; each given once.
    #[arg(long, value_name = "WHO", value_parser = principal)]
    pub(crate) assign: Vec<String>,
    /// Configure provisioning but do not start it.
    #[arg(long, requires = "scim_url")]
    pub(crate) no_start: bool,
}

#[derive(Args)]
pub(crate) struct ApplyArgs {
    #[command(flatten)]
    pub(crate) target: Target,
    /// Apply without asking.
    #[arg(long)]
    pub(crate) yes: bool,
    /// Write the provider's settings here (files holding the secret are readable by you only).
    #[arg(long)]
    pub(crate) output_dir: Option<PathBuf>,
    /// Push the settings to the provider's API (Cloudflare).
    #[arg(long)]
    pub(crate) push: bool,
    /// An input for the push, e.g. --push-input account_id=0123…
    #[arg(long = "push-input", value_name = "KEY=VALUE", requires = "push")]
    pub(crate) push_inputs: Vec<String>,
    /// A file holding the provider API token for --push.
    #[arg(long, requires = "push")]
    pub(crate) push_token_file: Option<PathBuf>,
    /// The provider API's base URL (default: the provider's own).
    #[arg(long, env = "ENTRA_SETUP_PUSH_API")]
    pub(crate) push_api: Option<String>,
    /// Also keep the new client secret in the OS keychain, for later rotation.
    #[arg(long, conflicts_with = "no_keychain")]
    pub(crate) keep_secret: bool,
    /// Wait up to this many seconds (0–86400) for a colleague's admin consent.
    #[arg(long, value_name = "SECONDS", default_value_t = 0, allow_negative_numbers = true, value_parser = wait_seconds)]
    pub(crate) wait_consent: u64,
    /// For services with their own Entra apps (Twingate, Firezone): wait up to this many
    /// seconds (0–86400) for the vendor's apps to appear in the tenant with their consent,
    /// checking every few seconds, while you connect Entra in the vendor's console.
    #[arg(long, value_name = "SECONDS", default_value_t = 0, allow_negative_numbers = true, value_parser = wait_seconds)]
    pub(crate) wait_for_consent: u64,
    /// Skip the live connection tests.
    #[arg(long)]
    pub(crate) skip_checks: bool,
    /// Confirm that at least one administrator of the service still signs in with a password
    /// (not single sign-on), so a broken SSO cannot lock everyone out. SAML setups need it to
    /// finish with exit code 0.
    #[arg(long)]
    pub(crate) confirm_password_admin: bool,
    /// Take over an app of the setup that someone else also holds (exit code 13 lists its
    /// owners, credentials and redirect URIs): they are removed, each journaled (Undo puts
    /// owners and redirect URIs back), then the setup goes on.
    #[arg(long)]
    pub(crate) adopt: bool,
    /// With --adopt: keep this owner (object id), credential (key id) or redirect URI instead
    /// of removing it (repeat for several).
    #[arg(long, value_name = "ID", requires = "adopt", value_parser = keepable)]
    pub(crate) adopt_keep: Vec<String>,
}

/// Which setup: the provider and its inputs (for commands that change no settings).
#[derive(Args)]
pub(crate) struct Which {
    /// The provider, e.g. cloudflare or pomerium (see `entra-setup providers`).
    #[arg(long)]
    pub(crate) provider: String,
    /// A provider input, e.g. --input team=acme (repeat for several).
    #[arg(long = "input", value_name = "KEY=VALUE")]
    pub(crate) inputs: Vec<String>,
    #[command(flatten)]
    pub(crate) conn: Conn,
}

#[derive(Args)]
pub(crate) struct RetireArgs {
    #[command(flatten)]
    pub(crate) target: Which,
    /// The key id of the secret to keep (a GUID): the new one, which the provider uses now.
    #[arg(long, value_name = "KEY_ID", value_parser = key_id)]
    pub(crate) keep: String,
    #[arg(long)]
    pub(crate) yes: bool,
}

#[derive(Args)]
pub(crate) struct ActivateArgs {
    #[command(flatten)]
    pub(crate) target: Which,
    /// The SHA-1 thumbprint of the new certificate (40 hex digits).
    #[arg(long, value_name = "THUMBPRINT")]
    pub(crate) thumbprint: String,
    #[arg(long)]
    pub(crate) yes: bool,
}

#[derive(Args)]
pub(crate) struct RetireCertificatesArgs {
    #[command(flatten)]
    pub(crate) target: Which,
    #[arg(long)]
    pub(crate) yes: bool,
}

#[derive(Args)]
pub(crate) struct UndoArgs {
    #[command(flatten)]
    pub(crate) target: Which,
    #[arg(long)]
    pub(crate) yes: bool,
}
