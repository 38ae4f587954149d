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
use entra_setup_core::checks::Status;
use entra_setup_core::cloud::CloudChoice;
use entra_setup_core::keychain::{MemoryStore, OsKeychain, SecretStore};
use entra_setup_core::people;
use entra_setup_core::provider;
use entra_setup_core::saml;
use entra_setup_core::session::{self, AccountRecord, Context, Session, SignInRequest};
use entra_setup_core::setup::apply::{ApplyEvent, ApplyOptions};
use entra_setup_core::setup::flow::{self, Prepared, SetupError};
use entra_setup_core::setup::journal::{self, Journal};
use entra_setup_core::setup::plan::Change;
use entra_setup_core::setup::run::Run;
use entra_setup_core::setup::sync::ScimToken;
use entra_setup_core::setup::{found, secrets, status, undo, Intent, ScimIntent};
use entra_setup_core::{ExposeSecret, SecretString};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Everything a command prints goes through these: a control character (an escape sequence, a
/// backspace, a bidi override) that came from the command line, a file or the network never
/// reaches the terminal as it is.
macro_rules! outln {
    () => { println!() };
    ($($t:tt)*) => { println!("{}", entra_setup_core::redact::without_controls(&format!($($t)*))) };
}
macro_rules! errln {
    () => { eprintln!() };
    ($($t:tt)*) => { eprintln!("{}", entra_setup_core::redact::without_controls(&format!($($t)*))) };
}
macro_rules! err {
    ($($t:tt)*) => { eprint!("{}", entra_setup_core::redact::without_controls(&format!($($t)*))) };
}

mod apply;
mod args;
mod inputs;
mod manage;
mod print;
mod signin;
mod verify;

use apply::*;
use args::*;
use inputs::*;
use manage::*;
use print::*;
use signin::*;
use verify::*;

/// A failure with its exit code.
struct Fail(u8, String);

impl<E: std::fmt::Display> From<(u8, E)> for Fail {
    fn from((code, e): (u8, E)) -> Self {
        Fail(code, e.to_string())
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("ENTRA_SETUP_LOG"))
        .with_writer(entra_setup_core::redact::Redacting(std::io::stderr))
        .init();
    let wants_json = std::env::args_os().any(|a| a == "--json");
    if let Err(Fail(code, message)) = arguments_in_bounds() {
        return fail(code, &message, wants_json);
    }
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
            let message = usage_message(&e);
            if wants_json {
                outln!(
                    "{}",
                    json!({"error": {"exitCode": 2, "kind": "usage", "message": message.trim()}})
                );
            }
            err!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            errln!("entra-setup: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let checked = cli
        .cmd
        .conn()
        .map_or(Ok(()), |c| data_dir(c).map(|_| ()))
        // Every profile folder is read (and a bad one refused) before the command signs in.
        .and_then(|()| cli.cmd.conn().map_or(Ok(()), |_| catalogue().map(|_| ())))
        .and_then(|()| match cli.cmd {
            Cmd::Providers => Ok(()),
            _ => proxies_well_formed(),
        });
    if let Err(Fail(code, message)) = checked {
        return fail(code, &message, wants_json);
    }
    let result = runtime.block_on(async {
        match &cli.cmd {
            Cmd::Providers => providers(),
            Cmd::Plan(t) => Box::pin(plan(t)).await,
            Cmd::Apply(a) => Box::pin(apply(a)).await,
            Cmd::Undo(u) => Box::pin(undo_cmd(u)).await,
            Cmd::RetireSecrets(r) => Box::pin(retire_cmd(r)).await,
            Cmd::ActivateCertificate(a) => {
                Box::pin(certificate_cmd(&a.target, Some(&a.thumbprint), a.yes)).await
            }
            Cmd::RetireCertificates(r) => Box::pin(certificate_cmd(&r.target, None, r.yes)).await,
            Cmd::Status(a) => Box::pin(status_cmd(a)).await,
            Cmd::VerifyScim(v) => verify_scim(v).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(code, message)) => fail(code, &message, wants_json),
    }
}

/// Clap's message for a usage error, without echoing what was typed as it is: a refused value
/// is named by its flag and described by the check's own message (which shows it shortened,
/// without control characters); any other line that quotes input is cut to 300 characters.
/// One live test as the CLI prints it: `PASS title: detail Fix: …`.
pub(crate) fn check_line(c: &entra_setup_core::checks::CheckResult) -> String {
    use entra_setup_core::checks::Status;
    format!(
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
    )
}

fn usage_message(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() == ErrorKind::ValueValidation {
        if let (Some(ContextValue::String(arg)), Some(why)) =
            (e.get(ContextKind::InvalidArg), std::error::Error::source(e))
        {
            let why = why.to_string();
            let why = why.trim_end_matches('.');
            return format!("error: {arg}: {why}.\n\nFor more information, try '--help'.\n");
        }
    }
    e.render()
        .to_string()
        .lines()
        .map(|l| entra_setup_core::redact::echo(l, 300))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Says why the command stopped (on stderr, and as JSON on stdout with --json).
fn fail(code: u8, message: &str, json: bool) -> ExitCode {
    if !message.is_empty() {
        errln!("entra-setup: {message}");
        if json {
            outln!(
                "{}",
                json!({"error": {"exitCode": code, "kind": exit_kind(code), "message": message}})
            );
        }
    }
    ExitCode::from(code)
}

/// The longest argument taken: a list of 256 redirect URIs of 256 characters fits; anything
/// longer is a pasted file, and would be echoed back whole by the parser.
const MAX_ARGUMENT_CHARS: usize = 65_536;

/// Refuses an argument over [`MAX_ARGUMENT_CHARS`] before the parser sees it.
fn arguments_in_bounds() -> Result<(), Fail> {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    for (i, text) in args.iter().enumerate().skip(1) {
        let n = text.chars().count();
        if n > MAX_ARGUMENT_CHARS {
            let which = match args.get(i - 1) {
                Some(flag) if i > 1 && flag.starts_with("--") => format!("the value of {flag}"),
                _ => format!("argument {i}"),
            };
            return Err(Fail(
                2,
                format!(
                    "{} ('{}') is {n} characters long; at most {MAX_ARGUMENT_CHARS} are taken: put long values in a file (e.g. --token-file, --sp-metadata) or shorten it.",
                    entra_setup_core::redact::echo(&which, 60),
                    entra_setup_core::redact::echo(text, 40)
                ),
            ));
        }
    }
    Ok(())
}

/// The proxy variables in the environment, each a URL a proxy can be reached at: a malformed
/// one is named (its password masked) before the command acts, not met as "cannot reach".
fn proxies_well_formed() -> Result<(), Fail> {
    for var in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        if let Some(v) = std::env::var_os(var) {
            let v = v.to_string_lossy();
            if !v.trim().is_empty() {
                entra_setup_core::values::proxy(var, &v).map_err(|e| Fail(2, format!("{e}.")))?;
            }
        }
    }
    Ok(())
}
