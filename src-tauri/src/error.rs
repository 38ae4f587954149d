//! The one error type that crosses IPC. Its `kind` is what the UI branches on; `message` is the
//! core's plain-language explanation; Graph errors keep their code and request ids for details.

use entra_setup_core::auth::AuthError;
use entra_setup_core::graph::GraphError;
use entra_setup_core::session::SessionError;
use serde::Serialize;

#[derive(Debug, Serialize, specta::Type, thiserror::Error)]
#[serde(tag = "kind", content = "detail", rename_all = "camelCase")]
pub enum IpcError {
    /// Bad input: `field` names the input to fix.
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// The admin cancelled.
    #[error("Cancelled.")]
    Cancelled,
    /// Sign-in failed; `code` is the OAuth error and `aadsts` Microsoft's code when known.
    #[error("{message}")]
    #[serde(rename_all = "camelCase")]
    Auth {
        message: String,
        code: Option<String>,
        aadsts: Option<u32>,
    },
    /// Microsoft Graph refused a call.
    #[error("{}", .0.message)]
    Graph(Box<GraphFailure>),
    #[error("{message}")]
    Network { message: String },
    /// The provider's own API (a push) refused or answered oddly; `status` is its HTTP status.
    #[error("{message}")]
    Provider {
        message: String,
        status: Option<u16>,
    },
    #[error("{message}")]
    Keychain { message: String },
    #[error("{message}")]
    Internal { message: String },
    /// Some provider inputs are wrong; one message per field.
    #[error("{}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "))]
    Inputs {
        errors: Vec<entra_setup_core::provider::InputError>,
    },
    /// The tenant or the admin's roles do not allow the setup (the message says what to do).
    #[error("{message}")]
    Blocked { message: String },
    /// Applying stopped part-way; running it again resumes. `cause` is Graph's answer to the
    /// step that failed (its code, request-id and client-request-id), when Graph gave one.
    #[error("{message}")]
    Apply {
        message: String,
        cause: Option<Box<GraphFailure>>,
    },
    /// A step that needs a signed-in admin was called without one.
    #[error("Sign in first.")]
    NotSignedIn,
}

/// A Graph error as the UI shows it: the plain message, and the codes and ids for the details.
#[derive(Debug, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct GraphFailure {
    pub message: String,
    pub code: String,
    pub status: u16,
    pub request_id: Option<String>,
    pub client_request_id: String,
    pub method: String,
    pub path: String,
}

impl From<entra_setup_core::push::PushError> for IpcError {
    fn from(e: entra_setup_core::push::PushError) -> Self {
        use entra_setup_core::push::PushError;
        let message = e.to_string();
        match e {
            PushError::Network(_) => Self::Network { message },
            PushError::Refused { status, .. } | PushError::Unexpected { status, .. } => {
                Self::Provider {
                    message,
                    status: Some(status),
                }
            }
            PushError::Prepare(_) => Self::Internal { message },
        }
    }
}

impl From<AuthError> for IpcError {
    fn from(e: AuthError) -> Self {
        let message = e.to_string();
        match &e {
            AuthError::InvalidTenant { .. } => Self::Invalid {
                field: "tenant".into(),
                message,
            },
            AuthError::Cloud(_) => Self::Invalid {
                field: "cloud".into(),
                message,
            },
            AuthError::Cancelled => Self::Cancelled,
            AuthError::Network { .. } => Self::Network { message },
            AuthError::Keychain(_) => Self::Keychain { message },
            AuthError::Denied { error, aadsts, .. } | AuthError::Server { error, aadsts, .. } => {
                Self::Auth {
                    message,
                    code: Some(error.clone()),
                    aadsts: *aadsts,
                }
            }
            other => Self::Auth {
                message,
                code: Some(auth_code(other).into()),
                aadsts: None,
            },
        }
    }
}

fn auth_code(e: &AuthError) -> &'static str {
    match e {
        AuthError::UnknownTenant { .. } => "unknown_tenant",
        AuthError::TimedOut { .. } => "timed_out",
        AuthError::StateMismatch => "state_mismatch",
        AuthError::DeviceCodeExpired => "expired_token",
        AuthError::DeviceCodeDeclined => "authorization_declined",
        AuthError::SessionExpired { .. } => "session_expired",
        AuthError::ConsentRequired { .. } => "consent_required",
        AuthError::Browser(_) => "browser",
        AuthError::InvalidIdToken(_) => "invalid_id_token",
        _ => "protocol",
    }
}

impl GraphFailure {
    fn of(a: &entra_setup_core::graph::ApiError) -> Self {
        Self {
            message: a.explanation(),
            code: a.code.clone(),
            status: a.status,
            request_id: a.request_id.clone(),
            client_request_id: a.client_request_id.clone(),
            method: a.method.clone(),
            path: a.path.clone(),
        }
    }
}

