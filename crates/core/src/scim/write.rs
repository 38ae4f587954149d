//! The write checks: a clearly named test user and group, created, changed and deleted with
//! the bodies Entra sends (Microsoft's SCIM tutorial), removed even when a check fails.

use serde_json::{json, Value};

use super::client::{describe, status_of, total_results, urlencode, Cred, Http};
use super::report::{check, skipped};
use super::{
    Exchange, ScimAuth, ScimCheck, ScimStatus, ENTERPRISE_USER, ENTRA_LEGACY_GROUP_SCHEMA,
    GROUP_SCHEMA, PATCH_OP, USER_SCHEMA,
};

pub(super) const WRITE_CHECKS: [(&str, &str); 8] = [
    ("create_user", "Creating a user answers 201 with an id"),
    ("uniqueness", "A duplicate userName is refused with 409"),
    ("get_user", "The new user can be read by id"),
    ("filter_case_insensitive", "userName filters ignore case"),
    ("patch_entra_default", "Entra's default PATCH format works"),
    ("patch_aadopt", "The aadOptscim062020 PATCH format works"),
    ("group_members", "Group members can be added and removed"),
    ("delete", "Deleting the user and group works"),
];

pub(super) fn active_is(v: &Value, want: bool) -> bool {
    match &v["active"] {
        Value::Bool(b) => *b == want,
        Value::String(s) => s.eq_ignore_ascii_case(if want { "true" } else { "false" }),
        _ => false,
    }
}

