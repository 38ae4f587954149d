//! The journal: one JSON line per event of every apply and undo, per tenant and provider
//! instance, in the app's data directory. It holds object ids and Graph request ids, never a
//! secret. It is what makes an interrupted apply resumable and tells Undo what the wizard made.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What kind of object an entry is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ObjectKind {
    Application,
    ServicePrincipal,
    Grant,
    Assignment,
    Password,
    /// An enterprise app made from a template, such as the provisioning app (its service
    /// principal id is the entry's `previous`). Journals before several apps per setup called
    /// it `scimApplication`.
    #[serde(alias = "scimApplication")]
    TemplateApplication,
    /// A provisioning job (its service principal id is the entry's `previous`).
    SyncJob,
    /// A SAML token-signing certificate, by thumbprint (it goes with its app; rotation removes
    /// an old one).
    SigningCertificate,
    /// "Assignment required" set on a vendor's app, by its service principal id (`previous`
    /// holds the value before, "true" or "false").
    AssignmentRequirement,
    /// An owner adoption removed from an app someone else made, by the owner's object id
    /// (`previous`: `applications/{id}` or `servicePrincipals/{id}`). Undo adds it back.
    RemovedOwner,
    /// A redirect URI adoption removed, by the URI itself (`previous`: its platform, `web`,
    /// `spa` or `publicClient`; the entry's `app_object_id` is the app). Undo adds it back.
    RemovedRedirectUri,
}

/// A journal that cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    #[error("The journal {file} is damaged at line {line} ({why}). Entra Setup does not guess what it recorded: without it, Undo and resuming an interrupted apply would miss what the wizard made. Restore the file from a backup, or move it aside (keep it: it lists the ids the wizard created) and run again; a setup found in the tenant can still be undone from its tags.")]
    Corrupt {
        file: String,
        line: usize,
        why: String,
    },
    #[error("The journal {file} cannot be read: {why}.")]
    Unreadable { file: String, why: String },
}

/// Hints from earlier, interrupted runs (from the journal).
#[derive(Clone, Debug, Default)]
pub struct JournalHints {
    /// Display names of secrets whose addPassword started but never finished: if such a secret
    /// exists, its value was lost and it must go.
    pub unfinished_secret_names: Vec<String>,
    /// Key ids of secrets the wizard added but never handed over (the run stopped before the
    /// admin copied, pushed or saved them). The caller removes a key id it still holds.
    pub unhanded_secret_ids: Vec<String>,
    /// Temporary display names of provisioning apps whose instantiate never finished: such an
    /// app may exist and is adopted rather than created again.
    pub unfinished_instantiations: Vec<String>,
    /// The SCIM settings the last run saved.
    pub scim: Option<ScimRecord>,
    /// Secrets an addPassword made and recorded: (display name, key id). Another secret with
    /// the same name is a late copy from an answer that was lost and retried: nobody has its
    /// value, and it goes.
    pub made_secrets: Vec<(String, String)>,
}

