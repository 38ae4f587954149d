//! Access: delegated grants and application permissions on resource APIs, a colleague's
//! admin consent, and users and groups assigned to an app.

use super::*;

impl Ctx<'_> {
    /// Grants a permission, waits for consent, or assigns someone to an app.
    pub(super) async fn access(
        &self,
        pc: &PlannedChange,
        ids: &AppIds,
    ) -> Result<StepOut, GraphError> {
        let g = self.graph;
        match &pc.change {
            Change::GrantDelegated { scope, existing_id } => {
                let c = StepScopes::Consent;
                let sp = ids.sp_id.clone().unwrap_or_default();
                let graph_sp = self.state.graph_sp.id.clone();
                let patch = |id: String, previous: Option<String>| async move {
                    g.patch(format!("/oauth2PermissionGrants/{id}"))
                        .json(json!({"scope": scope}))
                        .scopes(c)
                        .retry_if(replication_delay)
                        .send()
                        .await?;
                    Ok::<StepOut, GraphError>(StepOut {
                        detail: format!("Consent now covers: {scope}"),
                        created: Some((ObjectKind::Grant, id)),
                        previous: Some(previous.unwrap_or_default()),
                        ..Default::default()
                    })
                };
                if let Some(id) = existing_id {
                    return patch(id.clone(), self.state.grant().and_then(|x| x.scope.clone()))
                        .await;
                }
                let created = g
                    .post("/oauth2PermissionGrants")
                    .json(json!({"clientId": sp, "consentType": "AllPrincipals", "resourceId": graph_sp, "scope": scope}))
                    .scopes(c)
                    .retry_if(replication_delay)
                    .send_json::<Value>()
                    .await;
                match created {
                    Ok(v) => {
                        let id = v["id"].as_str().unwrap_or_default().to_string();
                        Ok(StepOut {
                            detail: format!("Consented for the organisation: {scope}"),
                            created: Some((ObjectKind::Grant, id)),
                            ..Default::default()
                        })
                    }
                    // The grant exists already: made since the plan was read, by an earlier
                    // attempt whose answer was lost, or moments ago and not yet visible to
                    // reads (a re-run inside the replication delay). Read it, waiting for it to
                    // show, and extend it if it lacks scopes.
                    Err(e) if e.status() == Some(409) => {
                        let filter = format!("/oauth2PermissionGrants?$filter=clientId eq '{sp}' and consentType eq 'AllPrincipals'");
                        let found = g
                            .poll_replication(|| async {
                                Ok(g.get(filter.clone())
                                    .scopes(c)
                                    .list::<GrantState>()
                                    .await?
                                    .into_iter()
                                    .find(|x| x.resource_id == graph_sp))
                            })
                            .await?;
                        let existing = found.ok_or(e)?;
                        let have: BTreeSet<&str> = existing
                            .scope
                            .as_deref()
                            .unwrap_or_default()
                            .split_whitespace()
                            .collect();
                        if scope.split_whitespace().all(|w| have.contains(w)) {
                            return Ok(StepOut {
                                detail: format!("Consent already covers: {scope}"),
                                ..Default::default()
                            });
                        }
                        let mut all: Vec<String> = existing
                            .scope
                            .clone()
                            .unwrap_or_default()
                            .split_whitespace()
                            .map(str::to_string)
                            .collect();
                        for w in scope.split_whitespace() {
                            if !all.iter().any(|a| a == w) {
                                all.push(w.to_string());
                            }
                        }
                        let merged = all.join(" ");
                        g.patch(format!("/oauth2PermissionGrants/{}", existing.id))
                            .json(json!({"scope": merged}))
                            .scopes(c)
                            .retry_if(replication_delay)
                            .send()
                            .await?;
                        Ok(StepOut {
                            detail: format!("Consent now covers: {merged}"),
                            created: Some((ObjectKind::Grant, existing.id)),
                            previous: Some(existing.scope.unwrap_or_default()),
                            ..Default::default()
                        })
                    }
                    Err(e) => Err(e),
                }
            }
            Change::GrantAppRole { name, app_role_id } => {
                let sp = ids.sp_id.clone().unwrap_or_default();
                let graph_sp = self.state.graph_sp.id.clone();
                assign_app_role(
                    g,
                    &graph_sp,
                    &sp,
                    app_role_id,
                    (
                        format!("Granted {name}"),
                        format!("{name} was already granted"),
                    ),
                )
                .await
            }
            Change::RequestAdminConsent { roles, scopes } => {
                let app_id = ids.app_id.clone().unwrap_or_default();
                let url = admin_consent_url(
                    self.cloud,
                    &self.plan.tenant_id,
                    &app_id,
                    &self.redirect_uri,
                );
                self.emit(ApplyEvent::WaitingForConsent {
                    seq: u32::try_from(pc.seq).unwrap_or(0),
                    url: url.clone(),
                });
                let sp = ids.sp_id.clone().unwrap_or_default();
                let done = wait_for_consent(
                    self.graph,
                    &self.state.graph_sp,
                    &sp,
                    roles,
                    scopes,
                    self.options,
                    self.cancel,
                )
                .await?;
                if done {
                    Ok(StepOut {
                        detail: "A colleague consented".into(),
                        ..Default::default()
                    })
                } else {
                    Ok(StepOut {
                        detail: "Waiting for a colleague's consent".into(),
                        consent_url: Some(url),
                        ..Default::default()
                    })
                }
            }
            Change::AssignToApp {
                principal_id,
                display_name,
                ..
            } => {
                let sp = ids.sp_id.clone().unwrap_or_default();
                let role = ids
                    .role_id
                    .clone()
                    .unwrap_or_else(|| crate::setup::state::DEFAULT_ACCESS_ROLE.into());
                assign_app_role(
                    g,
                    &sp,
                    principal_id,
                    &role,
                    (
                        format!("Assigned {display_name}"),
                        format!("{display_name} was already assigned"),
                    ),
                )
                .await
            }
            Change::UnassignFromApp {
                assignment_id,
                display_name,
            } => {
                let sp = ids.sp_id.clone().unwrap_or_default();
                crate::graph::gone_ok(
                    g.delete(format!(
                        "/servicePrincipals/{sp}/appRoleAssignedTo/{assignment_id}"
                    ))
                    .scopes(StepScopes::Consent)
                    .send()
                    .await,
                )?;
                Ok(StepOut {
                    detail: format!("Removed {display_name}"),
                    removed: Some(assignment_id.clone()),
                    ..Default::default()
                })
            }
            _ => Err(Self::misrouted(pc)),
        }
    }
}

