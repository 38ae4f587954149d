//! Graph errors keep Microsoft's `code`, `message` and `request-id`, so the UI can show them in
//! the details and a support engineer can find the request.

use serde::{Deserialize, Serialize};

use crate::auth::AuthError;

/// An error answer from Microsoft Graph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
    pub client_request_id: String,
    pub date: Option<String>,
    pub method: String,
    pub path: String,
}

impl ApiError {
    /// What the error means for the admin, in plain words.
    pub fn explanation(&self) -> String {
        match (self.status, self.code.as_str()) {
            (403, "Authorization_RequestDenied") => "You are not allowed to do this: either your account lacks the directory role it needs, or the wizard has not been granted the permission. Check your roles on the summary screen.".into(),
            (403, "AadPremiumLicenseRequired") => "This needs a Microsoft Entra ID P2 (or Governance) licence, which the tenant does not have.".into(),
            (403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant") => "This report needs Microsoft Entra ID P1 or P2; the tenant is on the Free tier.".into(),
            (404, _) => "Microsoft Graph could not find the object. If it was just created, it may still be replicating; try again in a minute.".into(),
            (429, _) => "Microsoft Graph is throttling requests. Wait a moment and try again.".into(),
            (401, _) => "Your sign-in is no longer accepted by Microsoft Graph. Sign in again.".into(),
            (s, _) if s >= 500 => "Microsoft Graph had a temporary problem. Try again shortly.".into(),
            _ => format!("Microsoft Graph refused the request: {}", self.message),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (HTTP {} {} on {} {}",
            self.explanation(),
            self.status,
            self.code,
            self.method,
            self.path
        )?;
        if let Some(r) = &self.request_id {
            write!(f, ", request-id {r}")?;
        }
        write!(f, ")")
    }
}

/// Anything a Graph call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("{0}")]
    Api(Box<ApiError>),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("Could not reach Microsoft Graph for {method} {path} ({detail}). Check your network connection and proxy settings. client-request-id {client_request_id}")]
    Network {
        method: String,
        path: String,
        detail: String,
        client_request_id: String,
    },
    #[error("Microsoft Graph's answer to {method} {path} could not be read ({detail}). request-id {}", request_id.as_deref().unwrap_or("none"))]
    Decode {
        method: String,
        path: String,
        detail: String,
        request_id: Option<String>,
    },
    /// The wizard refused to send a request: what Graph showed makes it unsafe (Undo finding
    /// an app that is not the wizard's). The message says why and what to do.
    #[error("{0}")]
    Refused(String),
}

impl GraphError {
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(a) => Some(a.as_ref()),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        self.api().map(|a| a.status)
    }

    /// The request may or may not have been carried out: the connection broke after it was
    /// sent, or a server or gateway failed (500, 502, 504, or 503 without Retry-After). A
    /// create that ends like this must be reconciled by reading state, never blindly re-sent.
    pub fn ambiguous(&self) -> bool {
        match self {
            Self::Network { .. } => true,
            Self::Api(a) => matches!(a.status, 500 | 502 | 503 | 504),
            _ => false,
        }
    }
}

/// Graph's error body: `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.
#[derive(Deserialize)]
pub(crate) struct ErrorBody {
    pub error: ErrorInner,
}

#[derive(Deserialize)]
pub(crate) struct ErrorInner {
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, rename = "innerError")]
    pub inner_error: Option<InnerError>,
}

#[derive(Deserialize)]
pub(crate) struct InnerError {
    pub date: Option<String>,
    #[serde(rename = "request-id")]
    pub request_id: Option<String>,
}