impl IpcError {
    /// The service's SAML metadata could not be imported.
    pub fn sp_metadata(e: entra_setup_core::saml::ImportError) -> Self {
        Self::Invalid {
            field: "sp_metadata".into(),
            message: format!("The metadata cannot be used: {e}."),
        }
    }

    /// An apply that stopped part-way, keeping Graph's codes and ids of the failed step.
    pub fn apply(e: &entra_setup_core::setup::apply::ApplyError) -> Self {
        use entra_setup_core::setup::apply::ApplyError;
        let cause = match e {
            ApplyError::Step { source, .. } => source.api().map(|a| Box::new(GraphFailure::of(a))),
            _ => None,
        };
        Self::Apply {
            message: e.to_string(),
            cause,
        }
    }
}

impl From<GraphError> for IpcError {
    fn from(e: GraphError) -> Self {
        match e {
            GraphError::Api(a) => Self::Graph(Box::new(GraphFailure::of(&a))),
            GraphError::Auth(a) => a.into(),
            e @ GraphError::Network { .. } => Self::Network {
                message: e.to_string(),
            },
            e @ GraphError::Decode { .. } => Self::Internal {
                message: e.to_string(),
            },
            GraphError::Refused(message) => Self::Blocked { message },
        }
    }
}

impl From<SessionError> for IpcError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Auth(a) => a.into(),
            SessionError::Graph(g) => g.into(),
        }
    }
}

impl From<entra_setup_core::keychain::KeychainError> for IpcError {
    fn from(e: entra_setup_core::keychain::KeychainError) -> Self {
        Self::Keychain {
            message: e.to_string(),
        }
    }
}

impl From<entra_setup_core::setup::run::RunError> for IpcError {
    fn from(e: entra_setup_core::setup::run::RunError) -> Self {
        use entra_setup_core::setup::flow::RetireFailed;
        use entra_setup_core::setup::run::RunError;
        let message = e.to_string();
        match e {
            RunError::NoSecret
            | RunError::OutputNeedsSecret
            | RunError::NoPush(_)
            | RunError::NothingToRetire
            | RunError::NotYet(_)
            | RunError::SamlMetadata(_) => Self::Blocked { message },
            RunError::NoOutput(_) => Self::Invalid {
                field: "output".into(),
                message,
            },
            RunError::PushInputs(errors) => Self::Inputs { errors },
            RunError::Push(p) => p.into(),
            RunError::Keychain(k) => k.into(),
            RunError::Graph(g) | RunError::Retire(RetireFailed::Graph(g)) => g.into(),
            RunError::Retire(RetireFailed::Apply(f)) => Self::apply(&f.error),
            RunError::Retire(RetireFailed::Retire(_)) => Self::Apply {
                message,
                cause: None,
            },
            RunError::Render(_) | RunError::Write(..) => Self::Internal { message },
            RunError::NoNewCertificate => Self::Blocked { message },
            RunError::Certificate(c) => match c {
                entra_setup_core::setup::flow::CertificateFailed::Graph(g) => g.into(),
                entra_setup_core::setup::flow::CertificateFailed::Apply(f) => Self::apply(&f.error),
                entra_setup_core::setup::flow::CertificateFailed::Certificate(_) => {
                    Self::Blocked { message }
                }
            },
        }
    }
}

impl From<entra_setup_core::setup::test_sign_in::TestSignInError> for IpcError {
    fn from(e: entra_setup_core::setup::test_sign_in::TestSignInError) -> Self {
        use entra_setup_core::setup::test_sign_in::TestSignInError;
        let message = e.to_string();
        match e {
            TestSignInError::Auth(a) => a.into(),
            TestSignInError::Graph(g) => g.into(),
            TestSignInError::Response(_) => Self::Auth {
                message,
                code: Some("responseRefused".into()),
                aadsts: None,
            },
            TestSignInError::RedirectNotAccepted { .. } => Self::Auth {
                message,
                code: Some("redirectNotAccepted".into()),
                aadsts: Some(50011),
            },
            TestSignInError::NothingToTest => Self::Blocked { message },
            TestSignInError::Journal(_) => Self::Internal { message },
        }
    }
}

impl From<entra_setup_core::setup::sync::SyncError> for IpcError {
    fn from(e: entra_setup_core::setup::sync::SyncError) -> Self {
        use entra_setup_core::setup::sync::SyncError;
        match e {
            SyncError::Graph(g) => g.into(),
            e @ (SyncError::NoScim(_) | SyncError::Journal(_)) => Self::Blocked {
                message: e.to_string(),
            },
        }
    }
}
