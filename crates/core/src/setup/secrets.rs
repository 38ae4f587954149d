//! Client secrets on re-runs: how long each one has left, and rotation without downtime
//! (reference §5). A rotation adds a new secret next to the current ones (the plan's
//! `AddPassword`, with [`super::Intent::rotate_secret`]); the admin hands it to the provider and
//! the wizard tests it; only then are the old ones retired with a plan of `RemovePassword`
//! changes. Only secrets the wizard made are ever retired: others belong to someone else.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::plan::{is_wizards, Change, Plan, PlannedChange};
use super::state::{unique_name_path, TenantState};
use super::Intent;

pub use super::plan::EXPIRES_SOON_DAYS;

/// How a secret stands today.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub enum SecretHealth {
    /// Past its end date: nobody can sign in with it.
    Expired,
    /// Ends within [`EXPIRES_SOON_DAYS`].
    ExpiresSoon,
    Valid,
}

/// A client secret's metadata as the admin sees it on a re-run (never its value).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct SecretStatus {
    pub key_id: String,
    pub display_name: String,
    /// The first characters of the value, as Entra shows them.
    pub hint: Option<String>,
    pub created: Option<DateTime<Utc>>,
    pub expires: Option<DateTime<Utc>>,
    /// Days from today to the expiry date, as the Expires column shows them (UTC dates;
    /// negative once expired): a secret made today for a year has 365.
    #[cfg_attr(feature = "specta", specta(type = Option<i32>))]
    pub days_left: Option<i64>,
    pub health: SecretHealth,
    /// The wizard made it (its display name starts with the wizard's prefix).
    pub by_wizard: bool,
}

/// Days from `now`'s date to `end`'s (UTC): what an admin counts on a calendar, so a secret made
/// a second ago for 365 days reads 365, not 364 days and 23 hours rounded down.
pub fn days_until(end: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (end.date_naive() - now.date_naive()).num_days()
}

/// Every secret on the app, the newest first.
pub fn statuses(state: &TenantState, now: DateTime<Utc>) -> Vec<SecretStatus> {
    let mut out: Vec<SecretStatus> = state
        .app()
        .into_iter()
        .flat_map(|a| a.passwords.iter())
        .map(|p| {
            let days_left = p.end_date_time.map(|e| days_until(e, now));
            let health = match (p.end_date_time, days_left) {
                (Some(e), _) if e <= now => SecretHealth::Expired,
                (_, Some(d)) if d < EXPIRES_SOON_DAYS => SecretHealth::ExpiresSoon,
                _ => SecretHealth::Valid,
            };
            SecretStatus {
                key_id: p.key_id.clone(),
                display_name: p.display_name.clone().unwrap_or_default(),
                hint: p.hint.clone(),
                created: p.start_date_time,
                expires: p.end_date_time,
                days_left,
                health,
                by_wizard: is_wizards(p.display_name.as_deref()),
            }
        })
        .collect();
    out.sort_by(|a, b| b.created.cmp(&a.created).then(b.expires.cmp(&a.expires)));
    out
}

/// Whether `value` (a copy of a secret kept in the OS keychain) is one of the secrets just
/// `retired` and not the one kept: Entra shows each secret's first characters as its hint, so
/// the copy is taken to be a retired one only when its start matches a retired secret's hint
/// and not the kept one's.
pub fn is_retired_copy(value: &str, retired: &[SecretStatus], kept_hint: Option<&str>) -> bool {
    let starts = |hint: &str| !hint.is_empty() && value.starts_with(hint);
    !kept_hint.is_some_and(starts) && retired.iter().filter_map(|r| r.hint.as_deref()).any(starts)
}

/// The copy of a just-retired secret this computer kept in the OS keychain (under `key`), if
/// it has one: see [`is_retired_copy`].
pub async fn retired_copy(
    store: &std::sync::Arc<dyn crate::keychain::SecretStore>,
    key: &str,
    retired: &[SecretStatus],
    kept_hint: Option<&str>,
) -> Option<secrecy::SecretString> {
    use secrecy::ExposeSecret;
    crate::keychain::get(store, key)
        .await
        .ok()
        .flatten()
        .filter(|c| is_retired_copy(c.expose_secret(), retired, kept_hint))
}

