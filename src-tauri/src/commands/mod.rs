//! Tauri commands, one file per wizard step. Each pulls state, calls the core, maps the error.

pub mod app;
pub mod names;
pub mod scim;
pub mod setup;
pub mod signin;
