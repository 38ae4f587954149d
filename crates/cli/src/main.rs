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