/// After an apply that added `new_key`: the wizard's other secrets still on the app (those the
/// plan removed as lost excepted). They keep the provider signing in until retired.
pub fn left_after_rotation(
    plan: &Plan,
    state: &TenantState,
    new_key: &str,
    now: DateTime<Utc>,
) -> Vec<SecretStatus> {
    let removed: Vec<&str> = plan
        .changes
        .iter()
        .filter_map(|c| match &c.change {
            Change::RemovePassword { key_id, .. } => Some(key_id.as_str()),
            _ => None,
        })
        .collect();
    statuses(state, now)
        .into_iter()
        .filter(|x| x.by_wizard && x.key_id != new_key && !removed.contains(&x.key_id.as_str()))
        .collect()
}

/// What must happen before old secrets may be retired, in words; None when they may go: the
/// new secret reached the provider (not only the keychain) and signed in to Entra.
pub fn retire_blocker(provider: &str, delivered: bool, tested: bool) -> Option<String> {
    if !delivered {
        Some(format!("Hand the new secret to {provider} first (Copy, Save or Push above) and update {provider}'s settings: until then {provider} still signs in with the old one."))
    } else if !tested {
        Some("The new secret has not signed in to Entra yet (a new secret can take a few minutes to reach every Entra server): choose Run the tests again, then retire.".into())
    } else {
        None
    }
}

/// Why old secrets cannot be retired now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetireError {
    #[error(
        "There is no app registration \"{0}\" in this tenant, so there is no secret to retire."
    )]
    NoApp(String),
    #[error("No secret with key id {keep} is on the app registration (its secrets: {present}). If it was created moments ago, Entra may still be copying it between its servers: wait a minute and try again. Nothing was removed.")]
    KeepNotFound { keep: String, present: String },
    #[error("The secret to keep ({0}) has expired: retiring the others would leave the provider with no working secret. Rotate again first.")]
    KeepExpired(String),
    #[error("There is no older secret made by the wizard to retire: only the new one is left.")]
    NothingToRetire,
}

