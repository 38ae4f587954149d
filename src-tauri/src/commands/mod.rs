//! Tauri commands, one file per wizard step. Each pulls state, calls the core, maps the error.

pub mod app;
pub mod apply;
pub mod choose;
pub mod done;
pub mod names;
pub mod review;
pub mod scim;
pub mod signin;
pub mod vendor;
