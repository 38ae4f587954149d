//! Signing the admin in: authorization code + PKCE through a loopback listener, device code as a
//! fallback, refresh tokens kept in the OS keychain, access tokens in memory per scope set.

mod browser;
mod discovery;
mod flow;
mod loopback;
mod tenant_ref;
pub mod token_source;

pub use browser::{BrowserOpener, FollowRedirects, OpenFuture, SystemBrowser};
pub use discovery::{discover, Discovery};
pub use flow::{
    sign_in, sign_in_on, IdClaims, Method, SignInEvent, SignInOptions, TokenSet, DEFAULT_TIMEOUT,
};
pub use loopback::LoopbackListener;
pub use tenant_ref::{is_guid, TenantRef};
pub use token_source::TokenSource;

use crate::keychain::KeychainError;

/// Microsoft Graph Command Line Tools: accepts dynamic consent to Graph scopes and loopback
/// redirects (reference §1c).
pub const DEFAULT_CLIENT_ID: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";

/// The OpenID Connect scopes every interactive sign-in asks for.
pub const OIDC_SCOPES: [&str; 3] = ["openid", "profile", "offline_access"];

/// Which wizard step a token is for; each asks only for what it needs (reference §1c).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepScopes {
    /// Tenant, roles, licence.
    SignIn,
    /// App registrations, service principals, secrets, app-management policy.
    RegisterApp,
    /// Delegated grants and app-role assignments.
    Consent,
    /// Reading users and groups for the sync preview and assignments.
    SyncMode,
    /// Provisioning jobs and logs.
    Scim,
}

impl StepScopes {
    /// The steps that set a provider up; `provisions` adds the Sync mode and SCIM steps.
    pub fn setup(provisions: bool) -> &'static [StepScopes] {
        if provisions {
            &[Self::RegisterApp, Self::Consent, Self::SyncMode, Self::Scim]
        } else {
            &[Self::RegisterApp, Self::Consent]
        }
    }

    pub fn scopes(self) -> &'static [&'static str] {
        match self {
            Self::SignIn => &[
                "User.Read",
                "RoleManagement.Read.Directory",
                "LicenseAssignment.Read.All",
            ],
            Self::RegisterApp => &[
                "Application.ReadWrite.All",
                "Policy.Read.All",
                "User.ReadBasic.All",
                "GroupMember.Read.All",
            ],
            Self::Consent => &[
                "AppRoleAssignment.ReadWrite.All",
                "DelegatedPermissionGrant.ReadWrite.All",
            ],
            Self::SyncMode => &["GroupMember.Read.All", "User.Read.All"],
            Self::Scim => &["Synchronization.ReadWrite.All", "AuditLog.Read.All"],
        }
    }
}

