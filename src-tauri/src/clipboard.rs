//! The OS clipboard for secrets. What the wizard copies is marked so that clipboard history,
//! cloud clipboard and clipboard managers leave it out (Windows:
//! `ExcludeClipboardContentFromMonitorProcessing`, `CanIncludeInClipboardHistory` and
//! `CanUploadToCloudClipboard`; macOS: `org.nspasteboard.ConcealedType`; Linux:
//! `x-kde-passwordManagerHint`), and it is cleared a minute later or when the app exits,
//! whichever comes first, if the clipboard still holds it (something the admin copied since
//! stays).

use std::sync::{Mutex, PoisonError};

use entra_setup_core::{ExposeSecret, SecretString};

/// How long a copied secret stays on the clipboard.
pub const CLEAR_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Default)]
pub struct SecretClipboard {
    /// Opened on first use. On X11 and Wayland the clipboard's contents are served by this
    /// process, so the handle lives as long as the app.
    os: Mutex<Option<arboard::Clipboard>>,
    /// What was copied last, to clear it only while the clipboard still holds it.
    copied: Mutex<Option<SecretString>>,
}

fn concealed(set: arboard::Set<'_>) -> arboard::Set<'_> {
    #[cfg(windows)]
    {
        use arboard::SetExtWindows;
        set.exclude_from_monitoring()
            .exclude_from_history()
            .exclude_from_cloud()
    }
    #[cfg(target_os = "macos")]
    {
        use arboard::SetExtApple;
        set.exclude_from_history()
    }
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        use arboard::SetExtLinux;
        set.exclude_from_history()
    }
}

impl SecretClipboard {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut arboard::Clipboard) -> Result<T, arboard::Error>,
    ) -> Result<T, String> {
        let mut os = self.os.lock().unwrap_or_else(PoisonError::into_inner);
        if os.is_none() {
            *os = Some(arboard::Clipboard::new().map_err(|e| e.to_string())?);
        }
        let clipboard = os.as_mut().ok_or("no clipboard")?;
        f(clipboard).map_err(|e| e.to_string())
    }

    /// Puts `text` on the clipboard, concealed from history and clipboard managers.
    pub fn copy(&self, text: &SecretString) -> Result<(), String> {
        self.with(|c| concealed(c.set()).text(text.expose_secret().to_string()))?;
        *self.copied.lock().unwrap_or_else(PoisonError::into_inner) = Some(text.clone());
        Ok(())
    }

    /// Clears the clipboard if it still holds what was copied last; true if it did.
    pub fn clear_if_holding(&self) -> bool {
        self.clear(None)
    }

    /// [`Self::clear_if_holding`], if what was copied last is `text` (a later copy has its
    /// own minute).
    pub fn clear_if_still(&self, text: &SecretString) -> bool {
        self.clear(Some(text))
    }

    fn clear(&self, only: Option<&SecretString>) -> bool {
        let mut copied = self.copied.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(secret) = copied.as_ref() else {
            return false;
        };
        if only.is_some_and(|t| t.expose_secret() != secret.expose_secret()) {
            return false;
        }
        let holds = self
            .with(|c| c.get_text())
            .is_ok_and(|t| t == secret.expose_secret());
        if holds {
            let _ = self.with(|c| c.clear());
        }
        *copied = None;
        holds
    }

    /// At exit: clears a secret still on the clipboard and lets go of the OS clipboard.
    pub fn close(&self) {
        self.clear_if_holding();
        self.os
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}
