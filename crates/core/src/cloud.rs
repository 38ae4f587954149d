//! Microsoft clouds: where to sign in, where Graph lives, which portal to link to.

use serde::{Deserialize, Serialize};
use url::Url;

/// The cloud an admin picks. `Custom` points the wizard at any authority and Graph root, which is
/// how the simulated tenant is reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum CloudChoice {
    #[default]
    Global,
    /// US Government L4 (GCC High).
    UsGov,
    /// US Government L5 (DoD).
    UsGovDod,
    /// Microsoft Azure operated by 21Vianet.
    China,
    Custom {
        authority: String,
        graph: String,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CloudError {
    #[error("The {field} URL '{value}' is not usable: {reason}.")]
    InvalidUrl {
        field: &'static str,
        value: String,
        reason: crate::endpoint::EndpointError,
    },
    #[error("The {field} URL '{value}' must use https:// (plain http is only allowed for 127.0.0.1 or localhost).")]
    NotHttps { field: &'static str, value: String },
}

/// A resolved cloud: the hosts every request is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cloud {
    pub choice: CloudChoice,
    pub name: String,
    /// Login authority, e.g. `https://login.microsoftonline.com`, without a trailing slash.
    pub authority: Url,
    /// Graph root, e.g. `https://graph.microsoft.com`, without a trailing slash.
    pub graph_root: Url,
    /// Azure portal, e.g. `https://portal.azure.com`.
    pub portal: Url,
}

#[allow(clippy::expect_used)]
fn fixed(u: &str) -> Url {
    Url::parse(u).expect("built-in cloud URLs are valid")
}

fn custom_url(field: &'static str, value: &str) -> Result<Url, CloudError> {
    let trimmed = value.trim().trim_end_matches('/');
    crate::endpoint::parse(trimmed, crate::endpoint::Http::Loopback, false).map_err(|reason| {
        if matches!(
            reason,
            crate::endpoint::EndpointError::PlainHttp(_)
                | crate::endpoint::EndpointError::Scheme { .. }
        ) {
            CloudError::NotHttps {
                field,
                value: crate::redact::echo(value, 200),
            }
        } else {
            CloudError::InvalidUrl {
                field,
                value: crate::redact::echo(value, 200),
                reason,
            }
        }
    })
}

impl Cloud {
    /// Resolves a choice into URLs, validating custom ones.
    pub fn from_choice(choice: &CloudChoice) -> Result<Self, CloudError> {
        let (name, authority, graph, portal) = match choice {
            CloudChoice::Global => (
                "Global",
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com",
                "https://portal.azure.com",
            ),
            CloudChoice::UsGov => (
                "US Government (GCC High)",
                "https://login.microsoftonline.us",
                "https://graph.microsoft.us",
                "https://portal.azure.us",
            ),
            CloudChoice::UsGovDod => (
                "US Government (DoD)",
                "https://login.microsoftonline.us",
                "https://dod-graph.microsoft.us",
                "https://portal.azure.us",
            ),
            CloudChoice::China => (
                "China (21Vianet)",
                "https://login.partner.microsoftonline.cn",
                "https://microsoftgraph.chinacloudapi.cn",
                "https://portal.azure.cn",
            ),
            CloudChoice::Custom { authority, graph } => {
                let authority = custom_url("authority", authority)?;
                let graph_root = custom_url("Graph", graph)?;
                return Ok(Self {
                    choice: choice.clone(),
                    name: format!("Custom ({})", authority.host_str().unwrap_or_default()),
                    portal: fixed("https://portal.azure.com"),
                    authority,
                    graph_root,
                });
            }
        };
        Ok(Self {
            choice: choice.clone(),
            name: name.to_string(),
            authority: fixed(authority),
            graph_root: fixed(graph),
            portal: fixed(portal),
        })
    }

    fn join(base: &Url, path: &str) -> String {
        format!(
            "{}/{}",
            base.as_str().trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }

    /// `{authority}/{tenant}/v2.0/.well-known/openid-configuration`.
    /// The non-gallery application template's id in this cloud (reference §8b: US Government
    /// and China have their own).
    pub fn non_gallery_template(&self) -> &'static str {
        match self.choice {
            CloudChoice::UsGov | CloudChoice::UsGovDod => "4602d0b4-76bb-404b-bca9-2652e1a39c6d",
            CloudChoice::China => "5a532e38-1581-4918-9658-008dc27c1d68",
            CloudChoice::Global | CloudChoice::Custom { .. } => {
                crate::provider::NON_GALLERY_TEMPLATE
            }
        }
    }

    /// Whether Graph can add SAML token-signing certificates here (`addTokenSigningCertificate`
    /// exists in the global service only).
    pub fn adds_signing_certificates(&self) -> bool {
        matches!(
            self.choice,
            CloudChoice::Global | CloudChoice::Custom { .. }
        )
    }

    pub fn discovery_url(&self, tenant: &str) -> String {
        Self::join(
            &self.authority,
            &format!("{tenant}/v2.0/.well-known/openid-configuration"),
        )
    }

    /// The Graph v1.0 base, without a trailing slash.
    pub fn graph_v1(&self) -> String {
        Self::join(&self.graph_root, "v1.0")
    }

    /// A Graph scope qualified with this cloud's Graph host (`https://graph.microsoft.us/User.Read`);
    /// the OpenID Connect scopes stay as they are.
    pub fn graph_scope(&self, scope: &str) -> String {
        match scope {
            "openid" | "profile" | "offline_access" | "email" => scope.to_string(),
            s => Self::join(&self.graph_root, s),
        }
    }

    /// The authority is on this computer (the simulated tenant, or a local test identity
    /// provider): the "Entra" behind it can reach endpoints here too.
    pub fn on_this_computer(&self) -> bool {
        matches!(self.authority.host(), Some(url::Host::Domain("localhost")))
            || matches!(self.authority.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
            || matches!(self.authority.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
    }

    /// A stable short name for keychain keys.
    pub fn key(&self) -> String {
        match &self.choice {
            CloudChoice::Global => "global".into(),
            CloudChoice::UsGov => "usgov".into(),
            CloudChoice::UsGovDod => "usgovdod".into(),
            CloudChoice::China => "china".into(),
            CloudChoice::Custom { .. } => {
                format!("custom-{}", self.authority.host_str().unwrap_or_default())
            }
        }
        .replace(':', "-")
    }

    /// A link into the Azure portal, e.g. `#view/Microsoft_AAD_IAM/ActiveDirectoryMenuBlade/~/Overview`.
    pub fn portal_link(&self, fragment: &str) -> String {
        format!(
            "{}/{}",
            self.portal.as_str().trim_end_matches('/'),
            fragment.trim_start_matches('/')
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_clouds_have_their_own_non_gallery_template_and_no_certificate_api() {
        let id = |c: CloudChoice| Cloud::from_choice(&c).unwrap().non_gallery_template();
        assert_eq!(
            id(CloudChoice::Global),
            "8adf8e6e-67b2-4cf2-a259-e3dc5476c621"
        );
        assert_eq!(
            id(CloudChoice::UsGov),
            "4602d0b4-76bb-404b-bca9-2652e1a39c6d"
        );
        assert_eq!(
            id(CloudChoice::UsGovDod),
            "4602d0b4-76bb-404b-bca9-2652e1a39c6d"
        );
        assert_eq!(
            id(CloudChoice::China),
            "5a532e38-1581-4918-9658-008dc27c1d68"
        );
        assert!(!Cloud::from_choice(&CloudChoice::China)
            .unwrap()
            .adds_signing_certificates());
        assert!(Cloud::from_choice(&CloudChoice::Global)
            .unwrap()
            .adds_signing_certificates());
    }

    #[test]
    fn national_clouds_use_their_own_hosts() {
        let gov = Cloud::from_choice(&CloudChoice::UsGov).unwrap();
        assert_eq!(
            gov.graph_scope("User.Read"),
            "https://graph.microsoft.us/User.Read"
        );
        assert_eq!(gov.graph_scope("offline_access"), "offline_access");
        assert_eq!(
            gov.discovery_url("contoso.us"),
            "https://login.microsoftonline.us/contoso.us/v2.0/.well-known/openid-configuration"
        );
        let cn = Cloud::from_choice(&CloudChoice::China).unwrap();
        assert_eq!(
            cn.graph_v1(),
            "https://microsoftgraph.chinacloudapi.cn/v1.0"
        );
    }

    #[test]
    fn custom_clouds_need_https_except_on_loopback() {
        let ok = Cloud::from_choice(&CloudChoice::Custom {
            authority: "http://127.0.0.1:8080/".into(),
            graph: "http://127.0.0.1:8080".into(),
        })
        .unwrap();
        assert_eq!(ok.graph_v1(), "http://127.0.0.1:8080/v1.0");
        assert_eq!(ok.key(), "custom-127.0.0.1");
        let err = Cloud::from_choice(&CloudChoice::Custom {
            authority: "http://login.example.com".into(),
            graph: "https://g".into(),
        })
        .unwrap_err();
        assert!(err.to_string().contains("must use https://"), "{err}");
        let err = Cloud::from_choice(&CloudChoice::Custom {
            authority: "not a url".into(),
            graph: "https://g".into(),
        })
        .unwrap_err();
        assert!(err.to_string().contains("contains spaces"), "{err}");
        let err = Cloud::from_choice(&CloudChoice::Custom {
            authority: "https://x/?a=1".into(),
            graph: "https://g".into(),
        })
        .unwrap_err();
        assert!(err.to_string().contains("?query"), "{err}");
    }
}
