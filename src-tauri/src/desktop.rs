//! The desktop services the setup commands need — the OS clipboard and the save dialog —
//! behind a runtime-agnostic state, so commands stay plain functions (and testable under the
//! mock runtime). The webview has no permission to use either plugin itself.

use std::path::PathBuf;
use std::sync::Arc;

use tauri::{AppHandle, Runtime};
use tauri_plugin_clipboard_manager::ClipboardExt;
use tauri_plugin_dialog::DialogExt;

type Write = Arc<dyn Fn(String) -> Result<(), String> + Send + Sync>;
type Read = Arc<dyn Fn() -> Option<String> + Send + Sync>;
type Save = Arc<dyn Fn(String, tokio::sync::oneshot::Sender<Option<PathBuf>>) + Send + Sync>;
type Open = Arc<dyn Fn(tokio::sync::oneshot::Sender<Option<PathBuf>>) + Send + Sync>;

#[derive(Clone)]
pub struct Desktop {
    write_clipboard: Write,
    read_clipboard: Read,
    save_dialog: Save,
    open_dialog: Open,
}

impl Desktop {
    pub fn new<R: Runtime>(app: AppHandle<R>) -> Self {
        let (a, b, c, d) = (app.clone(), app.clone(), app.clone(), app);
        Self {
            write_clipboard: Arc::new(move |text| {
                a.clipboard().write_text(text).map_err(|e| e.to_string())
            }),
            read_clipboard: Arc::new(move || b.clipboard().read_text().ok()),
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

    pub fn write_clipboard(&self, text: String) -> Result<(), String> {
        (self.write_clipboard)(text)
    }

    pub fn read_clipboard(&self) -> Option<String> {
        (self.read_clipboard)()
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
