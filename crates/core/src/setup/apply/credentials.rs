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
            Change::AddSigningCertificate {
                display_name, end, ..
            } => {
                let sp = ids.sp_id.clone().unwrap_or_default();
                let cert = self.add_signing_certificate(&sp, display_name, end).await?;
                Ok(StepOut {
                    ids: AppIds {
                        signing_thumbprint: Some(cert.thumbprint.clone()),
                        ..Default::default()
                    },
                    detail: format!(
                        "Signing certificate {} (thumbprint {}), expires {}",
                        cert.display_name,
                        cert.thumbprint,
                        cert.end
                            .map_or_else(String::new, |e| e.format("%Y-%m-%d").to_string())
                    ),
                    created: Some((ObjectKind::SigningCertificate, cert.thumbprint.clone())),
                    previous: Some(sp),
                    cert: Some(cert),
                    ..Default::default()
                })
            }
            Change::PreferSigningCertificate { thumbprint } => {
                let sp = ids.sp_id.clone().unwrap_or_default();
                let thumbprint = thumbprint
                    .clone()
                    .or_else(|| ids.signing_thumbprint.clone())
                    .unwrap_or_default();
                // Entra signs with this certificate from now on (reference §8b step 3); a key
                // added moments ago may not be accepted yet.
                self.graph
                    .patch(format!("/servicePrincipals/{sp}"))
                    .json(json!({"preferredTokenSigningKeyThumbprint": thumbprint}))
                    .scopes(StepScopes::RegisterApp)
                    .retry_if(|e| {
                        replication_delay(e)
                            || (e.status == 400
                                && e.message.contains("preferredTokenSigningKeyThumbprint"))
                    })
                    .send()
                    .await?;
                Ok(StepOut {
                    detail: format!("Entra signs with {thumbprint}"),
                    ..Default::default()
                })
            }
            Change::RemoveSigningCertificate { thumbprint, .. } => {
                let sp = ids.sp_id.clone().unwrap_or_default();
                let removed = remove_signing_certificate(self.graph, &sp, thumbprint).await?;
                Ok(StepOut {
                    detail: if removed {
                        format!("Removed the signing certificate {thumbprint}")
                    } else {
                        format!("The signing certificate {thumbprint} was already gone")
                    },
                    removed: Some(thumbprint.clone()),
                    ..Default::default()
                })
            }
            _ => Err(Self::misrouted(pc)),
        }
    }

    /// `addTokenSigningCertificate`, at most once: when its answer is lost, the certificate it
    /// made is found on the service principal (by name and expiry; a new key takes a while to
    /// show, so it is polled for) and used, never a second one made.
    async fn add_signing_certificate(
        &self,
        sp: &str,
        display_name: &str,
        end: &DateTime<Utc>,
    ) -> Result<crate::setup::state::SigningCert, GraphError> {
        let g = self.graph;
        let s = StepScopes::RegisterApp;
        let end_text = end.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let sent = g
            .post(format!(
                "/servicePrincipals/{sp}/addTokenSigningCertificate"
            ))
            .json(json!({"displayName": display_name, "endDateTime": end_text}))
            .scopes(s)
            .retry_if(replication_delay)
            .once()
            .send_json::<Value>()
            .await;
        let e = match sent {
            Ok(v) => {
                let key = v["key"].as_str().unwrap_or_default().to_string();
                let thumbprint = v["thumbprint"].as_str().map_or_else(
                    || {
                        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &key)
                            .map(|der| crate::saml::thumbprint(&der))
                            .unwrap_or_default()
                    },
                    str::to_string,
                );
                return Ok(crate::setup::state::SigningCert {
                    key_id: v["keyId"].as_str().unwrap_or_default().to_string(),
                    display_name: display_name.to_string(),
                    end: Some(*end),
                    thumbprint,
                    key,
                });
            }
            Err(e) if e.ambiguous() => e,
            Err(e) => return Err(e),
        };
        tracing::warn!(error = %e, "addTokenSigningCertificate's answer was lost; looking for the certificate it may have made");
        let found = g
            .poll_replication(|| async {
                let v: Value = g
                    .get(format!("/servicePrincipals/{sp}?$select=id,keyCredentials"))
                    .scopes(s)
                    .retry_if(replication_delay)
                    .send_json()
                    .await?;
                let state = crate::setup::state::SamlState::from_service_principal(&v);
                Ok(state.certificates.into_iter().find(|c| {
                    c.display_name == display_name
                        && c.end.is_some_and(|x| (x - *end).num_seconds().abs() < 2)
                }))
            })
            .await?;
        found.ok_or(e)
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
            // As long as replication can take (by the clock): a secret made but not yet shown
            // is found and removed, never left behind while another is made.
            let lost = g
                .poll_replication(|| async {
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

/// Removes a signing certificate from a service principal: its Sign and Verify keys and the
/// password credential Entra made with it (all share its customKeyIdentifier), by writing the
/// lists back without them, as Graph has no remove action for them. The active certificate is
/// never removed. Returns false when it was already gone.
pub(crate) async fn remove_signing_certificate(
    g: &GraphClient,
    sp: &str,
    thumbprint: &str,
) -> Result<bool, GraphError> {
    let s = StepScopes::RegisterApp;
    let read = || async {
        g.get(format!(
            "/servicePrincipals/{sp}?$select=id,keyCredentials,passwordCredentials,preferredTokenSigningKeyThumbprint"
        ))
        .scopes(s)
        .retry_if(replication_delay)
        .send_json::<Value>()
        .await
    };
    let custom_of = |v: &Value| {
        v["keyCredentials"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|k| {
                k["key"]
                    .as_str()
                    .and_then(|b| {
                        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b).ok()
                    })
                    .is_some_and(|der| {
                        crate::saml::thumbprint(&der).eq_ignore_ascii_case(thumbprint)
                    })
            })
            .and_then(|k| k["customKeyIdentifier"].as_str().map(str::to_string))
    };
    // A certificate added moments ago may not show in reads yet: wait for it before believing
    // it gone.
    let v = match g
        .poll_replication(|| async {
            let v = read().await?;
            Ok(custom_of(&v).is_some().then_some(v))
        })
        .await?
    {
        Some(v) => v,
        None => read().await?,
    };
    if v["preferredTokenSigningKeyThumbprint"]
        .as_str()
        .is_some_and(|p| p.eq_ignore_ascii_case(thumbprint))
    {
        return Ok(false);
    }
    let Some(custom) = custom_of(&v) else {
        return Ok(false);
    };
    // Null properties are left out of what is written back (Graph keeps them).
    let keep = |list: &Value| -> Vec<Value> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["customKeyIdentifier"] != custom.as_str())
            .map(|c| {
                let mut c = c.clone();
                if let Some(o) = c.as_object_mut() {
                    o.retain(|_, v| !v.is_null());
                }
                c
            })
            .collect()
    };
    g.patch(format!("/servicePrincipals/{sp}"))
        .json(json!({
            "keyCredentials": keep(&v["keyCredentials"]),
            "passwordCredentials": keep(&v["passwordCredentials"]),
        }))
        .scopes(s)
        .retry_if(replication_delay)
        .send()
        .await?;
    Ok(true)
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
