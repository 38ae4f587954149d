//! Credentials: client secrets added (at most once, however the answer is lost) and removed.

use super::*;

impl Ctx<'_> {
    /// Adds or removes a client secret.
    pub(super) async fn credentials(
        &self,
        pc: &PlannedChange,
        ids: &AppIds,
    ) -> Result<StepOut, GraphError> {
        let g = self.graph;
        let app_path = ids
            .object_id
            .as_ref()
            .map(|id| format!("/applications/{id}"))
            .unwrap_or_else(|| unique_name_path(&self.plan.unique_name));
        match &pc.change {
            Change::RemovePassword { key_id, .. } => {
                remove_password(g, &app_path, key_id).await?;
                Ok(StepOut {
                    detail: format!("Removed secret {key_id}"),
                    removed: Some(key_id.clone()),
                    ..Default::default()
                })
            }
            Change::AddPassword {
                display_name, end, ..
            } => {
                let v = self.add_password(&app_path, display_name, end).await?;
                let key_id = v["keyId"].as_str().unwrap_or_default().to_string();
                let secret = NewSecret {
                    key_id: key_id.clone(),
                    display_name: display_name.clone(),
                    hint: v["hint"].as_str().unwrap_or_default().to_string(),
                    end: v["endDateTime"]
                        .as_str()
                        .and_then(|e| e.parse().ok())
                        .unwrap_or(*end),
                    value: SecretString::from(
                        v["secretText"].as_str().unwrap_or_default().to_string(),
                    ),
                };
                Ok(StepOut {
                    detail: format!("Secret added, expires {}", secret.end.format("%Y-%m-%d")),
                    created: Some((ObjectKind::Password, key_id)),
                    secret: Some(secret),
                    ..Default::default()
                })
            }
            _ => Err(Self::misrouted(pc)),
        }
    }

    /// `addPassword`, at most once per secret: Graph returns the secret's value only in its
    /// answer, so when the answer is lost (a gateway timeout, a dropped connection) a secret may
    /// exist whose value nobody has. The app is read again (waiting out replication); such a
    /// secret is removed and a new one added, so exactly one usable secret results.
    async fn add_password(
        &self,
        app_path: &str,
        display_name: &str,
        end: &DateTime<Utc>,
    ) -> Result<Value, GraphError> {
        let g = self.graph;
        let s = StepScopes::RegisterApp;
        let body = json!({"passwordCredential": {"displayName": display_name, "endDateTime": end.format("%Y-%m-%dT%H:%M:%SZ").to_string()}});
        let mut removed: Vec<String> = vec![];
        let mut tries = 0;
        loop {
            tries += 1;
            let sent = g
                .post(format!("{app_path}/addPassword"))
                .json(body.clone())
                .scopes(s)
                .retry_if(replication_delay)
                .once()
                .send_json::<Value>()
                .await;
            let e = match sent {
                Ok(v) => return Ok(v),
                Err(e) if e.ambiguous() && tries < 3 => e,
                Err(e) => return Err(e),
            };
            tracing::warn!(error = %e, "addPassword's answer was lost; looking for the secret it may have made");
            let lost = g
                .poll(g.replication_tries(), || async {
                    let app: Value = g
                        .get(format!("{app_path}?$select=id,passwordCredentials"))
                        .scopes(s)
                        .retry_if(replication_delay)
                        .send_json()
                        .await?;
                    Ok(app["passwordCredentials"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|c| c["displayName"] == display_name)
                        .filter_map(|c| c["keyId"].as_str().map(str::to_string))
                        .find(|k| !removed.contains(k)))
                })
                .await?;
            if let Some(key_id) = lost {
                remove_password(g, app_path, &key_id).await?;
                removed.push(key_id);
            }
        }
    }
}

/// Removes a client secret from an app; one already gone is fine.
async fn remove_password(g: &GraphClient, app_path: &str, key_id: &str) -> Result<(), GraphError> {
    crate::graph::gone_ok(
        g.post(format!("{app_path}/removePassword"))
            .json(json!({"keyId": key_id}))
            .scopes(StepScopes::RegisterApp)
            .send()
            .await,
    )
}
