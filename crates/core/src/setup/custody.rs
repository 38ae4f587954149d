//! Who else holds an app the setup is about to trust with a secret, consent or application
//! permissions.
//!
//! Any member of a tenant may register apps by default, and the wizard finds its apps again by
//! a `uniqueName` anyone can predict. So an app found by that name (or by a temporary display
//! name after an interrupted instantiate) may have been made by someone else first: with his
//! own owners, secrets, federated credentials and redirect URIs. Granting that app consent or
//! Directory.Read.All, or adding a secret to it, would hand him the admin's token's power.
//!
//! Before any write, every app of the setup is read for its owners (app and service
//! principal), its credentials (secrets, certificates and federated credentials; on the
//! registration's service principal too) and its redirect URIs, and compared with what this
//! computer's journal knows the wizard made and what the profile produces. Anything else is a
//! difference; an app with differences is only written to after the admin adopts it, having
//! seen exactly those differences. Adoption removes the foreign owners, credentials and
//! redirect URIs the admin did not choose to keep, each journaled; Undo puts owners and
//! redirect URIs back (a removed secret cannot come back: Entra never returns its value).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::journal::{Event, Journal, ObjectKind};
use crate::auth::StepScopes;
use crate::graph::{GraphClient, GraphError};

/// An owner of an app or of its service principal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct ForeignOwner {
    pub id: String,
    pub display_name: String,
    pub user_principal_name: Option<String>,
    /// `applications/{id}` or `servicePrincipals/{id}`: what this owner owns.
    pub owns: String,
}

/// What kind of credential lets someone act as the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub enum CredentialKind {
    /// A client secret (passwordCredential).
    Secret,
    /// A certificate (keyCredential).
    Certificate,
    /// A federated identity credential: tokens of another identity provider (a CI pipeline,
    /// another cloud) accepted as this app's.
    Federated,
}

/// A credential of an app or of its service principal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct ForeignCredential {
    pub kind: CredentialKind,
    /// The key id (secrets, certificates) or the federated credential's id.
    pub id: String,
    pub name: String,
    /// The secret's first characters, a certificate's usage, or a federated credential's
    /// issuer and subject.
    pub hint: String,
    pub end: Option<chrono::DateTime<chrono::Utc>>,
    /// `applications/{id}` or `servicePrincipals/{id}`.
    pub on: String,
}

/// An app of the setup that holds something the wizard did not put there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct ForeignApp {
    /// The app as the provider's profile names it (`sign_in`, `provisioning`, …).
    pub app: String,
    pub display_name: String,
    pub app_object_id: String,
    pub app_id: String,
    /// Made (or adopted) by a setup this computer's journal records: the differences appeared
    /// later. False: someone else made the app, and the wizard found it by its name.
    pub known_here: bool,
    pub owners: Vec<ForeignOwner>,
    pub credentials: Vec<ForeignCredential>,
    /// Redirect URIs (or Reply URLs) the profile does not produce.
    pub redirect_uris: Vec<String>,
}

impl ForeignApp {
    /// Every difference in one line each, for a terminal or a log.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![];
        for o in &self.owners {
            out.push(format!(
                "owner: {} ({}), id {}",
                echo(&o.display_name),
                echo(
                    o.user_principal_name
                        .as_deref()
                        .unwrap_or("no sign-in name")
                ),
                o.id
            ));
        }
        for c in &self.credentials {
            let kind = match c.kind {
                CredentialKind::Secret => "client secret",
                CredentialKind::Certificate => "certificate",
                CredentialKind::Federated => "federated credential",
            };
            let end = c
                .end
                .map(|e| format!(", ends {}", e.format("%Y-%m-%d")))
                .unwrap_or_default();
            out.push(format!(
                "{kind}: \"{}\" ({}{end}), id {}",
                echo(&c.name),
                echo(&c.hint),
                c.id
            ));
        }
        for u in &self.redirect_uris {
            out.push(format!(
                "redirect URI the service does not use: {}",
                echo(u)
            ));
        }
        out
    }

    /// The ids an admin may name to keep when adopting (owners, credentials, URIs).
    pub fn keepable(&self) -> Vec<String> {
        self.owners
            .iter()
            .map(|o| o.id.clone())
            .chain(self.credentials.iter().map(|c| c.id.clone()))
            .chain(self.redirect_uris.iter().cloned())
            .collect()
    }
}