/// The SCIM settings a run saved (never the token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScimRecord {
    pub tenant_url: String,
    pub sync_all: bool,
    #[serde(default)]
    pub token_expires: Option<chrono::NaiveDate>,
    pub saved_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Event {
    /// A plan is about to be applied.
    Plan {
        changes: usize,
        /// Which setup this is (absent in journals written before re-runs were offered).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display_name: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        inputs: BTreeMap<String, String>,
    },
    /// A change started. For secrets, `name` is the secret's display name (never its value).
    Started {
        kind: String,
        name: Option<String>,
    },
    /// A change finished. `created` names an object the wizard created (Undo removes those).
    Done {
        kind: String,
        created: Option<ObjectKind>,
        id: Option<String>,
        previous: Option<String>,
    },
    Failed {
        kind: String,
        message: String,
    },
    /// Undo removed (or restored) an object.
    Undone {
        kind: ObjectKind,
        id: String,
    },
    /// The plan finished.
    Finished,
    /// The admin received a new secret (`how`: copied, pushed, saved to a file, kept in the
    /// keychain). A secret never handed over is useless and gets replaced on the next run.
    HandedOver {
        key_id: String,
        how: String,
    },
    /// Provisioning credentials and settings were saved in Entra.
    ScimConfigured(ScimRecord),
    /// The test sign-in is about to add a temporary loopback redirect (reply) URI to an app
    /// (`platform`: `web` for SAML, `publicClient` for OpenID Connect). It goes when the test
    /// ends, or — after a crash — the next time the setup is opened.
    TemporaryRedirect {
        app_object_id: String,
        platform: String,
        uri: String,
    },
    /// That URI is gone again.
    TemporaryRedirectRemoved {
        uri: String,
    },
    /// The admin adopted an app the wizard found but did not make (or that changed hands),
    /// after seeing its owners, credentials and redirect URIs; `kept` are those they chose to
    /// keep (ids and URIs). Later runs know the app.
    Adopted {
        app_object_id: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        kept: Vec<String>,
    },
}

/// A temporary redirect URI the journal says is still on its app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemporaryRedirect {
    pub app_object_id: String,
    pub platform: String,
    pub uri: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub at: DateTime<Utc>,
    pub plan_id: String,
    #[serde(default)]
    pub seq: Option<usize>,
    pub event: Event,
    /// The app of the setup a change acts on, as the provider's profile names it (absent in
    /// journals written before a setup managed several apps, and for plan-wide events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// The application a change acts on (its object id and appId), once known.
    #[serde(default)]
    pub app_object_id: Option<String>,
    #[serde(default)]
    pub app_id: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
}

/// An object the wizard created (or changed), as Undo sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub kind: ObjectKind,
    pub id: String,
    /// For a grant the wizard only changed: the scopes it had before.
    pub previous: Option<String>,
    pub app_object_id: Option<String>,
    /// Which record of the journal says so (1 is the first), for messages.
    pub record: usize,
}

/// How long after an apply its objects may still be replicating.
pub const REPLICATION_WINDOW_MINUTES: i64 = 15;

/// Objects recent applies made (see [`Journal::recently_made`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecentlyMade {
    pub app_object_id: Option<String>,
    pub sp_id: Option<String>,
    pub grant_id: Option<String>,
    pub scim_app_object_id: Option<String>,
    pub sync_job_id: Option<String>,
    pub secret_key_ids: Vec<String>,
    /// App-role assignments (application permissions, and users and groups on a provisioning
    /// app).
    pub assignment_ids: Vec<String>,
    /// SAML signing certificates (thumbprints): a new key takes a while to show in reads.
    pub signing_thumbprints: Vec<String>,
}

/// A setup the wizard applied in a tenant before, as its journal remembers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct PreviousSetup {
    pub provider_id: String,
    pub display_name: String,
    /// The inputs the admin typed then (never secrets).
    pub inputs: BTreeMap<String, String>,
    pub last_applied: DateTime<Utc>,
    /// The last apply stopped part-way: running it again resumes it.
    pub interrupted: bool,
    /// Where it was found: this computer's journal, the tenant (its apps carry the wizard's tag
    /// and uniqueName), or both.
    pub source: SetupSource,
    /// It has a provisioning app (SCIM).
    pub provisions: bool,
}

/// Where a setup done before was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub enum SetupSource {
    /// Only in this computer's journal (the tenant was not read, or no longer shows it).
    Journal,
    /// Only in the tenant: made on another computer, or this computer's journal was lost.
    Tenant,
    /// In both.
    Both,
}

