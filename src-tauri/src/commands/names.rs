// The app's commands, in one list shared by build.rs (Tauri's ACL manifest) and the shell (a test
// checks it against the registered handlers), so a command cannot be registered but not allowed.
pub const COMMANDS: &[&str] = &[
    "app_info",
    "settings_get",
    "settings_set",
    "sign_in",
    "sign_in_demo",
    "sign_in_cancel",
    "resume_session",
    "sign_out",
    "open_link",
    "ui_ready",
];