pub(super) async fn write_tests(
    http: &Http,
    auth: &ScimAuth,
    flag_in_url: bool,
) -> (Vec<ScimCheck>, bool) {
    use reqwest::Method;
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let user_name = format!("entra-setup-check-{tag}@example.invalid");
    let user_body = entra_create_user(&format!("entra-setup-check-{tag}"), &user_name);
    let cred = Cred::Real(auth);
    let mut out = vec![];
    let mut flag = flag_in_url;
    let (cx, cv) = http
        .call(Method::POST, "/Users", Some(user_body.clone()), cred)
        .await;
    let user_id = cv
        .as_ref()
        .and_then(|v| v["id"].as_str())
        .map(str::to_string);
    let Some(uid) = user_id.filter(|_| status_of(&cx) == 201) else {
        out.push(check(
            "create_user",
            WRITE_CHECKS[0].1,
            ScimStatus::Fail,
            describe(&cx),
            "Entra cannot provision users: every create fails and the job quarantines",
            "RFC 7644 §3.3",
            Some("Answer POST /Users with 201 Created and the new resource's id."),
            vec![cx.clone()],
        ));
        for (id, title) in &WRITE_CHECKS[1..] {
            out.push(skipped(id, title, "No test user could be created."));
        }
        // A 2xx without an id may still have created something; try to find and remove it.
        cleanup_user_by_name(http, auth, &user_name).await;
        return (out, flag);
    };
    out.push(check(
        "create_user",
        WRITE_CHECKS[0].1,
        ScimStatus::Pass,
        format!("Created {user_name} with id {uid}."),
        "",
        "RFC 7644 §3.3",
        None,
        vec![cx],
    ));

    // uniqueness
    let (dx, dv) = http
        .call(Method::POST, "/Users", Some(user_body.clone()), cred)
        .await;
    out.push(match status_of(&dx) {
        409 => check(
            "uniqueness",
            WRITE_CHECKS[1].1,
            ScimStatus::Pass,
            "409 Conflict.",
            "",
            "RFC 7644 §3.3",
            None,
            vec![dx],
        ),
        s if (200..300).contains(&s) => {
            if let Some(dup) = dv
                .as_ref()
                .and_then(|v| v["id"].as_str())
                .filter(|d| *d != uid)
            {
                let _ = http
                    .call(Method::DELETE, &format!("/Users/{dup}"), None, cred)
                    .await;
            }
            check(
                "uniqueness",
                WRITE_CHECKS[1].1,
                ScimStatus::Fail,
                format!("A second user with the same userName was accepted ({s})."),
                "Entra can create duplicate users after a retry",
                "RFC 7644 §3.3",
                Some("Refuse a duplicate userName with 409 Conflict (scimType uniqueness)."),
                vec![dx],
            )
        }
        _ => check(
            "uniqueness",
            WRITE_CHECKS[1].1,
            ScimStatus::Warn,
            format!("Refused, but not with 409: {}", describe(&dx)),
            "Entra may not recognise an existing user and report errors instead of matching",
            "RFC 7644 §3.3",
            Some("Answer duplicates with 409 Conflict."),
            vec![dx],
        ),
    });

    // get_user
    let (gx, gv) = http
        .call(Method::GET, &format!("/Users/{uid}"), None, cred)
        .await;
    out.push(
        if status_of(&gx) == 200
            && gv.as_ref().is_some_and(|v| {
                v["userName"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(&user_name))
            })
        {
            check(
                "get_user",
                WRITE_CHECKS[2].1,
                ScimStatus::Pass,
                "200 with the userName.",
                "",
                "RFC 7644 §3.4.1",
                None,
                vec![gx],
            )
        } else {
            check(
                "get_user",
                WRITE_CHECKS[2].1,
                ScimStatus::Fail,
                describe(&gx),
                "Entra cannot read back users it created",
                "RFC 7644 §3.4.1",
                Some("Answer GET /Users/{id} with 200 and the resource."),
                vec![gx],
            )
        },
    );

    // filter_case_insensitive
    let upper = user_name.to_uppercase();
    let (fx, fv) = http
        .call(
            Method::GET,
            &format!(
                "/Users?filter={}",
                urlencode(&format!("userName eq \"{upper}\""))
            ),
            None,
            cred,
        )
        .await;
    out.push(match total_results(&fv) {
        Some(1) if status_of(&fx) == 200 => check("filter_case_insensitive", WRITE_CHECKS[3].1, ScimStatus::Pass, "Found with the userName in upper case.", "", "RFC 7643 §2.1 (caseExact false)", None, vec![fx]),
        _ => check("filter_case_insensitive", WRITE_CHECKS[3].1, ScimStatus::Warn, format!("Not found with the userName in upper case: {}", describe(&fx)), "If sign-in names change case, Entra will not match the existing user and tries to create a duplicate", "RFC 7643 §2.1 (userName is caseExact false)", Some("Compare userName case-insensitively in filters."), vec![fx]),
    });

    // patch_entra_default
    let default_patch = json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "Replace", "path": "displayName", "value": "Entra Setup test user (patched)"},
        {"op": "Replace", "path": "active", "value": "False"}
    ]});
    let (p1, r1, rv1) = patch_and_read(http, &format!("/Users/{uid}"), default_patch, cred).await;
    let default_ok = (200..300).contains(&status_of(&p1))
        && rv1.as_ref().is_some_and(|v| {
            active_is(v, false) && v["displayName"] == "Entra Setup test user (patched)"
        });
    out.push(if default_ok {
        check("patch_entra_default", WRITE_CHECKS[4].1, ScimStatus::Pass, "Capitalised ops and active as the string \"False\" were applied.", "", "RFC 7644 §3.5.2", None, vec![p1, r1])
    } else {
        check("patch_entra_default", WRITE_CHECKS[4].1, if flag_in_url { ScimStatus::Warn } else { ScimStatus::Fail }, format!("{} — the server wants lower-case ops or a boolean active.", describe(&p1)), if flag_in_url { "Only matters if ?aadOptscim062020 is taken off the tenant URL" } else { "Without the aadOptscim062020 flag, every update and disable fails" }, "RFC 7644 §3.5.2", Some("Append ?aadOptscim062020 to the tenant URL in Entra (if the next check passes), or accept ops case-insensitively and active as \"True\"/\"False\"."), vec![p1, r1])
    });

    // patch_aadopt
    let rfc_patch = json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": "active", "value": true},
        {"op": "replace", "value": {"displayName": "Entra Setup test user (aadOpt)", "name.givenName": "Entra"}}
    ]});
    let (p2, r2, rv2) = patch_and_read(http, &format!("/Users/{uid}"), rfc_patch, cred).await;
    let rfc_ok = (200..300).contains(&status_of(&p2))
        && rv2.as_ref().is_some_and(|v| {
            active_is(v, true) && v["displayName"] == "Entra Setup test user (aadOpt)"
        });
    out.push(if rfc_ok {
        check(
            "patch_aadopt",
            WRITE_CHECKS[5].1,
            ScimStatus::Pass,
            "Lower-case ops, a boolean active and a no-path replace were applied.",
            "",
            "RFC 7644 §3.5.2",
            None,
            vec![p2, r2],
        )
    } else {
        check(
            "patch_aadopt",
            WRITE_CHECKS[5].1,
            if default_ok && !flag_in_url {
                ScimStatus::Warn
            } else {
                ScimStatus::Fail
            },
            describe(&p2),
            if default_ok && !flag_in_url {
                "Only matters if you add ?aadOptscim062020 to the tenant URL: leave it off"
            } else {
                "Updates fail with either PATCH format"
            },
            "RFC 7644 §3.5.2",
            Some("Support PATCH with a value object and no path."),
            vec![p2, r2],
        )
    });
    if !default_ok && rfc_ok && !flag_in_url {
        flag = true;
    }
    let mut removal_needs_flag = false;

    // group_members: Entra's Create Group body, then member add and removal in the dialect the
    // tenant URL will make Entra speak; when the default removal is refused, the whole
    // aadOptscim062020 round is tried before the flag is recommended.
    let gname = format!("entra-setup-check-{tag}");
    let (gcx, gcv) = http
        .call(
            Method::POST,
            "/Groups",
            Some(entra_create_group(&gname, &gname)),
            cred,
        )
        .await;
    let gid = gcv
        .as_ref()
        .and_then(|v| v["id"].as_str())
        .map(str::to_string)
        .filter(|_| status_of(&gcx) == 201);
    match &gid {
        None => out.push(check(
            "group_members",
            WRITE_CHECKS[6].1,
            ScimStatus::Fail,
            format!("Creating the test group with Entra's body (which lists the schema {ENTRA_LEGACY_GROUP_SCHEMA} next to the core Group schema) failed: {}", describe(&gcx)),
            "Group provisioning fails: every group Entra creates is refused",
            "RFC 7644 §3.3",
            Some("Accept POST /Groups as Entra sends it, including its extra schema URN, or turn off group provisioning."),
            vec![gcx],
        )),
        Some(g) => {
            let group = format!("/Groups/{g}");
            let first = member_round(http, &group, &uid, flag, cred).await;
            let mut ex = vec![gcx];
            ex.extend(first.exchanges.iter().cloned());
            let mut aad_round_ok = false;
            if first.added && !first.removed && !flag {
                // Entra's default removal was refused; does the aadOptscim062020 dialect work
                // from start to end (lower-case add, removal by path filter)?
                let retry = member_round(http, &group, &uid, true, cred).await;
                aad_round_ok = retry.added && retry.removed;
                ex.extend(retry.exchanges);
            }
            removal_needs_flag = aad_round_ok;
            out.push(match (first.added, first.removed) {
                (true, true) => check("group_members", WRITE_CHECKS[6].1, ScimStatus::Pass, if flag { "Member added and removed in the aadOptscim062020 format." } else { "Member added, then removed with Entra's format." }, "", "RFC 7644 §3.5.2", None, ex),
                (false, _) => check("group_members", WRITE_CHECKS[6].1, ScimStatus::Fail, format!("Adding a member did not take: {}", first.describe_add()), "Group memberships are not provisioned", "RFC 7644 §3.5.2.1", Some("Support PATCH add on members with a list of values."), ex),
                (true, false) if aad_round_ok => check("group_members", WRITE_CHECKS[6].1, ScimStatus::Fail, format!("Entra's default member removal ({{\"op\":\"Remove\",\"path\":\"members\",\"value\":[{{\"$ref\":null,\"value\":\"<id>\"}}]}}) was refused: {}. The aadOptscim062020 dialect (lower-case add, removal by path members[value eq \"<id>\"]) worked from start to end.", first.describe_remove()), "Without the aadOptscim062020 flag, removed members stay in the group on the provider's side", "RFC 7644 §3.5.2.2", Some("Append ?aadOptscim062020 to the tenant URL, or accept removal with a value list."), ex),
                (true, false) => check("group_members", WRITE_CHECKS[6].1, ScimStatus::Fail, format!("Removing a member did not take: {}", first.describe_remove()), "Removed members stay in the group on the provider's side", "RFC 7644 §3.5.2.2", Some("Accept member removal as {\"op\":\"Remove\",\"path\":\"members\",\"value\":[{\"value\":\"<id>\"}]} and as a path filter members[value eq \"<id>\"]."), ex),
            });
        }
    }
    // The flag is recommended only when its own PATCH formats and its own member round both
    // worked here.
    if removal_needs_flag && rfc_ok {
        flag = true;
    }
    if flag && !flag_in_url {
        // Entra will send the aadOptscim062020 format once the tenant URL carries the flag, so the
        // default-format failures no longer stop provisioning.
        for c in out.iter_mut().filter(|c| {
            c.status == ScimStatus::Fail
                && (c.id == "patch_entra_default"
                    || (c.id == "group_members" && removal_needs_flag))
        }) {
            c.status = ScimStatus::Warn;
            c.entra_impact = format!(
                "Handled by the aadOptscim062020 flag in the tenant URL this report gives ({})",
                c.entra_impact
            );
        }
    }

    // delete (always, as cleanup too)
    let (ux, _) = http
        .call(Method::DELETE, &format!("/Users/{uid}"), None, cred)
        .await;
    let (uget, _) = http
        .call(Method::GET, &format!("/Users/{uid}"), None, cred)
        .await;
    let mut ex = vec![ux.clone(), uget.clone()];
    let mut ok = (200..300).contains(&status_of(&ux)) && status_of(&uget) == 404;
    if let Some(g) = &gid {
        let (gx2, _) = http
            .call(Method::DELETE, &format!("/Groups/{g}"), None, cred)
            .await;
        ok &= (200..300).contains(&status_of(&gx2));
        ex.push(gx2);
    }
    out.push(if ok {
        check("delete", WRITE_CHECKS[7].1, ScimStatus::Pass, "Deleted; the user now answers 404.", "", "RFC 7644 §3.6", None, ex)
    } else {
        check("delete", WRITE_CHECKS[7].1, ScimStatus::Fail, format!("{}; then {}", describe(&ux), describe(&uget)), "Users deleted in Entra stay on the provider", "RFC 7644 §3.6", Some("Answer DELETE with 204 and GET of a deleted resource with 404. Remove the test user and group by hand."), ex)
    });
    (out, flag)
}