fn echo(s: &str) -> String {
    crate::redact::echo(s, 120)
}

/// The apps of a setup that are not the wizard's alone: nothing is written to them before
/// the admin adopts them.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", foreign_message(.0))]
pub struct NotAdopted(pub Vec<ForeignApp>);

fn foreign_message(apps: &[ForeignApp]) -> String {
    let mut out = String::new();
    for a in apps {
        let who = if a.known_here {
            "changed since the wizard set it up"
        } else {
            "was not made by a setup of this computer: someone may have registered it first, under the name the wizard looks for"
        };
        out.push_str(&format!(
            "The app \"{}\" (object id {}) {who}. Nothing was changed: adding a secret, granting consent or permissions to it would also serve whoever holds these:\n",
            echo(&a.display_name),
            a.app_object_id
        ));
        for l in a.lines() {
            out.push_str(&format!("  - {l}\n"));
        }
    }
    out.push_str("Check each in the Entra admin center. To take the app over, run again with --adopt (or `entra-setup adopt`): the owners, credentials and redirect URIs listed are removed (keep one with --adopt-keep ID), each journaled, then the setup goes on.");
    out
}

/// What this computer's journal says about an app's custody.
#[derive(Clone, Debug, Default)]
pub struct Known {
    /// The journal records creating or adopting the app.
    pub here: bool,
    /// Key ids of credentials the wizard made (secrets; certificates by thumbprint).
    pub credentials: Vec<String>,
    /// Owners, credentials and redirect URIs an admin kept when adopting.
    pub kept: Vec<String>,
    /// Temporary loopback redirect URIs a test sign-in left (removed on the next open).
    pub temporary_uris: Vec<String>,
    /// Display names of secrets the wizard asked for on this setup: a copy an addPassword
    /// made while its answer was lost carries one (the plan removes it).
    pub secret_names: Vec<String>,
}

impl Known {
    /// From the journal, for the app with object id `object_id`.
    pub fn from_journal(
        journal: &Journal,
        object_id: &str,
    ) -> Result<Self, super::journal::JournalError> {
        let mut k = Self::default();
        let temporary = journal.temporary_redirects()?;
        k.temporary_uris = temporary
            .into_iter()
            .filter(|t| t.app_object_id == object_id)
            .map(|t| t.uri)
            .collect();
        for e in journal.entries()? {
            match &e.event {
                Event::Done {
                    created: Some(ObjectKind::Application | ObjectKind::TemplateApplication),
                    id: Some(id),
                    ..
                } if id == object_id => k.here = true,
                Event::Done {
                    created: Some(ObjectKind::Password | ObjectKind::SigningCertificate),
                    id: Some(id),
                    ..
                } => k.credentials.push(id.clone()),
                Event::Started {
                    kind,
                    name: Some(name),
                } if super::plan::kind_is(kind, "addPassword") => {
                    k.secret_names.push(name.clone());
                }
                Event::Adopted {
                    app_object_id,
                    kept,
                } if app_object_id == object_id => {
                    k.here = true;
                    k.kept.extend(kept.iter().cloned());
                }
                _ => {}
            }
        }
        Ok(k)
    }
}

/// What an app of the setup must look like to be the wizard's alone.
pub struct Expected<'a> {
    /// The profile's id of the app.
    pub app: &'a str,
    /// The signed-in admin's object id (the only owner the wizard expects).
    pub admin_oid: &'a str,
    /// The redirect URIs (or Reply URLs) the profile produces.
    pub redirect_uris: Vec<String>,
    /// Read the service principal's own credentials too (an app registration's: the wizard
    /// never adds any). A SAML app's service principal holds its signing certificates.
    pub sp_credentials: bool,
}