/// The plan that removes every secret the wizard made on the app except `keep` (the new one,
/// which must be on the app and still valid). Secrets the wizard did not make are left alone.
pub fn retire_plan(
    intent: &Intent,
    state: &TenantState,
    tenant_id: &str,
    keep: &str,
    now: DateTime<Utc>,
) -> Result<Plan, RetireError> {
    let unique = intent.unique_name();
    let app = state
        .app()
        .ok_or_else(|| RetireError::NoApp(intent.display_name()))?;
    let kept = app
        .passwords
        .iter()
        .find(|p| p.key_id == keep)
        .ok_or_else(|| RetireError::KeepNotFound {
            keep: keep.to_string(),
            present: if app.passwords.is_empty() {
                "none".into()
            } else {
                app.passwords
                    .iter()
                    .map(|p| {
                        format!(
                            "{} ({})",
                            p.key_id,
                            p.display_name.as_deref().unwrap_or("no name")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })?;
    if kept.end_date_time.is_some_and(|e| e <= now) {
        return Err(RetireError::KeepExpired(
            kept.display_name
                .clone()
                .unwrap_or_else(|| keep.to_string()),
        ));
    }
    let app_path = unique_name_path(&unique);
    let changes: Vec<PlannedChange> = app
        .passwords
        .iter()
        .filter(|p| p.key_id != keep && is_wizards(p.display_name.as_deref()))
        .enumerate()
        .map(|(seq, p)| {
            let name = p.display_name.clone().unwrap_or_default();
            let when = p
                .end_date_time
                .map(|e| {
                    if e <= now {
                        format!("it expired on {}", e.format("%Y-%m-%d"))
                    } else {
                        format!("it would have worked until {}", e.format("%Y-%m-%d"))
                    }
                })
                .unwrap_or_else(|| "it has no end date".into());
            PlannedChange {
                seq,
                app: intent
                    .provider
                    .sign_in_app()
                    .map(|a| a.id.clone())
                    .unwrap_or_default(),
                change: Change::RemovePassword {
                    key_id: p.key_id.clone(),
                    display_name: name.clone(),
                },
                title: format!(
                    "Retire the old secret \"{name}\"{}",
                    p.hint
                        .as_deref()
                        .map(|h| format!(" ({h}…)"))
                        .unwrap_or_default()
                ),
                reason: format!(
                    "{} now uses the new secret; {when}. Removing it means a leaked copy is useless.",
                    intent.provider.name
                ),
                request: format!("POST {app_path}/removePassword"),
                after: vec![],
            }
        })
        .collect();
    if changes.is_empty() {
        return Err(RetireError::NothingToRetire);
    }
    let left_alone = app
        .passwords
        .iter()
        .filter(|p| !is_wizards(p.display_name.as_deref()))
        .count();
    let notes = if left_alone > 0 {
        vec![format!("{left_alone} secret{} on this app {} not made by the wizard and {} left alone: someone else may rely on {}.", if left_alone == 1 { "" } else { "s" }, if left_alone == 1 { "was" } else { "were" }, if left_alone == 1 { "is" } else { "are" }, if left_alone == 1 { "it" } else { "them" })]
    } else {
        vec![]
    };
    Ok(Plan {
        id: uuid::Uuid::new_v4().to_string(),
        provider_id: intent.provider.id().to_string(),
        unique_name: unique,
        display_name: intent.display_name(),
        tenant_id: tenant_id.to_string(),
        scim_unique_name: None,
        registration: intent.provider.sign_in_app().map(|a| a.id.clone()),
        provisioning: None,
        inputs: intent.entered_inputs(),
        changes,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::permissions::GraphServicePrincipal;
    use crate::setup::state::{AppState, FoundApp, PasswordInfo, RegisteredApp};
    use chrono::Duration;

    fn pw(
        key: &str,
        name: &str,
        start_days: i64,
        end_days: i64,
        now: DateTime<Utc>,
    ) -> PasswordInfo {
        PasswordInfo {
            key_id: key.into(),
            display_name: Some(name.into()),
            hint: Some("abc".into()),
            start_date_time: Some(now + Duration::days(start_days)),
            end_date_time: Some(now + Duration::days(end_days)),
        }
    }

    fn state(passwords: Vec<PasswordInfo>) -> TenantState {
        let mut st = TenantState::empty(
            serde_json::from_value::<GraphServicePrincipal>(serde_json::json!({"id": "graph"}))
                .unwrap(),
        );
        st.apps.insert(
            "sign_in".into(),
            FoundApp::Registration(RegisteredApp {
                app: AppState {
                    id: "obj".into(),
                    app_id: "app".into(),
                    passwords,
                    value: serde_json::Value::Null,
                },
                sp_id: None,
                grants: vec![],
                assignments: vec![],
            }),
        );
        st
    }

    fn intent() -> Intent {
        let p = crate::provider::find("pomerium").unwrap();
        let raw = [(
            "authenticate_url".to_string(),
            "https://auth.example.com".to_string(),
        )]
        .into_iter()
        .collect();
        Intent::new(p, &raw, None).unwrap()
    }

    #[test]
    fn statuses_are_newest_first_with_health() {
        let now = Utc::now();
        let s = state(vec![
            pw("old", "entra-setup 2025", -700, -5, now),
            pw("soon", "entra-setup 2026", -170, 10, now),
            pw("new", "entra-setup now", 0, 180, now),
            pw("theirs", "CI pipeline", -30, 300, now),
        ]);
        let st = statuses(&s, now);
        let keys: Vec<&str> = st.iter().map(|x| x.key_id.as_str()).collect();
        assert_eq!(keys, ["new", "theirs", "soon", "old"]);
        assert_eq!(st[0].health, SecretHealth::Valid);
        assert_eq!(st[2].health, SecretHealth::ExpiresSoon);
        assert_eq!(st[3].health, SecretHealth::Expired);
        assert_eq!(st[3].days_left, Some(-5));
        assert!(!st[1].by_wizard && st[0].by_wizard);
    }

    #[test]
    fn days_left_counts_calendar_days_like_the_expires_column() {
        // Made a few seconds ago for a year: the dates are a year apart, so 365, not 364.
        let made = "2026-12-02T16:05:00Z".parse::<DateTime<Utc>>().unwrap();
        let now = made + Duration::seconds(5);
        let mut s = state(vec![pw("new", "entra-setup now", 0, 365, made)]);
        assert_eq!(statuses(&s, now)[0].days_left, Some(365));
        // Ends later today: 0 days left, still valid; ended earlier today: 0, expired.
        s = state(vec![pw(
            "today",
            "entra-setup x",
            -90,
            0,
            now + Duration::hours(2),
        )]);
        let st = statuses(&s, now);
        assert_eq!(
            (st[0].days_left, st[0].health),
            (Some(0), SecretHealth::ExpiresSoon)
        );
        s = state(vec![pw(
            "gone",
            "entra-setup y",
            -90,
            0,
            now - Duration::hours(2),
        )]);
        let st = statuses(&s, now);
        assert_eq!(
            (st[0].days_left, st[0].health),
            (Some(0), SecretHealth::Expired)
        );
    }

    #[test]
    fn retire_removes_only_the_wizards_other_secrets() {
        let now = Utc::now();
        let s = state(vec![
            pw("old", "entra-setup 2025", -170, 10, now),
            pw("new", "entra-setup now", 0, 180, now),
            pw("theirs", "CI pipeline", -30, 300, now),
        ]);
        let plan = retire_plan(&intent(), &s, "tid", "new", now).unwrap();
        let removed: Vec<&str> = plan
            .changes
            .iter()
            .map(|c| match &c.change {
                Change::RemovePassword { key_id, .. } => key_id.as_str(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(removed, ["old"]);
        assert!(plan.notes[0].contains("1 secret on this app was not made by the wizard"));
    }

    #[test]
    fn after_a_rotation_the_old_secret_waits_for_hand_over_and_a_test() {
        let now = Utc::now();
        let s = state(vec![
            pw("old", "entra-setup 2025", -170, 10, now),
            pw("lost", "entra-setup crashed", -1, 300, now),
            pw("new", "entra-setup now", 0, 180, now),
            pw("theirs", "CI pipeline", -30, 300, now),
        ]);
        let mut plan = retire_plan(&intent(), &s, "tid", "new", now).unwrap();
        plan.changes.retain(
            |c| matches!(&c.change, Change::RemovePassword { key_id, .. } if key_id == "lost"),
        );
        let left: Vec<String> = left_after_rotation(&plan, &s, "new", now)
            .into_iter()
            .map(|x| x.key_id)
            .collect();
        assert_eq!(
            left,
            ["old"],
            "not the new one, not one the plan removes, not someone else's"
        );
        assert!(retire_blocker("Pomerium", false, true)
            .unwrap()
            .starts_with("Hand the new secret to Pomerium"));
        assert!(retire_blocker("Pomerium", true, false)
            .unwrap()
            .contains("Run the tests again"));
        assert_eq!(retire_blocker("Pomerium", true, true), None);
    }

    #[test]
    fn retire_refuses_when_it_would_leave_no_working_secret() {
        let now = Utc::now();
        let s = state(vec![pw("old", "entra-setup 2025", -170, 10, now)]);
        assert_eq!(
            retire_plan(&intent(), &s, "tid", "missing", now).unwrap_err(),
            RetireError::KeepNotFound {
                keep: "missing".into(),
                present: "old (entra-setup 2025)".into()
            }
        );
        assert_eq!(
            retire_plan(&intent(), &s, "tid", "old", now).unwrap_err(),
            RetireError::NothingToRetire
        );
        let s = state(vec![
            pw("old", "entra-setup 2025", -170, 10, now),
            pw("dead", "entra-setup x", -400, -1, now),
        ]);
        assert!(matches!(
            retire_plan(&intent(), &s, "tid", "dead", now).unwrap_err(),
            RetireError::KeepExpired(_)
        ));
    }
}