/// Entra's Create User request, as Microsoft's SCIM tutorial shows it.
pub(super) fn entra_create_user(external_id: &str, user_name: &str) -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_USER],
        "externalId": external_id,
        "userName": user_name,
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Entra Setup Check", "familyName": "Check", "givenName": "Entra Setup"},
        "roles": [],
    })
}

/// Entra's Create Group request, as Microsoft's SCIM tutorial shows it: the core Group schema
/// and Entra's legacy one, no members (they are added with PATCH).
pub(super) fn entra_create_group(external_id: &str, display_name: &str) -> Value {
    json!({
        "schemas": [GROUP_SCHEMA, ENTRA_LEGACY_GROUP_SCHEMA],
        "externalId": external_id,
        "displayName": display_name,
        "meta": {"resourceType": "Group"},
    })
}

/// One member added and removed in one PATCH dialect, each read back.
pub(super) struct MemberRound {
    added: bool,
    removed: bool,
    add: Exchange,
    remove: Option<Exchange>,
    exchanges: Vec<Exchange>,
}

impl MemberRound {
    fn describe_add(&self) -> String {
        describe(&self.add)
    }
    fn describe_remove(&self) -> String {
        self.remove.as_ref().map(describe).unwrap_or_default()
    }
}

/// Adds `uid` to the group and removes it again, as Entra does: by default `Add` / `Remove`
/// with a value list (tutorial, "Update Group [Add Members]" / "[Remove Members]"); with
/// `aadOptscim062020`, lower-case ops and removal by a `members[value eq "…"]` path. A member
/// left over from an earlier round is removed first.
pub(super) async fn member_round(
    http: &Http,
    group: &str,
    uid: &str,
    aad_opt: bool,
    cred: Cred<'_>,
) -> MemberRound {
    let op = |o: &str| {
        if aad_opt {
            o.to_lowercase()
        } else {
            o.to_string()
        }
    };
    let remove_body = if aad_opt {
        json!({"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": format!("members[value eq \"{uid}\"]")}]})
    } else {
        json!({"schemas": [PATCH_OP], "Operations": [{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": uid}]}]})
    };
    let has_member = |v: &Option<Value>| {
        v.as_ref().is_some_and(|v| {
            v["members"]
                .as_array()
                .is_some_and(|m| m.iter().any(|x| x["value"] == uid))
        })
    };
    let mut exchanges = vec![];
    let (r0, before) = http.call(reqwest::Method::GET, group, None, cred).await;
    exchanges.push(r0);
    if has_member(&before) {
        let (p, r, _) = patch_and_read(http, group, remove_body.clone(), cred).await;
        exchanges.extend([p, r]);
    }
    let add = json!({"schemas": [PATCH_OP], "Operations": [{"op": op("Add"), "path": "members", "value": [{"$ref": null, "value": uid}]}]});
    let (ax, a2, av) = patch_and_read(http, group, add, cred).await;
    let added = has_member(&av);
    exchanges.extend([ax.clone(), a2]);
    if !added {
        return MemberRound {
            added,
            removed: false,
            add: ax,
            remove: None,
            exchanges,
        };
    }
    let (rx, r3, rv) = patch_and_read(http, group, remove_body, cred).await;
    exchanges.extend([rx.clone(), r3]);
    MemberRound {
        added,
        removed: !has_member(&rv),
        add: ax,
        remove: Some(rx),
        exchanges,
    }
}

/// PATCHes a resource and reads it back: (the PATCH, the GET, what the GET answered).
pub(super) async fn patch_and_read(
    http: &Http,
    path: &str,
    body: Value,
    cred: Cred<'_>,
) -> (Exchange, Exchange, Option<Value>) {
    let (p, _) = http
        .call(reqwest::Method::PATCH, path, Some(body), cred)
        .await;
    let (r, v) = http.call(reqwest::Method::GET, path, None, cred).await;
    (p, r, v)
}

pub(super) async fn cleanup_user_by_name(http: &Http, auth: &ScimAuth, user_name: &str) {
    let (_, v) = http
        .call(
            reqwest::Method::GET,
            &format!(
                "/Users?filter={}",
                urlencode(&format!("userName eq \"{user_name}\""))
            ),
            None,
            Cred::Real(auth),
        )
        .await;
    for r in v
        .as_ref()
        .and_then(|v| v["Resources"].as_array())
        .into_iter()
        .flatten()
    {
        if let Some(id) = r["id"].as_str() {
            let _ = http
                .call(
                    reqwest::Method::DELETE,
                    &format!("/Users/{id}"),
                    None,
                    Cred::Real(auth),
                )
                .await;
        }
    }
}