/// Reads the app's owners, credentials and redirect URIs and returns what differs from
/// `expected` and `known`; `None` when the app is the wizard's alone.
pub async fn check(
    graph: &GraphClient,
    app_object_id: &str,
    sp_id: Option<&str>,
    expected: &Expected<'_>,
    known: &Known,
) -> Result<Option<ForeignApp>, GraphError> {
    let s = StepScopes::RegisterApp;
    let app_path = format!("/applications/{app_object_id}");
    let app_req = graph
        .get(format!(
            "{app_path}?$select=id,appId,displayName,passwordCredentials,keyCredentials,web,spa,publicClient"
        ))
        .scopes(s);
    let owners_req = graph
        .get(format!(
            "{app_path}/owners?$select=id,displayName,userPrincipalName"
        ))
        .scopes(s);
    let fed_req = graph
        .get(format!("{app_path}/federatedIdentityCredentials"))
        .scopes(s);
    let (app, owners, federated) = tokio::join!(
        app_req.send_json::<Value>(),
        owners_req.list::<Value>(),
        fed_req.list::<Value>()
    );
    let app = app?;
    let mut owner_list: Vec<(Value, String)> = owners?
        .into_iter()
        .map(|o| (o, format!("applications/{app_object_id}")))
        .collect();
    let mut creds = credentials_of(&app, &format!("applications/{app_object_id}"));
    for f in federated? {
        creds.push(ForeignCredential {
            kind: CredentialKind::Federated,
            id: str_of(&f["id"]),
            name: str_of(&f["name"]),
            hint: format!(
                "issuer {}, subject {}",
                str_of(&f["issuer"]),
                str_of(&f["subject"])
            ),
            end: None,
            on: format!("applications/{app_object_id}"),
        });
    }
    if let Some(sp) = sp_id {
        let sp_owners = graph
            .get(format!(
                "/servicePrincipals/{sp}/owners?$select=id,displayName,userPrincipalName"
            ))
            .scopes(s)
            .list::<Value>()
            .await?;
        owner_list.extend(
            sp_owners
                .into_iter()
                .map(|o| (o, format!("servicePrincipals/{sp}"))),
        );
        if expected.sp_credentials {
            let sp_value: Value = graph
                .get(format!(
                    "/servicePrincipals/{sp}?$select=id,passwordCredentials,keyCredentials"
                ))
                .scopes(s)
                .send_json()
                .await?;
            creds.extend(credentials_of(
                &sp_value,
                &format!("servicePrincipals/{sp}"),
            ));
        }
    }
    let kept = |id: &str| known.kept.iter().any(|k| k.eq_ignore_ascii_case(id));
    let owners: Vec<ForeignOwner> = owner_list
        .into_iter()
        .filter(|(o, _)| {
            let id = str_of(&o["id"]);
            !id.eq_ignore_ascii_case(expected.admin_oid) && !kept(&id)
        })
        .map(|(o, owns)| ForeignOwner {
            id: str_of(&o["id"]),
            display_name: str_of(&o["displayName"]),
            user_principal_name: o["userPrincipalName"].as_str().map(str::to_string),
            owns,
        })
        .collect();
    let credentials: Vec<ForeignCredential> = creds
        .into_iter()
        .filter(|c| {
            let late_copy = known.here
                && c.kind == CredentialKind::Secret
                && c.on.starts_with("applications/")
                && known.secret_names.contains(&c.name);
            !kept(&c.id)
                && !late_copy
                && !known
                    .credentials
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(&c.id))
        })
        .collect();
    // Redirect URIs are compared on an app someone else made: the plan's update keeps the
    // ones an admin added by hand to the wizard's own app.
    let redirect_uris: Vec<String> = if known.here {
        vec![]
    } else {
        redirect_uris_of(&app)
            .into_iter()
            .filter(|u| {
                !expected.redirect_uris.contains(u) && !known.temporary_uris.contains(u) && !kept(u)
            })
            .collect()
    };
    if owners.is_empty() && credentials.is_empty() && redirect_uris.is_empty() {
        return Ok(None);
    }
    Ok(Some(ForeignApp {
        app: expected.app.to_string(),
        display_name: str_of(&app["displayName"]),
        app_object_id: app_object_id.to_string(),
        app_id: str_of(&app["appId"]),
        known_here: known.here,
        owners,
        credentials,
        redirect_uris,
    }))
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn credentials_of(v: &Value, on: &str) -> Vec<ForeignCredential> {
    let end = |c: &Value| {
        c["endDateTime"]
            .as_str()
            .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
            .map(|e| e.with_timezone(&chrono::Utc))
    };
    let mut out = vec![];
    for c in v["passwordCredentials"].as_array().into_iter().flatten() {
        out.push(ForeignCredential {
            kind: CredentialKind::Secret,
            id: str_of(&c["keyId"]),
            name: str_of(&c["displayName"]),
            hint: format!("starts {}", str_of(&c["hint"])),
            end: end(c),
            on: on.to_string(),
        });
    }
    for c in v["keyCredentials"].as_array().into_iter().flatten() {
        out.push(ForeignCredential {
            kind: CredentialKind::Certificate,
            id: str_of(&c["keyId"]),
            name: str_of(&c["displayName"]),
            hint: format!("usage {}", str_of(&c["usage"])),
            end: end(c),
            on: on.to_string(),
        });
    }
    out
}

