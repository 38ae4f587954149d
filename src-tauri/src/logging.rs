//! Logs: a daily rolling file in the app's log directory (14 kept). Every line passes through the
//! core's redactor before it is written, as a second line of defence behind the redacting types.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::EnvFilter;

pub use entra_setup_core::redact::Redacting;
#[cfg(test)]
use entra_setup_core::redact::RedactingWriter;

/// Starts logging to `dir`. Keep the guard alive for the life of the app.
pub fn init(dir: &Path) -> Option<WorkerGuard> {
    // The folder is the user's alone: log lines name tenants, apps and people.
    entra_setup_core::files::private_dir(dir).ok()?;
    let appender = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix("entra-setup")
        .filename_suffix("log")
        .max_log_files(14)
        .build(dir)
        .ok()?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = EnvFilter::try_from_env("ENTRA_SETUP_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,entra_setup_core=debug,entra_setup_app=debug"));
    let result = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(Redacting(writer))
        .try_init();
    result.ok().map(|()| guard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn redacts_before_writing() {
        let mut out = vec![];
        let mut w = RedactingWriter(&mut out);
        w.write_all(b"token exchanged refresh_token=0.AVEAxyz123&scope=x eyJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiJ4In0.c2ln\n").unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("0.AVEAxyz123"), "{text}");
        assert!(!text.contains("eyJ0aWQiOiJ4In0"), "{text}");
        assert!(text.contains("scope=x"));
    }
}
