//! Provisioning: the synchronization job, its credentials and scope, and starting it.

use super::*;

impl Ctx<'_> {
    /// Creates, configures or starts the provisioning job.
    pub(super) async fn provisioning(
        &self,
        pc: &PlannedChange,
        ids: &AppIds,
    ) -> Result<StepOut, GraphError> {
        let g = self.graph;
        match &pc.change {
            Change::CreateSyncJob { template } => {
                let sp = ids.sp_id.clone().unwrap_or_default();
                let sc = StepScopes::Scim;
                let templates: Vec<Value> = g
                    .get(format!("/servicePrincipals/{sp}/synchronization/templates"))
                    .scopes(sc)
                    .retry_if(sync_not_ready)
                    .list()
                    .await?;
                let offered: Vec<&str> =
                    templates.iter().filter_map(|t| t["id"].as_str()).collect();
                // The template the profile names, by id or factoryTag (never the non-gallery
                // `scim` one on a gallery app: its schema and mappings are the vendor's); with
                // none named, the one the gallery app offers. Several, and none named: the
                // admin's profile must say which.
                if template.is_empty() && offered.len() > 1 {
                    return Err(refusal(
                        "SeveralScimTemplates",
                        &format!(
                            "This gallery app offers several provisioning templates ({}); the wizard will not guess which one the provider's SCIM endpoint fits. Name it in the profile's provisioning.scim.job_template (Enterprise applications → the app → Provisioning shows the same choice).",
                            offered.join(", ")
                        ),
                        format!("GET /servicePrincipals/{sp}/synchronization/templates"),
                    ));
                }
                let Some(template_id) = templates
                    .iter()
                    .find(|t| {
                        template.is_empty()
                            || t["id"] == template.as_str()
                            || t["factoryTag"]
                                .as_str()
                                .is_some_and(|f| f.eq_ignore_ascii_case(template))
                    })
                    .and_then(|t| t["id"].as_str())
                    .map(str::to_string)
                else {
                    return Err(refusal(
                        "NoScimTemplate",
                        &format!(
                            "This enterprise app offers no {}provisioning template (it offers: {}), so Entra cannot provision from it as the provider's profile says. {}",
                            if template.is_empty() { String::new() } else { format!("\"{template}\" ") },
                            if offered.is_empty() { "none".to_string() } else { offered.join(", ") },
                            if offered.is_empty() {
                                "A gallery app gets its template from Microsoft's gallery: if the app is minutes old, run the wizard again shortly; if it stays empty, the gallery app no longer offers provisioning (Enterprise applications → the app → Provisioning shows the same)."
                            } else {
                                "Check the profile's provisioning.scim.job_template."
                            }
                        ),
                        format!("GET /servicePrincipals/{sp}/synchronization/templates"),
                    ));
                };
                let id = self.create_sync_job(&sp, &template_id).await?;
                Ok(StepOut {
                    ids: AppIds {
                        job_id: Some(id.clone()),
                        ..Default::default()
                    },
                    detail: format!("Job {id}"),
                    created: Some((ObjectKind::SyncJob, id)),
                    previous: Some(sp),
                    ..Default::default()
                })
            }
            Change::ValidateScimCredentials { tenant_url } => {
                let sp = ids.sp_id.clone().unwrap_or_default();
                let job = ids.job_id.clone().unwrap_or_default();
                let token = self.token()?;
                g.post(format!(
                    "/servicePrincipals/{sp}/synchronization/jobs/{job}/validateCredentials"
                ))
                .json(json!({"useSavedCredentials": false, "credentials": [
                    {"key": "BaseAddress", "value": tenant_url},
                    {"key": "SecretToken", "value": token.expose_secret()},
                ]}))
                .scopes(StepScopes::Scim)
                .retry_if(sync_not_ready)
                .send()
                .await?;
                Ok(StepOut {
                    detail: "Entra reached the endpoint and the token was accepted".into(),
                    ..Default::default()
                })
            }
            Change::SaveScimSecrets {
                tenant_url,
                sync_all,
                ..
            } => {
                let sp = ids.sp_id.clone().unwrap_or_default();
                let token = self.token()?;
                g.put(format!("/servicePrincipals/{sp}/synchronization/secrets"))
                    .json(json!({"value": [
                        {"key": "BaseAddress", "value": tenant_url},
                        {"key": "SecretToken", "value": token.expose_secret()},
                        {"key": "SyncNotificationSettings", "value": "{\"Enabled\":false,\"DeleteThresholdEnabled\":false}"},
                        {"key": "SyncAll", "value": if *sync_all { "true" } else { "false" }},
                    ]}))
                    .scopes(StepScopes::Scim)
                    .retry_if(sync_not_ready)
                    .send()
                    .await?;
                Ok(StepOut {
                    detail: "Tenant URL, token and scope saved".into(),
                    ..Default::default()
                })
            }
            Change::StartSyncJob { restart } => {
                let sp = ids.sp_id.clone().unwrap_or_default();
                let job = ids.job_id.clone().unwrap_or_default();
                let path = format!("/servicePrincipals/{sp}/synchronization/jobs/{job}");
                let req = if *restart {
                    g.post(format!("{path}/restart")).json(
                        json!({"criteria": {"resetScope": "Watermark, Escrows, QuarantineState"}}),
                    )
                } else {
                    g.post(format!("{path}/start"))
                };
                req.scopes(StepScopes::Scim)
                    .retry_if(sync_not_ready)
                    .send()
                    .await?;
                Ok(StepOut {
                    detail: if *restart {
                        "Provisioning restarted".into()
                    } else {
                        "Provisioning started".into()
                    },
                    ..Default::default()
                })
            }
            _ => Err(Self::misrouted(pc)),
        }
    }

    /// Creates the provisioning job from `template`, at most once: after an answer
    /// that leaves it unknown whether the job was made (or a conflict), the jobs are read
    /// (waiting out replication) and an existing job from that template is used.
    async fn create_sync_job(&self, sp: &str, template: &str) -> Result<String, GraphError> {
        let g = self.graph;
        let sc = StepScopes::Scim;
        let jobs_path = format!("/servicePrincipals/{sp}/synchronization/jobs");
        let mut tries = 0;
        loop {
            tries += 1;
            let made = g
                .post(jobs_path.clone())
                .json(json!({"templateId": template}))
                .scopes(sc)
                .retry_if(sync_not_ready)
                .once()
                .send_json::<Value>()
                .await;
            let e = match made {
                Ok(job) => return Ok(job["id"].as_str().unwrap_or_default().to_string()),
                Err(e) if (e.ambiguous() || e.status() == Some(409)) && tries < 3 => e,
                Err(e) => return Err(e),
            };
            tracing::warn!(error = %e, "creating the provisioning job did not answer clearly; looking for it");
            let found = g
                .poll_replication(|| async {
                    let jobs: Vec<Value> = g
                        .get(jobs_path.clone())
                        .scopes(sc)
                        .retry_if(sync_not_ready)
                        .list()
                        .await?;
                    Ok(jobs
                        .into_iter()
                        .find(|j| j["templateId"] == template)
                        .and_then(|j| j["id"].as_str().map(str::to_string)))
                })
                .await?;
            if let Some(id) = found {
                return Ok(id);
            }
        }
    }

    fn token(&self) -> Result<&SecretString, GraphError> {
        self.options.scim_token.as_ref().ok_or_else(|| {
            refusal(
                "ScimTokenMissing",
                "The SCIM Secret Token is needed to save provisioning credentials; enter it in the SCIM step.",
                "saveScimSecrets".into(),
            )
        })
    }
}

/// Right after the provisioning app is created its synchronization endpoints answer 404 or 403
/// for a while (terraform retries 409 and 403 on job creation, reference §10.2).
fn sync_not_ready(e: &ApiError) -> bool {
    replication_delay(e)
        || (e.status == 403
            && e.path.contains("/synchronization/")
            && e.method != "GET"
            && e.code != "Authorization_RequestDenied")
        || (e.status == 409 && e.path.ends_with("/jobs"))
}
