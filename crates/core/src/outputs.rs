//! What the provider gets: rendered settings (API bodies, Terraform, YAML), a direct push to the
//! provider's API where it has one, a calendar reminder for the secret's expiry, links to every
//! object in the Azure portal, and the Done step's warnings. The secret is filled in only at the
//! moment of hand-over; everything shown on screen has it masked.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::cloud::Cloud;
use crate::preflight::Preflight;
use crate::provider::{self, OutputFormat, Provider};
use crate::tenant::{Advice, Link, Severity};

/// Shown where the secret goes in on-screen renderings.
pub const SECRET_MASK: &str = "<client secret: use Copy or Save to get it>";

/// An output as the Done step shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct Rendered {
    pub id: String,
    pub title: String,
    pub help: String,
    pub format: OutputFormat,
    pub file_name: Option<String>,
    /// The text with the secret masked.
    pub text: String,
    pub contains_secret: bool,
}

/// The values every output may use (without the secret).
pub fn values(
    cloud: &Cloud,
    tenant_id: &str,
    client_id: &str,
    app_name: &str,
    inputs: &BTreeMap<String, String>,
    secret_end: Option<DateTime<Utc>>,
) -> BTreeMap<String, String> {
    let mut v = inputs.clone();
    v.insert("tenant_id".into(), tenant_id.into());
    v.insert("client_id".into(), client_id.into());
    v.insert(
        "authority".into(),
        cloud.authority.as_str().trim_end_matches('/').into(),
    );
    v.insert("app_name".into(), app_name.into());
    // What a generic OpenID Connect client is configured with.
    v.insert(
        "issuer".into(),
        format!(
            "{}/{tenant_id}/v2.0",
            cloud.authority.as_str().trim_end_matches('/')
        ),
    );
    v.insert("discovery_url".into(), cloud.discovery_url(tenant_id));
    v.insert(
        "secret_expiry".into(),
        secret_end
            .map(|e| e.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
    );
    v
}

/// Why an output could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    #[error("{provider} has no output '{id}'")]
    NoOutput { provider: String, id: String },
    #[error("the output '{id}' is made from {list}, and this setup has none")]
    NothingListed { id: String, list: String },
    #[error("the output '{id}' names a value the setup does not have: {missing}")]
    Render {
        id: String,
        missing: provider::MissingValue,
    },
}

/// Renders an output. A line that uses a list value (see [`Provider::list_values`]) is written
/// once per item; with no items the output does not apply to this setup.
fn render_one(
    p: &Provider,
    o: &provider::OutputSpec,
    values: &BTreeMap<String, String>,
) -> Result<String, OutputError> {
    let lists = p.list_values();
    let escape = |v: &str| provider::escape_quoted(o.format, v);
    let mut out = String::new();
    for line in o.template.trim_start_matches('\n').split_inclusive('\n') {
        let used = provider::placeholders(line);
        let list = used.iter().find(|n| lists.contains(n));
        let rendered = match list {
            None => provider::render(line, values, escape),
            Some(name) => {
                let items = provider::list_items(values.get(name).map_or("", String::as_str));
                if items.is_empty() {
                    return Err(OutputError::NothingListed {
                        id: o.id.clone(),
                        list: name.clone(),
                    });
                }
                items
                    .into_iter()
                    .map(|item| {
                        let mut one = values.clone();
                        one.insert(name.clone(), item);
                        provider::render(line, &one, escape)
                    })
                    .collect::<Result<String, _>>()
            }
        }
        .map_err(|missing| OutputError::Render {
            id: o.id.clone(),
            missing,
        })?;
        out.push_str(&rendered);
    }
    Ok(out)
}

/// Every output with the secret masked.
pub fn render_all(p: &Provider, values: &BTreeMap<String, String>) -> Vec<Rendered> {
    let mut masked = values.clone();
    masked.insert("client_secret".into(), SECRET_MASK.into());
    p.outputs
        .iter()
        .filter_map(|o| {
            let text = render_one(p, o, &masked).ok()?;
            Some(Rendered {
                id: o.id.clone(),
                title: o.title.clone(),
                help: o.help.clone(),
                format: o.format,
                file_name: o.file_name.clone(),
                text,
                contains_secret: o.contains_secret,
            })
        })
        .collect()
}