/// Checks whether admin consent covers the roles and scopes now, and keeps checking until
/// `options.consent_wait` has passed.
pub async fn wait_for_consent(
    graph: &GraphClient,
    graph_sp: &crate::graph::permissions::GraphServicePrincipal,
    sp_id: &str,
    roles: &[String],
    scopes: &[String],
    options: &ApplyOptions,
    cancel: &CancellationToken,
) -> Result<bool, GraphError> {
    let started = std::time::Instant::now();
    loop {
        if consent_present(graph, graph_sp, sp_id, roles, scopes).await? {
            return Ok(true);
        }
        if started.elapsed() >= options.consent_wait || cancel.is_cancelled() {
            return Ok(false);
        }
        tokio::select! {
            () = tokio::time::sleep(options.consent_poll) => {}
            () = cancel.cancelled() => return Ok(false),
        }
    }
}

/// Whether every role and scope has been granted to the service principal.
pub async fn consent_present(
    graph: &GraphClient,
    graph_sp: &crate::graph::permissions::GraphServicePrincipal,
    sp_id: &str,
    roles: &[String],
    scopes: &[String],
) -> Result<bool, GraphError> {
    use crate::provider::PermissionKind;
    let c = StepScopes::Consent;
    let assignments: Vec<AssignmentState> = graph
        .get(format!("/servicePrincipals/{sp_id}/appRoleAssignments"))
        .scopes(c)
        .retry_if(replication_delay)
        .list()
        .await?;
    let have_roles: BTreeSet<&str> = assignments
        .iter()
        .filter(|a| a.resource_id == graph_sp.id)
        .filter_map(|a| graph_sp.permission_name(&a.app_role_id, PermissionKind::Application))
        .collect();
    if !roles.iter().all(|r| have_roles.contains(r.as_str())) {
        return Ok(false);
    }
    if scopes.is_empty() {
        return Ok(true);
    }
    let grants: Vec<GrantState> = graph
        .get(format!("/oauth2PermissionGrants?$filter=clientId eq '{sp_id}' and consentType eq 'AllPrincipals'"))
        .scopes(c)
        .list()
        .await?;
    let granted: BTreeSet<String> = grants
        .iter()
        .filter(|g| g.resource_id == graph_sp.id)
        .flat_map(|g| {
            g.scope
                .clone()
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    Ok(scopes.iter().all(|s| granted.contains(s)))
}

/// Gives `principal` the app role `role` on the service principal `resource`
/// (`appRoleAssignedTo`). One that exists already (an earlier attempt, or a colleague) counts
/// as done; a new one is recorded with its resource, which Undo needs to delete it.
async fn assign_app_role(
    g: &GraphClient,
    resource: &str,
    principal: &str,
    role: &str,
    (done, already): (String, String),
) -> Result<StepOut, GraphError> {
    let created = g
        .post(format!("/servicePrincipals/{resource}/appRoleAssignedTo"))
        .json(json!({"principalId": principal, "resourceId": resource, "appRoleId": role}))
        .scopes(StepScopes::Consent)
        .retry_if(replication_delay)
        .send_json::<Value>()
        .await;
    match created {
        Ok(v) => Ok(StepOut {
            detail: done,
            created: Some((
                ObjectKind::Assignment,
                v["id"].as_str().unwrap_or_default().to_string(),
            )),
            previous: Some(resource.to_string()),
            ..Default::default()
        }),
        // It exists: the plan's read did not show it, so it was made since — most often by an
        // earlier attempt of this very call whose answer was lost. Read it (waiting for it to
        // replicate) and record it, so Undo and the next re-run know of it.
        Err(e)
            if e.api().is_some_and(|a| {
                a.status == 400 && a.message.to_ascii_lowercase().contains("already exists")
            }) =>
        {
            let path = format!("/servicePrincipals/{resource}/appRoleAssignedTo");
            let found = g
                .poll_replication(|| async {
                    Ok(g.get(path.clone())
                        .scopes(StepScopes::Consent)
                        .retry_if(replication_delay)
                        .list::<Value>()
                        .await?
                        .into_iter()
                        .find(|a| a["principalId"] == principal && a["appRoleId"] == role)
                        .and_then(|a| a["id"].as_str().map(str::to_string)))
                })
                .await?;
            Ok(StepOut {
                detail: already,
                created: found.map(|id| (ObjectKind::Assignment, id)),
                previous: Some(resource.to_string()),
                ..Default::default()
            })
        }
        Err(e) => Err(e),
    }
}