/// Every redirect URI of an app: web, single-page and public-client platforms.
fn redirect_uris_of(app: &Value) -> Vec<String> {
    ["web", "spa", "publicClient"]
        .iter()
        .flat_map(|p| {
            app[*p]["redirectUris"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|u| u.as_str().map(str::to_string))
        .collect()
}

/// The admin's choice to take an app over.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct Adoption {
    /// Owners (object ids), credentials (key ids) and redirect URIs to keep; everything else
    /// listed is removed.
    pub keep: Vec<String>,
}

impl Adoption {
    /// Every id to keep must be one the apps list (an owner, a credential or a redirect URI):
    /// a mistyped one would otherwise remove what the admin meant to keep.
    pub fn check(&self, apps: &[ForeignApp]) -> Result<(), String> {
        match self.keep.iter().find(|k| {
            !apps
                .iter()
                .any(|a| a.keepable().iter().any(|x| x.eq_ignore_ascii_case(k)))
        }) {
            Some(k) => Err(format!(
                "--adopt-keep {}: no owner, credential or redirect URI of the app has that id. Nothing was changed; name one of the ids listed.",
                echo(k)
            )),
            None => Ok(()),
        }
    }
}

/// One removal adoption made, for the progress log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removed {
    pub what: String,
}

/// Takes the apps over: removes what the admin did not keep, journaling each removal (owners
/// and redirect URIs so that Undo can put them back), then records the adoption so later runs
/// know the app. Called with the tenant's lock held.
pub async fn adopt(
    graph: &GraphClient,
    journal: &Journal,
    plan_id: &str,
    apps: &[ForeignApp],
    adoption: &Adoption,
) -> Result<Vec<Removed>, GraphError> {
    let keep = |id: &str| adoption.keep.iter().any(|k| k.eq_ignore_ascii_case(id));
    adoption.check(apps).map_err(GraphError::Refused)?;
    let s = StepScopes::RegisterApp;
    let mut out = vec![];
    let note = |event: Event, app: &ForeignApp| {
        journal
            .append(&super::journal::Entry {
                at: chrono::Utc::now(),
                plan_id: plan_id.to_string(),
                seq: None,
                event,
                app: Some(app.app.clone()),
                app_object_id: Some(app.app_object_id.clone()),
                app_id: Some(app.app_id.clone()),
                request_id: None,
            })
            .map_err(|e| {
                GraphError::Refused(format!(
                    "The journal could not be written ({e}); nothing more was changed."
                ))
            })
    };
    for app in apps {
        // Journals a removed credential (never restorable: Entra does not return its value).
        let removed_credential = |c: &ForeignCredential| -> Result<Removed, GraphError> {
            note(
                Event::Done {
                    kind: "removeCredential".into(),
                    created: None,
                    id: Some(c.id.clone()),
                    previous: Some(c.on.clone()),
                },
                app,
            )?;
            Ok(Removed {
                what: format!(
                    "Removed the credential \"{}\" ({}) from \"{}\"",
                    echo(&c.name),
                    c.id,
                    echo(&app.display_name)
                ),
            })
        };
        for o in app.owners.iter().filter(|o| !keep(&o.id)) {
            crate::graph::gone_ok(
                graph
                    .delete(format!("/{}/owners/{}/$ref", o.owns, o.id))
                    .scopes(s)
                    .send()
                    .await,
            )?;
            note(
                Event::Done {
                    kind: "removeOwner".into(),
                    created: Some(ObjectKind::RemovedOwner),
                    id: Some(o.id.clone()),
                    previous: Some(o.owns.clone()),
                },
                app,
            )?;
            out.push(Removed {
                what: format!(
                    "Removed the owner {} from \"{}\"",
                    echo(&o.display_name),
                    echo(&app.display_name)
                ),
            });
        }
        let certs_to_remove: Vec<&ForeignCredential> = app
            .credentials
            .iter()
            .filter(|c| c.kind == CredentialKind::Certificate && !keep(&c.id))
            .collect();
        for c in app.credentials.iter().filter(|c| !keep(&c.id)) {
            match c.kind {
                CredentialKind::Secret => {
                    crate::graph::gone_ok(
                        graph
                            .post(format!("/{}/removePassword", c.on))
                            .json(json!({"keyId": c.id}))
                            .scopes(s)
                            .send()
                            .await,
                    )?;
                }
                CredentialKind::Federated => {
                    crate::graph::gone_ok(
                        graph
                            .delete(format!("/{}/federatedIdentityCredentials/{}", c.on, c.id))
                            .scopes(s)
                            .send()
                            .await,
                    )?;
                }
                // Certificates go together below: removeKey needs a proof signed by the key
                // itself, so the collection is written back without them.
                CredentialKind::Certificate => continue,
            }
            out.push(removed_credential(c)?);
        }
        for on in certs_to_remove
            .iter()
            .map(|c| c.on.clone())
            .collect::<std::collections::BTreeSet<_>>()
        {
            let current: Value = graph
                .get(format!("/{on}?$select=keyCredentials"))
                .scopes(s)
                .send_json()
                .await?;
            let remaining: Vec<Value> = current["keyCredentials"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|k| {
                    !certs_to_remove
                        .iter()
                        .any(|c| c.on == on && k["keyId"] == c.id.as_str())
                })
                .collect();
            graph
                .patch(format!("/{on}"))
                .json(json!({"keyCredentials": remaining}))
                .scopes(s)
                .send()
                .await?;
            for c in certs_to_remove.iter().filter(|c| c.on == on) {
                out.push(removed_credential(c)?);
            }
        }
        let drop: Vec<&String> = app.redirect_uris.iter().filter(|u| !keep(u)).collect();
        if !drop.is_empty() {
            let current: Value = graph
                .get(format!(
                    "/applications/{}?$select=web,spa,publicClient",
                    app.app_object_id
                ))
                .scopes(s)
                .send_json()
                .await?;
            let mut body = serde_json::Map::new();
            let mut removed_uris: Vec<(String, &str)> = vec![];
            for platform in ["web", "spa", "publicClient"] {
                let uris: Vec<Value> = current[platform]["redirectUris"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let left: Vec<Value> = uris
                    .iter()
                    .filter(|u| !drop.iter().any(|d| u.as_str() == Some(d.as_str())))
                    .cloned()
                    .collect();
                if left.len() != uris.len() {
                    body.insert(platform.into(), json!({"redirectUris": left}));
                    for u in uris
                        .iter()
                        .filter_map(Value::as_str)
                        .filter(|u| drop.iter().any(|d| d.as_str() == *u))
                    {
                        removed_uris.push((u.to_string(), platform));
                    }
                }
            }
            if !body.is_empty() {
                graph
                    .patch(format!("/applications/{}", app.app_object_id))
                    .json(Value::Object(body))
                    .scopes(s)
                    .send()
                    .await?;
            }
            for (u, platform) in removed_uris {
                note(
                    Event::Done {
                        kind: "removeRedirectUri".into(),
                        created: Some(ObjectKind::RemovedRedirectUri),
                        id: Some(u),
                        previous: Some(platform.to_string()),
                    },
                    app,
                )?;
            }
            for u in drop {
                out.push(Removed {
                    what: format!(
                        "Removed the redirect URI {} from \"{}\"",
                        echo(u),
                        echo(&app.display_name)
                    ),
                });
            }
        }
        note(
            Event::Adopted {
                app_object_id: app.app_object_id.clone(),
                kept: adoption
                    .keep
                    .iter()
                    .filter(|k| app.keepable().iter().any(|x| x.eq_ignore_ascii_case(k)))
                    .cloned()
                    .collect(),
            },
            app,
        )?;
    }
    Ok(out)
}
