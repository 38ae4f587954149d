//! A provisioning job after apply: its status in plain words (state, quarantine, counts),
//! provision-on-demand for one user, Test Connection with the saved credentials, and the
//! provisioning log where the licence allows it (reference §10.6–10.8).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::StepScopes;
use crate::graph::{GraphClient, GraphError};

/// How a job is doing, for the Done screen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    pub job_id: String,
    /// Graph's status code: NotConfigured, NotRun, Active, Paused, Quarantine.
    pub code: String,
    /// The schedule: Active, Disabled, Paused.
    pub schedule: String,
    /// One sentence for the admin.
    pub headline: String,
    /// `ok`, `working`, `attention`, `error`.
    pub tone: String,
    pub quarantine_reason: Option<String>,
    pub quarantine_error: Option<String>,
    pub next_attempt: Option<String>,
    /// The last cycle: Succeeded, Failed, EntryLevelErrors.
    pub last_cycle: Option<String>,
    pub last_cycle_ended: Option<String>,
    pub last_error: Option<String>,
    #[cfg_attr(feature = "specta", specta(type = u32))]
    pub users: u64,
    #[cfg_attr(feature = "specta", specta(type = u32))]
    pub groups: u64,
    #[cfg_attr(feature = "specta", specta(type = u32))]
    pub exported_last_cycle: u64,
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str()
        .filter(|s| !s.is_empty() && !s.starts_with("0001-01-01"))
        .map(str::to_string)
}

/// Reads a job's status.
pub async fn job_status(
    graph: &GraphClient,
    sp_id: &str,
    job_id: &str,
) -> Result<JobStatus, GraphError> {
    let j: Value = graph
        .get(format!(
            "/servicePrincipals/{sp_id}/synchronization/jobs/{job_id}"
        ))
        .scopes(StepScopes::Scim)
        .send_json()
        .await?;
    Ok(interpret(job_id, &j))
}

/// Turns Graph's synchronizationJob into [`JobStatus`].
pub fn interpret(job_id: &str, j: &Value) -> JobStatus {
    let status = &j["status"];
    let code = status["code"].as_str().unwrap_or("Unknown").to_string();
    let schedule = j["schedule"]["state"]
        .as_str()
        .unwrap_or("Unknown")
        .to_string();
    let count = |k: &str| {
        status["synchronizedEntryCountByType"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["key"] == k))
            .and_then(|e| e["value"].as_u64())
            .unwrap_or(0)
    };
    let last = &status["lastExecution"];
    let last_cycle = opt_str(&last["state"]);
    let last_error = opt_str(&last["error"]["message"]);
    let q = &status["quarantine"];
    let quarantine_reason = opt_str(&q["reason"]);
    let quarantine_error = opt_str(&q["error"]["message"]);
    let (users, groups) = (count("User"), count("Group"));
    let (headline, tone) = match code.as_str() {
        "Quarantine" => (
            format!(
                "Quarantined: Entra stopped provisioning{}. Fix the cause, then restart provisioning.",
                quarantine_error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ),
            "error",
        ),
        "Paused" => (
            "Paused: nothing is provisioned until you start it again.".to_string(),
            "attention",
        ),
        "NotConfigured" => (
            "Not configured: the tenant URL and token are not saved yet.".to_string(),
            "attention",
        ),
        "NotRun" if schedule != "Active" => (
            "Configured but not started.".to_string(),
            "attention",
        ),
        _ if last_cycle.is_none() => (
            "Initial cycle in progress: Entra's first cycle takes minutes, longer in larger directories. Nothing is wrong; this page looks again by itself.".to_string(),
            "working",
        ),
        _ if last_cycle.as_deref() == Some("EntryLevelErrors") => (
            format!("Running, but some objects failed in the last cycle ({} in sync). See the provisioning log.", counted(users, groups)),
            "attention",
        ),
        _ if last_cycle.as_deref() == Some("Failed") => (
            format!(
                "Running, but the last cycle failed{}.",
                last_error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
            "error",
        ),
        _ => (
            format!("Provisioning is on: {} in sync. Later cycles run about every 40 minutes.", counted(users, groups)),
            "ok",
        ),
    };
    JobStatus {
        job_id: job_id.to_string(),
        code,
        schedule,
        headline,
        tone: tone.to_string(),
        quarantine_reason,
        quarantine_error,
        next_attempt: opt_str(&q["nextAttempt"]),
        last_cycle,
        last_cycle_ended: opt_str(&last["timeEnded"]),
        last_error,
        users,
        groups,
        exported_last_cycle: last["countExported"].as_u64().unwrap_or(0),
    }
}

/// Entra's Test Connection with the credentials it has saved.
pub async fn validate_saved(
    graph: &GraphClient,
    sp_id: &str,
    job_id: &str,
) -> Result<(), GraphError> {
    graph
        .post(format!(
            "/servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/validateCredentials"
        ))
        .json(json!({"useSavedCredentials": true}))
        .scopes(StepScopes::Scim)
        .send()
        .await
        .map(|_| ())
}

/// One step of a provision-on-demand run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct OnDemandStep {
    pub name: String,
    pub status: String,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct OnDemandResult {
    /// success, failure, skipped, warning.
    pub status: String,
    /// create, update, disable, other.
    pub action: String,
    pub steps: Vec<OnDemandStep>,
    pub error: Option<String>,
}