/// Extracts the `AADSTS<n>` code Microsoft puts at the start of error descriptions.
pub fn aadsts_code(description: &str) -> Option<u32> {
    let at = description.find("AADSTS")?;
    let digits: String = description[at + 6..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Everything that can go wrong while signing in, each with a message that says what to do.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("'{input}' is not a tenant the wizard can sign in to: {reason}")]
    InvalidTenant { input: String, reason: String },
    #[error("No Microsoft Entra tenant uses '{tenant}' in the {cloud} cloud. Check the spelling, or choose the cloud your tenant lives in (Global, US Government or China).")]
    UnknownTenant { tenant: String, cloud: String },
    #[error(transparent)]
    Cloud(#[from] crate::cloud::CloudError),
    #[error("Sign-in was cancelled.")]
    Cancelled,
    #[error("No answer came back from the browser within {minutes} minutes. If you closed the sign-in tab, start again, or use a device code instead.")]
    TimedOut { minutes: u64 },
    #[error("The browser returned a sign-in response that this wizard did not start (the 'state' value did not match), so it was rejected and nothing was signed in. Start the sign-in again.")]
    StateMismatch,
    #[error("{}", denied_message(error, description.as_deref()))]
    Denied {
        error: String,
        description: Option<String>,
        aadsts: Option<u32>,
    },
    #[error("The device code expired before sign-in was completed. Start again and enter the new code within the time shown.")]
    DeviceCodeExpired,
    #[error("The sign-in request was declined on the device-login page. Start again if that was a mistake.")]
    DeviceCodeDeclined,
    #[error("Microsoft Entra refused the request ({error}{}): {}", aadsts.map(|c| format!(", AADSTS{c}")).unwrap_or_default(), description.as_deref().unwrap_or("no description"))]
    Server {
        error: String,
        description: Option<String>,
        aadsts: Option<u32>,
    },
    #[error("Your saved sign-in is no longer valid ({reason}). Sign in again.")]
    SessionExpired { reason: String },
    #[error("This step needs permissions you have not consented to yet: {scopes}. Sign in again to grant them.")]
    ConsentRequired { scopes: String },
    #[error("Could not reach {what}: {detail}. Check your network connection and proxy settings.")]
    Network { what: String, detail: String },
    #[error("Could not open the system browser: {0}. Copy the sign-in link into a browser yourself, or use a device code.")]
    Browser(String),
    #[error("The sign-in service answered in an unexpected way: {0}")]
    Protocol(String),
    #[error("The identity token could not be verified: {0}")]
    InvalidIdToken(String),
    #[error(transparent)]
    Keychain(#[from] KeychainError),
}

fn denied_message(error: &str, description: Option<&str>) -> String {
    let code = description.and_then(aadsts_code);
    let detail = description
        .map(|d| format!(" Microsoft said: {d}"))
        .unwrap_or_default();
    match (error, code) {
        ("access_denied", Some(65004)) | ("access_denied", None) => format!(
            "Sign-in was cancelled in the browser, or consent to the wizard's permissions was declined (access_denied). Nothing was changed. Start again and accept the permissions, or ask an administrator to consent for you.{detail}"
        ),
        ("consent_required", _) | (_, Some(65001)) => format!(
            "An administrator must consent to the wizard's permissions before you can continue (consent_required).{detail}"
        ),
        (_, Some(50020)) => format!("This account is not a member of the tenant. Sign in with an account from the tenant, or enter the tenant's domain.{detail}"),
        _ => format!("The browser sign-in failed ({error}).{detail}"),
    }
}

impl AuthError {
    /// The AADSTS code, when Microsoft sent one.
    pub fn aadsts(&self) -> Option<u32> {
        match self {
            Self::Denied { aadsts, .. } | Self::Server { aadsts, .. } => *aadsts,
            _ => None,
        }
    }
}

/// How long a token the identity platform issued is used: its `expires_in`, held between a
/// minute and a day (an endpoint answering a huge or zero lifetime cannot make the wizard keep a
/// token for ever, or overflow a date).
pub(crate) fn token_lifetime(expires_in: Option<std::time::Duration>) -> chrono::Duration {
    let secs = expires_in.map_or(3600, |d| d.as_secs()).clamp(60, 86_400);
    chrono::Duration::seconds(i64::try_from(secs).unwrap_or(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lifetimes_are_held_between_a_minute_and_a_day() {
        use std::time::Duration;
        assert_eq!(token_lifetime(None), chrono::Duration::hours(1));
        assert_eq!(
            token_lifetime(Some(Duration::from_secs(u64::MAX))),
            chrono::Duration::days(1)
        );
        assert_eq!(
            token_lifetime(Some(Duration::ZERO)),
            chrono::Duration::minutes(1)
        );
    }

    #[test]
    fn reads_aadsts_codes() {
        assert_eq!(
            aadsts_code("AADSTS65004: User declined to consent"),
            Some(65004)
        );
        assert_eq!(aadsts_code("no code here"), None);
    }

    #[test]
    fn denial_message_names_the_fix() {
        let e = AuthError::Denied {
            error: "access_denied".into(),
            description: Some("AADSTS65004: User declined".into()),
            aadsts: Some(65004),
        };
        let m = e.to_string();
        assert!(m.contains("declined") && m.contains("Start again"), "{m}");
    }
}