/// One output with the real secret in it, for hand-over only.
pub fn render_with_secret(
    p: &Provider,
    output_id: &str,
    values: &BTreeMap<String, String>,
    secret: &SecretString,
) -> Result<SecretString, OutputError> {
    let o = p
        .outputs
        .iter()
        .find(|o| o.id == output_id)
        .ok_or_else(|| OutputError::NoOutput {
            provider: p.name.clone(),
            id: output_id.to_string(),
        })?;
    let mut v = values.clone();
    v.insert("client_secret".into(), secret.expose_secret().to_string());
    render_one(p, o, &v).map(SecretString::from)
}

/// Writes a hand-over file that may hold the secret: created fresh, readable by the owner only.
pub fn write_private_file(path: &std::path::Path, contents: &SecretString) -> std::io::Result<()> {
    crate::files::write_atomic(path, contents.expose_secret().as_bytes(), true)
}

/// Links to every object the wizard created, in the Azure portal of the cloud.
pub fn portal_links(cloud: &Cloud, app_id: &str, sp_id: Option<&str>) -> Vec<Link> {
    let reg = |blade: &str| {
        cloud.portal_link(&format!(
            "#view/Microsoft_AAD_RegisteredApps/ApplicationMenuBlade/~/{blade}/appId/{app_id}"
        ))
    };
    let mut links = vec![
        Link {
            label: "App registration".into(),
            url: reg("Overview"),
        },
        Link {
            label: "API permissions".into(),
            url: reg("CallAnAPI"),
        },
        Link {
            label: "Certificates & secrets".into(),
            url: reg("Credentials"),
        },
        Link {
            label: "Token configuration".into(),
            url: reg("TokenConfiguration"),
        },
    ];
    if let Some(sp) = sp_id {
        let ent = |blade: &str| {
            cloud.portal_link(&format!("#view/Microsoft_AAD_IAM/ManagedAppMenuBlade/~/{blade}/objectId/{sp}/appId/{app_id}"))
        };
        links.push(Link {
            label: "Enterprise app".into(),
            url: ent("Overview"),
        });
        links.push(Link {
            label: "Users and groups".into(),
            url: ent("Users"),
        });
    }
    links
}

/// An iCalendar reminder two weeks before the secret expires.
pub fn expiry_reminder(app_name: &str, key_id: &str, end: DateTime<Utc>) -> String {
    let remind = (end - Duration::days(14)).format("%Y%m%d");
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
    let lines = [
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".into(),
        "PRODID:-//Entra Setup//Secret expiry//EN".into(),
        "BEGIN:VEVENT".into(),
        format!("UID:{key_id}@entra-setup"),
        format!("DTSTAMP:{stamp}"),
        format!("DTSTART;VALUE=DATE:{remind}"),
        format!("SUMMARY:Rotate the client secret of {app_name}"),
        format!(
            "DESCRIPTION:The Entra client secret of {app_name} expires on {}. Sign-in through the provider stops on that day. Re-run Entra Setup to rotate it without downtime.",
            end.format("%Y-%m-%d")
        ),
        "BEGIN:VALARM".into(),
        "ACTION:DISPLAY".into(),
        "DESCRIPTION:Rotate the Entra client secret".into(),
        "TRIGGER:-PT0M".into(),
        "END:VALARM".into(),
        "END:VEVENT".into(),
        "END:VCALENDAR".into(),
    ];
    let mut out = lines.join("\r\n");
    out.push_str("\r\n");
    out
}

/// When the provider's SCIM token expires: a warning within 30 days, else information.
pub fn scim_token_expiry_advice(
    expires: Option<chrono::NaiveDate>,
    today: chrono::NaiveDate,
) -> Option<Advice> {
    let d = expires?;
    let days = (d - today).num_days();
    Some(Advice {
        id: "scim_token_expiry".into(),
        severity: if days <= 30 { Severity::Warning } else { Severity::Info },
        title: format!("The SCIM token expires on {d} ({days} days)"),
        detail: "When it expires, Entra's provisioning gets 401 errors and quarantines the job. Before then, get a new token from the provider and run the wizard again to save it (the SCIM step).".into(),
        link: None,
    })
}