/// The setups the wizard applied in this tenant (from its journals), the latest first. Setups
/// removed with Undo since are left out.
pub fn previous_setups(dir: &Path, tenant_id: &str) -> Vec<PreviousSetup> {
    let folder = dir.join("journal").join(safe(tenant_id));
    let Ok(files) = std::fs::read_dir(&folder) else {
        return vec![];
    };
    let mut out: Vec<PreviousSetup> = files
        .flatten()
        .map(|f| f.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .filter_map(|path| {
            let j = Journal { path };
            let entries = match j.entries() {
                Ok(e) => e,
                Err(e) => {
                    // Listed setups come from readable journals; the damaged one is named.
                    tracing::warn!(error = %e, "a journal could not be read");
                    return None;
                }
            };
            let (i, provider_id, display_name, inputs) = entries
                .iter()
                .enumerate()
                .rev()
                .find_map(|(i, e)| match &e.event {
                    Event::Plan {
                        provider_id: Some(p),
                        display_name,
                        inputs,
                        ..
                    } => Some((i, p.clone(), display_name.clone(), inputs.clone())),
                    _ => None,
                })?;
            if entries[i..]
                .iter()
                .any(|e| matches!(e.event, Event::Undone { .. }))
            {
                return None;
            }
            Some(PreviousSetup {
                display_name: display_name.unwrap_or_else(|| provider_id.clone()),
                provider_id,
                inputs,
                last_applied: entries.last().map_or(entries[i].at, |e| e.at),
                interrupted: j.interrupted().ok()?,
                source: SetupSource::Journal,
                provisions: j.scim_record().ok()?.is_some()
                    || j.created()
                        .ok()?
                        .iter()
                        .any(|c| c.kind == ObjectKind::TemplateApplication),
            })
        })
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.last_applied));
    out
}

#[derive(Clone, Debug)]
pub struct Journal {
    path: PathBuf,
}

fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// True when the file exists, is not empty and its last byte is not a newline (a torn write).
fn ends_without_newline(path: &Path) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if f.metadata()?.len() == 0 {
        return Ok(false);
    }
    f.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    f.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

