//! The one HTTP client configuration the wizard uses.

use std::time::Duration;

/// Builds the shared HTTP client: rustls, redirects off (following redirects from identity
/// endpoints opens the client to SSRF), bounded timeouts.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("entra-setup/", env!("CARGO_PKG_VERSION")))
        .build()
        // Building only fails when the TLS backend cannot initialise; fall back to defaults.
        .unwrap_or_else(|_| reqwest::Client::new())
}
