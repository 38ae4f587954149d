//! Apps: the app registration and its service principal, and enterprise apps made from a
//! template (instantiated under a temporary name, then named and tagged).

use super::*;

impl Ctx<'_> {
    /// Checks that an app this apply's create found already there is held by nobody else:
    /// its owners are the signed-in admin's, it has no credentials and only `body`'s redirect
    /// URIs. Refuses otherwise, before anything else is written to it.
    async fn unheld_since_plan(&self, object_id: &str, body: &Value) -> Result<(), GraphError> {
        let me: Value = self
            .graph
            .get("/me?$select=id")
            .scopes(StepScopes::SignIn)
            .send_json()
            .await?;
        let desired: Vec<String> = body["web"]["redirectUris"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u.as_str().map(str::to_string))
            .collect();
        let expected = super::super::custody::Expected {
            app: "sign_in",
            admin_oid: me["id"].as_str().unwrap_or_default(),
            redirect_uris: desired,
            sp_credentials: false,
        };
        let found = super::super::custody::check(
            self.graph,
            object_id,
            None,
            &expected,
            &super::super::custody::Known::default(),
        )
        .await?;
        match found {
            None => Ok(()),
            Some(f) => Err(GraphError::Refused(
                super::super::custody::NotAdopted(vec![f]).to_string(),
            )),
        }
    }

    /// Creates or updates an app, or its service principal.
    pub(super) async fn apps(
        &self,
        pc: &PlannedChange,
        ids: &AppIds,
    ) -> Result<StepOut, GraphError> {
        let g = self.graph;
        let s = StepScopes::RegisterApp;
        match &pc.change {
            Change::UpsertApplication { body, creates, .. } => {
                let answer = g
                    .patch(unique_name_path(&self.plan.unique_name))
                    .header("Prefer", "create-if-missing")
                    .json(body.clone())
                    .scopes(s)
                    .retry_if(replication_delay)
                    .send()
                    .await?;
                let (app_object_id, app_id, created) = if answer.status == StatusCode::CREATED {
                    let b = answer.body.unwrap_or(Value::Null);
                    (
                        b["id"].as_str().map(str::to_string),
                        b["appId"].as_str().map(str::to_string),
                        true,
                    )
                } else if let Some(app) = self.state.app() {
                    (Some(app.id.clone()), Some(app.app_id.clone()), false)
                } else {
                    // Updated an app this run did not see: made by this very request when its
                    // first answer was lost and the retry found it, or by someone else in the
                    // moment since the plan read the tenant. It is the wizard's only if nobody
                    // else holds it (its owner is the admin, no credentials, only the profile's
                    // redirect URIs); otherwise the apply stops before any secret or consent.
                    let b: Value = g
                        .get(unique_name_path(&self.plan.unique_name))
                        .scopes(s)
                        .retry_if(replication_delay)
                        .send_json()
                        .await?;
                    let id = b["id"].as_str().map(str::to_string);
                    let ours = match (&id, creates) {
                        (Some(id), true) => {
                            self.unheld_since_plan(id, body).await?;
                            true
                        }
                        _ => false,
                    };
                    (id, b["appId"].as_str().map(str::to_string), ours)
                };
                Ok(StepOut {
                    ids: AppIds {
                        object_id: app_object_id.clone(),
                        app_id: app_id.clone(),
                        ..Default::default()
                    },
                    detail: format!(
                        "Application (client) ID {}",
                        app_id.clone().unwrap_or_default()
                    ),
                    created: created
                        .then(|| (ObjectKind::Application, app_object_id.unwrap_or_default())),
                    ..Default::default()
                })
            }
            Change::CreateServicePrincipal => {
                // The state read just before planning found none; if one appeared since (an
                // earlier attempt whose answer was lost, or a colleague), Graph answers 409 and
                // that one is used — not recorded as created, so Undo leaves it alone.
                let app_id = ids.app_id.clone().unwrap_or_default();
                let created = g
                    .post("/servicePrincipals")
                    .json(json!({"appId": app_id, "tags": ["WindowsAzureActiveDirectoryIntegratedApp", crate::setup::TAG]}))
                    .scopes(s)
                    .retry_if(replication_delay)
                    .send_json::<Value>()
                    .await;
                let (v, ours) = match created {
                    Ok(v) => (v, true),
                    Err(e) if e.status() == Some(409) => {
                        let v: Value = g
                            .get(format!("/servicePrincipals(appId='{app_id}')?$select=id"))
                            .scopes(s)
                            .retry_if(replication_delay)
                            .send_json()
                            .await?;
                        (v, false)
                    }
                    Err(e) => return Err(e),
                };
                let id = v["id"].as_str().unwrap_or_default().to_string();
                Ok(StepOut {
                    ids: AppIds {
                        sp_id: Some(id.clone()),
                        ..Default::default()
                    },
                    detail: format!("Service principal {id}"),
                    created: ours.then_some((ObjectKind::ServicePrincipal, id)),
                    ..Default::default()
                })
            }
            Change::InstantiateApp {
                template_id,
                temp_name,
                ..
            } => self.instantiate(template_id, temp_name).await,
            Change::TagApp { display_name } => {
                let id = ids.object_id.clone().unwrap_or_default();
                let unique = self.plan.scim_unique_name.clone().unwrap_or_default();
                let saml = self.plan.changes.iter().any(|c| {
                    matches!(
                        c.change,
                        Change::ConfigureSaml { .. } | Change::SetSamlUris { .. }
                    )
                });
                let scim = self.plan.provisioning_app().is_some();
                let mut tags = vec![
                    crate::setup::TAG.to_string(),
                    format!("{}:{}", crate::setup::TAG, self.plan.provider_id),
                ];
                if scim {
                    tags.push(format!("{}:scim", crate::setup::TAG));
                }
                if saml {
                    tags.push(format!("{}:saml", crate::setup::TAG));
                }
                let what = match (saml, scim) {
                    (true, true) => "SAML single sign-on and SCIM provisioning",
                    (true, false) => "SAML single sign-on",
                    _ => "SCIM provisioning",
                };
                g.patch(format!("/applications/{id}"))
                    .json(json!({
                        "uniqueName": unique,
                        "displayName": display_name,
                        "tags": tags,
                        "notes": format!("Managed by Entra Setup: {what} for {} ({unique}). Re-run Entra Setup to change or remove it. {}", self.plan.display_name, crate::setup::found::notes_line(&self.plan.inputs)),
                    }))
                    .scopes(s)
                    .retry_if(replication_delay)
                    .send()
                    .await?;
                // The enterprise app list shows the service principal's name: rename it too.
                let sp = ids.sp_id.clone().unwrap_or_default();
                g.patch(format!("/servicePrincipals/{sp}"))
                    .json(json!({"displayName": display_name}))
                    .scopes(s)
                    .retry_if(replication_delay)
                    .send()
                    .await?;
                // An app adopted from an interrupted run was made by the wizard: record it so Undo
                // removes it.
                let adopted = !self
                    .plan
                    .changes
                    .iter()
                    .any(|c| matches!(c.change, Change::InstantiateApp { .. }));
                Ok(StepOut {
                    detail: format!("Named \"{display_name}\" with uniqueName {unique}"),
                    created: adopted.then(|| (ObjectKind::TemplateApplication, id.clone())),
                    previous: adopted.then(|| ids.sp_id.clone().unwrap_or_default()),
                    ..Default::default()
                })
            }
            Change::RequireAssignment { required, was } => {
                let sp = ids.sp_id.clone().unwrap_or_default();
                g.patch(format!("/servicePrincipals/{sp}"))
                    .json(json!({"appRoleAssignmentRequired": required}))
                    .scopes(s)
                    .retry_if(replication_delay)
                    .send()
                    .await?;
                Ok(StepOut {
                    detail: format!(
                        "Assignment required: {}",
                        if *required { "Yes" } else { "No" }
                    ),
                    created: Some((ObjectKind::AssignmentRequirement, sp)),
                    previous: Some(was.to_string()),
                    ..Default::default()
                })
            }
            // SAML mode on the service principal; Entity ID and Reply URLs on the application.
            Change::ConfigureSaml { body, .. } | Change::SetSamlUris { body, .. } => {
                let (path, detail) = if matches!(pc.change, Change::ConfigureSaml { .. }) {
                    (
                        format!(
                            "/servicePrincipals/{}",
                            ids.sp_id.clone().unwrap_or_default()
                        ),
                        "SAML single sign-on is on".to_string(),
                    )
                } else {
                    (
                        format!(
                            "/applications/{}",
                            ids.object_id.clone().unwrap_or_default()
                        ),
                        format!(
                            "Entity ID {}",
                            body["identifierUris"][0].as_str().unwrap_or_default()
                        ),
                    )
                };
                g.patch(path)
                    .json(body.clone())
                    .scopes(s)
                    .retry_if(replication_delay)
                    .send()
                    .await?;
                Ok(StepOut {
                    detail,
                    ..Default::default()
                })
            }
            _ => Err(Self::misrouted(pc)),
        }
    }

    /// Instantiates an application template; when Graph answers 404 although the app was made
    /// (reference §8a), finds it by its temporary name.
    async fn instantiate(&self, template_id: &str, temp_name: &str) -> Result<StepOut, GraphError> {
        let g = self.graph;
        let s = StepScopes::RegisterApp;
        let path = format!("/applicationTemplates/{template_id}/instantiate");
        let made = g
            .post(path)
            .json(json!({"displayName": temp_name}))
            .scopes(s)
            .once()
            .send_json::<Value>()
            .await;
        let (app, sp) = match made {
            Ok(v) => (v["application"].clone(), v["servicePrincipal"].clone()),
            Err(e) if e.status() == Some(404) || e.ambiguous() => {
                let filter = format!(
                    "/applications?$filter=applicationTemplateId eq '{template_id}' and displayName eq '{}'",
                    temp_name.replace('\'', "''")
                );
                let mut patience = crate::wait::Patience::every(
                    self.options.instantiate_wait,
                    self.options.instantiate_poll,
                );
                let app = loop {
                    let apps: Vec<Value> = g.get(filter.clone()).scopes(s).list().await?;
                    if let Some(a) = apps.into_iter().next() {
                        break a;
                    }
                    if patience.tries() == 1 {
                        crate::wait::announce(
                            "Waiting for Entra to show the new gallery app",
                            patience.budget(),
                        );
                    }
                    if !patience.again().await {
                        return Err(e);
                    }
                };
                let app_id = app["appId"].as_str().unwrap_or_default().to_string();
                let sp: Value = g
                    .get(format!(
                        "/servicePrincipals(appId='{app_id}')?$select=id,appId,appRoles"
                    ))
                    .scopes(s)
                    .retry_if(replication_delay)
                    .send_json()
                    .await?;
                (app, sp)
            }
            Err(e) => return Err(e),
        };
        let str_of = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
        let role = Some(crate::setup::state::assignment_role(&sp["appRoles"]));
        let app_object_id = str_of(&app, "id");
        let sp_id = str_of(&sp, "id");
        Ok(StepOut {
            ids: AppIds {
                object_id: Some(app_object_id.clone()),
                app_id: Some(str_of(&app, "appId")),
                sp_id: Some(sp_id.clone()),
                role_id: role,
                ..Default::default()
            },
            detail: format!(
                "Enterprise app {} (service principal {sp_id})",
                str_of(&app, "appId")
            ),
            created: Some((ObjectKind::TemplateApplication, app_object_id)),
            previous: Some(sp_id),
            ..Default::default()
        })
    }
}