/// Provisions one user now, as the portal's "Provision on demand" does.
pub async fn provision_on_demand(
    graph: &GraphClient,
    sp_id: &str,
    job_id: &str,
    user_id: &str,
) -> Result<OnDemandResult, GraphError> {
    let job = format!("/servicePrincipals/{sp_id}/synchronization/jobs/{job_id}");
    let schema: Value = graph
        .get(format!("{job}/schema"))
        .scopes(StepScopes::Scim)
        .send_json()
        .await?;
    let rules = schema["synchronizationRules"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let rule = rules
        .iter()
        .find(|r| {
            r["name"]
                .as_str()
                .is_some_and(|n| n.to_ascii_uppercase().contains("USER"))
        })
        .or_else(|| rules.first())
        .and_then(|r| r["id"].as_str())
        .unwrap_or_default()
        .to_string();
    let answer: Value = graph
        .post(format!("{job}/provisionOnDemand"))
        .json(json!({"parameters": [{"ruleId": rule, "subjects": [{"objectId": user_id, "objectTypeName": "User"}]}]}))
        .scopes(StepScopes::Scim)
        .send_json()
        .await?;
    let detail: Value = answer["value"]
        .as_str()
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or(Value::Null);
    let first = if detail.is_array() {
        detail[0].clone()
    } else {
        detail
    };
    let steps = first["provisioningSteps"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| OnDemandStep {
            name: s["name"].as_str().unwrap_or_default().to_string(),
            status: s["status"].as_str().unwrap_or_default().to_string(),
            description: s["description"].as_str().unwrap_or_default().to_string(),
        })
        .collect();
    Ok(OnDemandResult {
        status: first["statusInfo"]["status"]
            .as_str()
            .unwrap_or("unknown")
            .to_string(),
        action: first["provisioningAction"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        steps,
        error: opt_str(&first["statusInfo"]["errorInformation"]["reason"]),
    })
}

/// One provisioning log line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    pub at: String,
    pub action: String,
    pub status: String,
    pub who: String,
    pub kind: String,
    pub error: Option<String>,
}

/// The provisioning log, or why it cannot be shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Logs {
    Entries {
        entries: Vec<LogEntry>,
    },
    /// Reading provisioning logs through Graph needs a P1/P2 tenant.
    NeedsPremium {
        message: String,
    },
}

/// The newest `top` provisioning log entries of the app.
pub async fn logs(graph: &GraphClient, sp_id: &str, top: u32) -> Result<Logs, GraphError> {
    let r = graph
        .get(format!(
            "/auditLogs/provisioning?$filter=servicePrincipal/id eq '{sp_id}'&$top={top}"
        ))
        .scopes(StepScopes::Scim)
        .send_json::<Value>()
        .await;
    let v = match r {
        Ok(v) => v,
        Err(e)
            if e.api().is_some_and(|a| {
                a.status == 403 && a.code == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
            }) =>
        {
            return Ok(Logs::NeedsPremium {
                message: "Provisioning logs can be read through Microsoft Graph only in tenants with Microsoft Entra ID P1 or P2. Provisioning itself works on Free: see the job status above, or open the provisioning logs in the Entra admin center.".into(),
            });
        }
        Err(e) => return Err(e),
    };
    let entries = v["value"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| LogEntry {
            at: e["activityDateTime"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            action: e["provisioningAction"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            status: e["provisioningStatusInfo"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            who: e["sourceIdentity"]["displayName"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            kind: e["sourceIdentity"]["identityType"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            error: opt_str(&e["provisioningStatusInfo"]["errorInformation"]["reason"]),
        })
        .collect();
    Ok(Logs::Entries { entries })
}

/// "3 users and 1 group", each in its right number.
fn counted(users: u64, groups: u64) -> String {
    let one = |n: u64, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!("{} and {}", one(users, "user"), one(groups, "group"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarantine_is_explained() {
        let j = json!({"schedule": {"state": "Active"}, "status": {"code": "Quarantine", "quarantine": {"reason": "EncounteredQuarantineException", "error": {"message": "401 Unauthorized"}, "nextAttempt": "2026-11-23T01:00:00Z"}, "lastExecution": {"state": "Failed"}}});
        let s = interpret("scim.1", &j);
        assert_eq!(s.tone, "error");
        assert!(s.headline.contains("401 Unauthorized"), "{}", s.headline);
        assert_eq!(s.next_attempt.as_deref(), Some("2026-11-23T01:00:00Z"));
    }

    #[test]
    fn counts_come_from_the_last_cycle() {
        let j = json!({"schedule": {"state": "Active"}, "status": {"code": "Active", "lastExecution": {"state": "Succeeded", "countExported": 5, "timeEnded": "2026-11-22T10:00:00Z"}, "synchronizedEntryCountByType": [{"key": "User", "value": 4}, {"key": "Group", "value": 1}], "steadyStateFirstAchievedTime": "0001-01-01T00:00:00Z"}});
        let s = interpret("scim.1", &j);
        assert_eq!((s.users, s.groups, s.exported_last_cycle), (4, 1, 5));
        assert_eq!(s.tone, "ok");
    }
}