impl Journal {
    /// The journal of one provider instance in one tenant, under `dir`.
    pub fn open(dir: &Path, tenant_id: &str, unique_name: &str) -> Self {
        Self {
            path: dir
                .join("journal")
                .join(safe(tenant_id))
                .join(format!("{}.jsonl", safe(unique_name))),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The setup's `uniqueName`, as the journal's file is named after it.
    pub fn unique_name(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The provider the journal's plans were for (the last plan that says).
    pub fn provider_id(&self) -> Result<Option<String>, JournalError> {
        Ok(self
            .entries()?
            .into_iter()
            .rev()
            .find_map(|e| match e.event {
                Event::Plan { provider_id, .. } => provider_id,
                _ => None,
            }))
    }

    /// The lock of this journal's tenant, held while an apply or Undo writes to it.
    pub fn lock_tenant(&self) -> Result<crate::files::TenantLock, crate::files::LockError> {
        crate::files::TenantLock::acquire(self.path.parent().unwrap_or(Path::new(".")))
    }

    /// Appends one entry and flushes it to disk before returning.
    pub fn append(&self, entry: &Entry) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            // The journal names the tenant's apps and the admin's inputs: the user's alone.
            crate::files::private_dir(dir)?;
        }
        if ends_without_newline(&self.path)? {
            // A record a crash cut short never happened: drop its bytes, so the journal holds
            // whole lines only and anything else in it is damage, reported as such.
            let bytes = std::fs::read(&self.path)?;
            let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
            let f = OpenOptions::new().write(true).open(&self.path)?;
            f.set_len(keep as u64)?;
            f.sync_data()?;
            tracing::warn!("dropped the journal's last line, cut short by a crash");
        }
        let mut f = crate::files::open_private(&self.path, true)?;
        let mut line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
        line.push('\n');
        f.write_all(line.as_bytes())?;
        f.sync_data()
    }

    /// Every readable entry, oldest first. A torn last line (a crash mid-write) is skipped.
    pub fn entries(&self) -> Result<Vec<Entry>, JournalError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => {
                return Err(JournalError::Unreadable {
                    file: self.path.display().to_string(),
                    why: e.to_string(),
                })
            }
        };
        let complete = bytes.ends_with(b"\n");
        let lines: Vec<&[u8]> = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let mut out = vec![];
        for (i, raw) in lines.iter().enumerate() {
            let parsed = std::str::from_utf8(raw)
                .map_err(|e| e.to_string())
                .and_then(|l| serde_json::from_str::<Entry>(l).map_err(|e| e.to_string()));
            match parsed {
                Ok(e) => out.push(e),
                // A last line cut short by a crash mid-write: what it was about to record did
                // not happen as far as the journal knows; everything before it stands.
                Err(why) if i + 1 == lines.len() && !complete => {
                    tracing::warn!(line = i + 1, %why, "the journal's last line was cut short; ignored");
                }
                Err(why) => {
                    return Err(JournalError::Corrupt {
                        file: self.path.display().to_string(),
                        line: i + 1,
                        // The parser quotes the damaged text: show it, never obey it.
                        why: crate::redact::echo(&why, 300),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Reads the whole journal once: a damaged one is an error naming the file and the line,
    /// never an empty history (Undo would find nothing; an interrupted apply would go unseen).
    pub fn check(&self) -> Result<(), JournalError> {
        self.entries().map(|_| ())
    }

    /// What the planner must know about interrupted runs.
    pub fn hints(&self) -> Result<JournalHints, JournalError> {
        let entries = self.entries()?;
        let mut unfinished = vec![];
        for (i, e) in entries.iter().enumerate() {
            if let Event::Started {
                kind,
                name: Some(name),
            } = &e.event
            {
                if super::plan::kind_is(kind, "addPassword") {
                    let finished = entries[i + 1..].iter().any(|later| {
                        later.plan_id == e.plan_id
                            && later.seq == e.seq
                            && !matches!(later.event, Event::Started { .. })
                    });
                    if !finished {
                        unfinished.push(name.clone());
                    }
                }
            }
        }
        let handed: Vec<&str> = entries
            .iter()
            .filter_map(|e| match &e.event {
                Event::HandedOver { key_id, .. } => Some(key_id.as_str()),
                _ => None,
            })
            .collect();
        let unhanded = entries
            .iter()
            .filter_map(|e| match &e.event {
                Event::Done {
                    created: Some(ObjectKind::Password),
                    id: Some(id),
                    ..
                } if !handed.contains(&id.as_str()) => Some(id.clone()),
                _ => None,
            })
            .collect();
        let unfinished_instantiations = entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match &e.event {
                Event::Started {
                    kind,
                    name: Some(name),
                } if super::plan::kind_is(kind, "instantiateApp")
                    && !entries[i + 1..].iter().any(|later| {
                        later.plan_id == e.plan_id
                            && later.seq == e.seq
                            && matches!(later.event, Event::Done { .. })
                    }) =>
                {
                    Some(name.clone())
                }
                _ => None,
            })
            .collect();
        let made_secrets =
            entries
                .iter()
                .enumerate()
                .filter_map(|(i, e)| match &e.event {
                    Event::Started {
                        kind,
                        name: Some(name),
                    } if super::plan::kind_is(kind, "addPassword") => entries[i + 1..]
                        .iter()
                        .find_map(|later| match &later.event {
                            Event::Done {
                                created: Some(ObjectKind::Password),
                                id: Some(id),
                                ..
                            } if later.plan_id == e.plan_id && later.seq == e.seq => {
                                Some((name.clone(), id.clone()))
                            }
                            _ => None,
                        }),
                    _ => None,
                })
                .collect();
        Ok(JournalHints {
            made_secrets,
            unfinished_secret_names: unfinished,
            unhanded_secret_ids: unhanded,
            unfinished_instantiations,
            scim: self.scim_record()?,
        })
    }

    /// The SCIM settings the last run saved.
    pub fn scim_record(&self) -> Result<Option<ScimRecord>, JournalError> {
        Ok(self
            .entries()?
            .into_iter()
            .rev()
            .find_map(|e| match e.event {
                Event::ScimConfigured(r) => Some(r),
                _ => None,
            }))
    }

    /// Appends a plan-less event (the test sign-in's).
    pub fn note(&self, plan_id: &str, event: Event) -> std::io::Result<()> {
        self.append(&Entry {
            at: Utc::now(),
            plan_id: plan_id.to_string(),
            seq: None,
            event,
            app: None,
            app_object_id: None,
            app_id: None,
            request_id: None,
        })
    }

    /// Temporary redirect URIs added by a test sign-in and not removed yet (it was interrupted).
    pub fn temporary_redirects(&self) -> Result<Vec<TemporaryRedirect>, JournalError> {
        let mut open: Vec<TemporaryRedirect> = vec![];
        for e in self.entries()? {
            match e.event {
                Event::TemporaryRedirect {
                    app_object_id,
                    platform,
                    uri,
                } => open.push(TemporaryRedirect {
                    app_object_id,
                    platform,
                    uri,
                }),
                Event::TemporaryRedirectRemoved { uri } => open.retain(|t| t.uri != uri),
                _ => {}
            }
        }
        Ok(open)
    }

    /// Records that the admin received a secret.
    pub fn handed_over(&self, plan_id: &str, key_id: &str, how: &str) -> std::io::Result<()> {
        self.append(&Entry {
            at: Utc::now(),
            plan_id: plan_id.to_string(),
            seq: None,
            event: Event::HandedOver {
                key_id: key_id.to_string(),
                how: how.to_string(),
            },
            app: None,
            app_object_id: None,
            app_id: None,
            request_id: None,
        })
    }

    /// Objects the wizard created or changed and has not undone yet, newest first.
    pub fn created(&self) -> Result<Vec<Created>, JournalError> {
        let entries = self.entries()?;
        let mut out: Vec<Created> = vec![];
        for (i, e) in entries.iter().enumerate() {
            match &e.event {
                Event::Done {
                    created: Some(kind),
                    id: Some(id),
                    previous,
                    ..
                } => out.push(Created {
                    kind: *kind,
                    id: id.clone(),
                    previous: previous.clone(),
                    app_object_id: e.app_object_id.clone(),
                    record: i + 1,
                }),
                Event::Undone { kind, id } => out.retain(|c| !(c.kind == *kind && &c.id == id)),
                _ => {}
            }
        }
        out.reverse();
        Ok(out)
    }

    /// What the last applies left in the tenant, if the last of them finished recently enough
    /// that Entra may still be replicating it (reference §12: seconds to minutes). A re-run
    /// waits for these to be readable before planning, so it does not plan them again.
    pub fn recently_made(&self, now: DateTime<Utc>) -> Result<Option<RecentlyMade>, JournalError> {
        let entries = self.entries()?;
        let Some(last) = entries.iter().rev().find(|e| {
            matches!(
                e.event,
                Event::Done { .. } | Event::Finished | Event::ScimConfigured(_)
            )
        }) else {
            return Ok(None);
        };
        if now - last.at > chrono::Duration::minutes(REPLICATION_WINDOW_MINUTES) {
            return Ok(None);
        }
        let mut made = RecentlyMade::default();
        // A change that removed an object records its id with no `created` kind.
        let removed: Vec<&str> = entries
            .iter()
            .filter_map(|e| match &e.event {
                Event::Done {
                    created: None,
                    id: Some(id),
                    ..
                } => Some(id.as_str()),
                _ => None,
            })
            .collect();
        for c in self.created()? {
            match c.kind {
                ObjectKind::Application => made.app_object_id.get_or_insert(c.id),
                ObjectKind::ServicePrincipal => made.sp_id.get_or_insert(c.id),
                ObjectKind::Grant => made.grant_id.get_or_insert(c.id),
                ObjectKind::TemplateApplication => made.scim_app_object_id.get_or_insert(c.id),
                ObjectKind::SyncJob => made.sync_job_id.get_or_insert(c.id),
                _ if removed.contains(&c.id.as_str()) => continue,
                ObjectKind::SigningCertificate => {
                    made.signing_thumbprints.push(c.id);
                    continue;
                }
                ObjectKind::Password => {
                    made.secret_key_ids.push(c.id);
                    continue;
                }
                ObjectKind::Assignment => {
                    made.assignment_ids.push(c.id);
                    continue;
                }
                ObjectKind::AssignmentRequirement
                | ObjectKind::RemovedOwner
                | ObjectKind::RemovedRedirectUri => continue,
            };
        }
        Ok(Some(made))
    }

    /// Whether the last plan started but did not finish (an interrupted apply).
    pub fn interrupted(&self) -> Result<bool, JournalError> {
        let entries = self.entries()?;
        let Some(last_plan) = entries
            .iter()
            .rev()
            .find(|e| matches!(e.event, Event::Plan { .. }))
        else {
            return Ok(false);
        };
        Ok(!entries
            .iter()
            .any(|e| e.plan_id == last_plan.plan_id && matches!(e.event, Event::Finished)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(plan: &str, seq: usize, event: Event) -> Entry {
        Entry {
            at: Utc::now(),
            plan_id: plan.into(),
            seq: Some(seq),
            event,
            app: None,
            app_object_id: Some("app-1".into()),
            app_id: None,
            request_id: None,
        }
    }

    #[test]
    fn remembers_created_objects_and_unfinished_secrets() {
        let dir = std::env::temp_dir().join(format!("journal-test-{}", uuid::Uuid::new_v4()));
        let j = Journal::open(&dir, "tenant", "entra-setup-x");
        j.append(&entry(
            "p1",
            0,
            Event::Plan {
                changes: 3,
                provider_id: None,
                display_name: None,
                inputs: BTreeMap::new(),
            },
        ))
        .unwrap();
        j.append(&entry(
            "p1",
            0,
            Event::Done {
                kind: "upsertApplication".into(),
                created: Some(ObjectKind::Application),
                id: Some("app-1".into()),
                previous: None,
            },
        ))
        .unwrap();
        j.append(&entry(
            "p1",
            1,
            Event::Started {
                kind: "addPassword".into(),
                name: Some("entra-setup 1".into()),
            },
        ))
        .unwrap();
        assert!(j.interrupted().unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(j.path()), 0o600, "the journal is the user's alone");
            assert_eq!(mode(j.path().parent().unwrap()), 0o700);
        }
        assert_eq!(
            j.hints().unwrap().unfinished_secret_names,
            ["entra-setup 1"]
        );
        assert_eq!(j.created().unwrap().len(), 1);
        // A torn line from a crash is skipped.
        std::fs::OpenOptions::new()
            .append(true)
            .open(j.path())
            .unwrap()
            .write_all(b"{\"at\":")
            .unwrap();
        assert_eq!(j.entries().unwrap().len(), 3);
        // ...and the next entry starts on a line of its own.
        j.append(&entry("p1", 2, Event::Finished)).unwrap();
        assert_eq!(j.entries().unwrap().len(), 4);
        assert!(!j.interrupted().unwrap());
        // One bad byte in the middle: an error naming the file and the line, never an empty
        // history (Undo would find nothing to remove).
        let mut bytes = std::fs::read(j.path()).unwrap();
        let second = bytes.iter().position(|b| *b == b'\n').unwrap() + 3;
        bytes[second] = 0xFF;
        std::fs::write(j.path(), &bytes).unwrap();
        let e = j.check().unwrap_err();
        assert!(matches!(&e, JournalError::Corrupt { line: 2, .. }), "{e:?}");
        assert!(e.to_string().contains(&j.path().display().to_string()));
        let _ = std::fs::remove_dir_all(dir);
    }
}
