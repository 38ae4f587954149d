//! Tauri commands, one file per wizard step. Each pulls state, calls the core, maps the error.

pub mod app;
pub mod names;
pub mod setup;
pub mod signin;