/// The provisioning warnings on Done: the token's expiry first, then the provider's advice.
pub fn scim_advice(p: &Provider, token_expires: Option<chrono::NaiveDate>) -> Vec<Advice> {
    scim_token_expiry_advice(token_expires, Utc::now().date_naive())
        .into_iter()
        .chain(
            p.scim
                .iter()
                .flat_map(|x| x.advice.iter())
                .map(Advice::from),
        )
        .collect()
}

impl From<&provider::WarningSpec> for Advice {
    fn from(w: &provider::WarningSpec) -> Self {
        Self {
            id: w.id.clone(),
            severity: w.severity,
            title: w.title.clone(),
            detail: w.detail.clone(),
            link: None,
        }
    }
}

/// The Done step's warnings.
pub fn done_advice(
    p: &Provider,
    preflight: Option<&Preflight>,
    secret_end: Option<DateTime<Utc>>,
) -> Vec<Advice> {
    let mut out = vec![Advice {
        id: "lockout".into(),
        severity: Severity::Warning,
        title: format!("Keep a password administrator in {}", p.name),
        detail: format!(
            "Before you make {} require Entra sign-in for everyone, keep at least one administrator who signs in with a local password (a break-glass account). If the secret expires or consent is removed, that account is how you get back in.",
            p.name
        ),
        link: None,
    }];
    if let Some(end) = secret_end {
        out.push(Advice {
            id: "secret_expiry".into(),
            severity: Severity::Warning,
            title: format!("The client secret expires on {}", end.format("%Y-%m-%d")),
            detail: format!("On that day sign-in to {} stops working. Save the calendar reminder, and re-run the wizard to rotate the secret before then.", p.name),
            link: None,
        });
    }
    if let Some(pf) = preflight {
        for a in &pf.advice {
            if ["upn_mail", "groups_overage", "guests"].contains(&a.id.as_str()) {
                out.push(a.clone());
            }
        }
    }
    for w in &p.warnings {
        out.push(Advice {
            id: w.id.clone(),
            severity: w.severity,
            title: w.title.clone(),
            detail: w.detail.clone(),
            link: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::CloudChoice;

    fn cf_values() -> (Provider, BTreeMap<String, String>) {
        let p = provider::find("cloudflare").unwrap();
        let cloud = Cloud::from_choice(&CloudChoice::Global).unwrap();
        let mut raw = BTreeMap::new();
        raw.insert("team".to_string(), "acme".to_string());
        // Validated as the wizard does: the choices take their defaults.
        let inputs = p.validate_inputs(&raw).unwrap();
        let v = values(
            &cloud,
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "00001111-aaaa-2222-bbbb-3333cccc4444",
            "Cloudflare Access (acme)",
            &inputs,
            None,
        );
        (p, v)
    }

    #[test]
    fn screen_renderings_never_hold_the_secret() {
        let (p, v) = cf_values();
        let shown = render_all(&p, &v);
        let api = shown.iter().find(|r| r.id == "api_body").unwrap();
        assert!(api.text.contains(SECRET_MASK));
        let body = render_with_secret(&p, "api_body", &v, &SecretString::from("s3cr\"et")).unwrap();
        let json: serde_json::Value = serde_json::from_str(body.expose_secret()).unwrap();
        assert_eq!(json["config"]["client_secret"], "s3cr\"et");
        assert_eq!(
            json["config"]["directory_id"],
            "72f988bf-86f1-41af-91ab-2d7cd011db47"
        );
        assert_eq!(json["type"], "azureAD");
        let tf = shown.iter().find(|r| r.id == "terraform").unwrap();
        assert!(tf.text.contains("var.entra_id_client_secret") && !tf.contains_secret);
    }

    #[test]
    fn the_reminder_is_two_weeks_ahead() {
        let end = DateTime::parse_from_rfc3339("2027-06-30T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let ics = expiry_reminder("Pomerium", "k1", end);
        assert!(ics.contains("DTSTART;VALUE=DATE:20270616"));
        assert!(ics.starts_with("BEGIN:VCALENDAR\r\n") && ics.ends_with("END:VCALENDAR\r\n"));
    }
}
