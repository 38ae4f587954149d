//! The Entra setup wizard's behaviour, with no UI and no Tauri in it.
//!
//! The desktop shell, the CLI and the tests all drive this crate. Every endpoint (login
//! authority, Graph root) is injected through [`cloud::Cloud`], so national clouds, the simulated
//! tenant and Microsoft's global cloud take the same code path.

pub mod apis;
pub mod auth;
pub mod checks;
pub mod cloud;
pub mod endpoint;
pub mod files;
pub mod graph;
pub mod http;
pub mod keychain;
pub mod links;
pub mod outputs;
pub mod people;
pub mod preflight;
pub mod provider;
pub mod provisioning;
pub mod push;
pub mod redact;
pub mod saml;
pub mod scim;
pub mod session;
pub mod setup;
pub mod tenant;
pub mod values;
pub mod wait;

pub use secrecy::{ExposeSecret, SecretString};
