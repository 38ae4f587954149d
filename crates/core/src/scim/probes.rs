//! The read-only checks: what Entra's Test Connection and its first cycle send, run at once.

use super::client::{describe, is_list_response, status_of, total_results, urlencode, Cred, Http};
use super::report::{check, skipped};
use super::{Exchange, ScimAuth, ScimCheck, ScimStatus};

/// Runs the read-only probes, adding their checks; true when Entra's Test Connection probe
/// passed (the write checks run only then).
pub(super) async fn read_only(http: &Http, auth: &ScimAuth, checks: &mut Vec<ScimCheck>) -> bool {
    let probe_user = uuid::Uuid::new_v4().to_string();
    let probe_group = uuid::Uuid::new_v4().to_string();
    let users_probe = format!(
        "/Users?filter={}",
        urlencode(&format!("userName eq \"{probe_user}\""))
    );
    let groups_probe = format!(
        "/Groups?excludedAttributes=members&filter={}",
        urlencode(&format!("displayName eq \"{probe_group}\""))
    );
    let (none, wrong, probe, groups, spc, schemas, types) = tokio::join!(
        http.call(reqwest::Method::GET, &users_probe, None, Cred::None),
        http.call(reqwest::Method::GET, &users_probe, None, Cred::Wrong),
        http.call(reqwest::Method::GET, &users_probe, None, Cred::Real(auth)),
        http.call(reqwest::Method::GET, &groups_probe, None, Cred::Real(auth)),
        http.call(
            reqwest::Method::GET,
            "/ServiceProviderConfig",
            None,
            Cred::Real(auth)
        ),
        http.call(reqwest::Method::GET, "/Schemas", None, Cred::Real(auth)),
        http.call(
            reqwest::Method::GET,
            "/ResourceTypes",
            None,
            Cred::Real(auth)
        ),
    );

    // auth_required
    let rejected = |x: &Exchange| matches!(status_of(x), 401 | 403);
    checks.push(if rejected(&none.0) && rejected(&wrong.0) {
        check(
            "auth_required",
            "Requests without valid credentials are refused",
            ScimStatus::Pass,
            "No token and a wrong token were both refused (401/403).",
            "",
            "RFC 7644 §2",
            None,
            vec![none.0.clone(), wrong.0.clone()],
        )
    } else if [&none.0, &wrong.0]
        .iter()
        .any(|x| (200..300).contains(&status_of(x)))
    {
        check(
            "auth_required",
            "Requests without valid credentials are refused",
            ScimStatus::Fail,
            format!(
                "The endpoint answered data without valid credentials: {}",
                [&none.0, &wrong.0]
                    .iter()
                    .filter(|x| (200..300).contains(&status_of(x)))
                    .map(|x| describe(x))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            "Anyone who finds the URL can read and change your users",
            "RFC 7644 §2",
            Some("Require the bearer token on every request."),
            vec![none.0.clone(), wrong.0.clone()],
        )
    } else {
        check(
            "auth_required",
            "Requests without valid credentials are refused",
            ScimStatus::Warn,
            format!(
                "Refused, but not with 401/403: {}; {}",
                describe(&none.0),
                describe(&wrong.0)
            ),
            "Entra may report an unclear error when the token is wrong",
            "RFC 7644 §3.12",
            Some("Answer 401 Unauthorized to missing or wrong tokens."),
            vec![none.0.clone(), wrong.0.clone()],
        )
    });

    // test_connection_probe: exactly what Entra's Test Connection sends.
    let (px, pv) = probe;
    let probe_ok = status_of(&px) == 200 && is_list_response(&pv) && total_results(&pv) == Some(0);
    let probe_check = if probe_ok {
        check(
            "test_connection_probe",
            "Entra's Test Connection query answers an empty list",
            ScimStatus::Pass,
            "200 with a ListResponse and totalResults 0.",
            "",
            "RFC 7644 §3.4.2",
            None,
            vec![px.clone()],
        )
    } else {
        let (detail, fix) = match status_of(&px) {
            401 | 403 => (format!("The token was refused: {}", describe(&px)), "Check the token: copy it again from the provider (regenerate it if unsure). Entra sends it as 'Authorization: Bearer <token>'."),
            404 => (format!("{} — usually the URL lacks the SCIM path (e.g. /scim/v2) or has one too many.", describe(&px)), "Use the provider's exact SCIM base URL; requests go to <base>/Users."),
            s if (300..400).contains(&s) => (describe(&px), "Point Entra at the SCIM API itself, not at a login page or a proxy that redirects."),
            200 if !is_list_response(&pv) => ("200, but the body is not a SCIM ListResponse.".to_string(), "Answer filter queries with {\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:ListResponse\"],\"totalResults\":0,\"Resources\":[]}."),
            200 => (format!("200, but totalResults is {:?} for a user that cannot exist.", total_results(&pv)), "Apply the filter: a userName no one has must match nothing."),
            _ => (describe(&px), "Make GET /Users?filter=userName eq \"…\" answer 200 with an empty ListResponse."),
        };
        check(
            "test_connection_probe",
            "Entra's Test Connection query answers an empty list",
            ScimStatus::Fail,
            detail,
            "Test Connection fails, and provisioning cannot start",
            "RFC 7644 §3.4.2",
            Some(fix),
            vec![px.clone()],
        )
    };
    checks.push(probe_check);

    // content_type
    let ct = px.content_type.clone().unwrap_or_default();
    checks.push(if px.status.is_none() {
        skipped(
            "content_type",
            "Answers are application/scim+json",
            "The probe got no answer.",
        )
    } else if ct.starts_with("application/scim+json") {
        check(
            "content_type",
            "Answers are application/scim+json",
            ScimStatus::Pass,
            ct,
            "",
            "RFC 7644 §3.1",
            None,
            vec![],
        )
    } else if ct.starts_with("application/json") {
        check(
            "content_type",
            "Answers are application/scim+json",
            ScimStatus::Warn,
            format!("Content-Type is {ct}."),
            "Entra accepts it, but the SCIM validator flags it",
            "RFC 7644 §3.1",
            Some("Send Content-Type: application/scim+json."),
            vec![],
        )
    } else {
        check(
            "content_type",
            "Answers are application/scim+json",
            ScimStatus::Fail,
            format!("Content-Type is '{ct}', not JSON."),
            "Entra cannot read the answers",
            "RFC 7644 §3.1",
            Some("Answer with Content-Type: application/scim+json and a JSON body."),
            vec![],
        )
    });

    // groups_probe
    let (gx, gv) = groups;
    checks.push(if status_of(&gx) == 200 && is_list_response(&gv) && total_results(&gv) == Some(0) {
        check("groups_probe", "Entra's group lookup answers an empty list", ScimStatus::Pass, "200 with an empty ListResponse.", "", "RFC 7644 §3.4.2", None, vec![gx.clone()])
    } else if matches!(status_of(&gx), 404 | 501) {
        check("groups_probe", "Entra's group lookup answers an empty list", ScimStatus::Warn, format!("{} — the endpoint seems not to support groups.", describe(&gx)), "Group provisioning fails; turn off the Groups mapping in Entra if the provider has no groups", "RFC 7644 §3.4.2", Some("Turn off group provisioning, or support GET /Groups with filters."), vec![gx.clone()])
    } else {
        check("groups_probe", "Entra's group lookup answers an empty list", ScimStatus::Fail, if matches!(status_of(&gx), 401 | 403) { format!("The token was refused: {}", describe(&gx)) } else { describe(&gx) }, "Test Connection can fail, and group provisioning fails", "RFC 7644 §3.4.2", Some("Make GET /Groups?excludedAttributes=members&filter=displayName eq \"…\" answer 200 with an empty ListResponse."), vec![gx.clone()])
    });

    // no_redirects
    let all = [&none.0, &wrong.0, &px, &gx, &spc.0];
    let redirected: Vec<&&Exchange> = all
        .iter()
        .filter(|x| (300..400).contains(&status_of(x)))
        .collect();
    checks.push(if redirected.is_empty() {
        check("no_redirects", "No request is redirected", ScimStatus::Pass, "No 3xx answers.", "", "RFC 7644 §3", None, vec![])
    } else {
        let to = redirected[0].location.clone().unwrap_or_default();
        let login = ["login", "signin", "sso", "auth"].iter().any(|w| to.to_ascii_lowercase().contains(w));
        check("no_redirects", "No request is redirected", ScimStatus::Fail, format!("{}{}", describe(redirected[0]), if login { " — that looks like a login page, often a proxy or firewall in front of the API." } else { "" }), "Entra does not follow redirects: Test Connection fails", "RFC 7644 §3", Some("Use the final URL, and exempt the SCIM path from any sign-in proxy."), redirected.iter().map(|x| (**x).clone()).collect())
    });

    // discovery (informational)
    let found: Vec<&str> = [
        ("/ServiceProviderConfig", &spc.0),
        ("/Schemas", &schemas.0),
        ("/ResourceTypes", &types.0),
    ]
    .iter()
    .filter(|(_, x)| status_of(x) == 200)
    .map(|(p, _)| *p)
    .collect();
    let patch_supported = spc
        .1
        .as_ref()
        .and_then(|v| v["patch"]["supported"].as_bool());
    checks.push(check(
        "discovery",
        "Discovery endpoints",
        if found.len() == 3 { ScimStatus::Pass } else { ScimStatus::Warn },
        format!(
            "Answering: {}.{}",
            if found.is_empty() { "none".to_string() } else { found.join(", ") },
            match patch_supported {
                Some(true) => " ServiceProviderConfig says PATCH is supported.",
                Some(false) => " ServiceProviderConfig says PATCH is NOT supported: Entra updates users with PATCH.",
                None => "",
            }
        ),
        "Informational: Entra does not read them for non-gallery apps",
        "RFC 7644 §4",
        None,
        vec![spc.0.clone(), schemas.0.clone(), types.0.clone()],
    ));

    // latency
    let times: Vec<u32> = [&px, &gx]
        .iter()
        .filter(|x| x.status.is_some())
        .map(|x| x.millis)
        .collect();
    let worst = times.iter().copied().max().unwrap_or(0);
    checks.push(if times.is_empty() {
        skipped("latency", "Answers come quickly", "No answers to time.")
    } else if worst < 1000 {
        check(
            "latency",
            "Answers come quickly",
            ScimStatus::Pass,
            format!("Slowest query took {worst} ms."),
            "",
            "",
            None,
            vec![],
        )
    } else {
        check(
            "latency",
            "Answers come quickly",
            ScimStatus::Warn,
            format!("Slowest query took {worst} ms."),
            "Provisioning cycles take longer; very slow answers time out",
            "",
            Some("Index userName and displayName for filter queries."),
            vec![],
        )
    });
    probe_ok
}
