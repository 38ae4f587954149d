//! The desktop services the setup commands need — the OS clipboard (for secrets, see
//! [`crate::clipboard`]) and the save dialog — behind a runtime-agnostic state, so commands stay
//! plain functions (and testable under the mock runtime). The webview has no clipboard access
//! and no permission to use the dialog plugin itself.

use std::path::PathBuf;
use std::sync::Arc;

use tauri::{AppHandle, Runtime};
use tauri_plugin_dialog::DialogExt;

use crate::clipboard::SecretClipboard;

type Save = Arc<dyn Fn(String, tokio::sync::oneshot::Sender<Option<PathBuf>>) + Send + Sync>;
type Open = Arc<dyn Fn(tokio::sync::oneshot::Sender<Option<PathBuf>>) + Send + Sync>;

#[derive(Clone)]
pub struct Desktop {
    pub clipboard: Arc<SecretClipboard>,
    save_dialog: Save,
    open_dialog: Open,
}

impl Desktop {
    pub fn new<R: Runtime>(app: AppHandle<R>) -> Self {
        let (c, d) = (app.clone(), app);
        Self {
            clipboard: Arc::new(SecretClipboard::default()),
            save_dialog: Arc::new(move |name, tx| {
                c.dialog().file().set_file_name(&name).save_file(move |p| {
                    let _ = tx.send(p.and_then(|p| p.into_path().ok()));
                });
            }),
            open_dialog: Arc::new(move |tx| {
                d.dialog()
                    .file()
                    .add_filter("SAML metadata", &["xml"])
                    .pick_file(move |p| {
                        let _ = tx.send(p.and_then(|p| p.into_path().ok()));
                    });
            }),
        }
    }

    /// Asks which file to open; `None` if the admin cancels.
    pub async fn open_file(&self) -> Option<PathBuf> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (self.open_dialog)(tx);
        rx.await.ok().flatten()
    }

    /// Asks where to save a file named `name`; `None` if the admin cancels.
    pub async fn save_as(&self, name: &str) -> Option<PathBuf> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (self.save_dialog)(name.to_string(), tx);
        rx.await.ok().flatten()
    }
}
