//! Reading a profile file: the TOML as written, checked section by section, every problem
//! reported as `file:line: what to change`.

use std::collections::BTreeMap;
use std::ops::Range;

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use super::{
    check_redirect_uri, escape_quoted, placeholders, render, AppSource, AppSpec, ChoiceOption,
    ClaimsSpec, DirectorySyncSpec, InputKind, InputRule, InputSpec, MemberCount, OidcSpec,
    OutputFormat, OutputSpec, PermissionKind, PermissionSpec, Provider, PushAnswer, PushFind,
    PushRequest, PushSpec, SamlSpec, ScimSpec, SignIn, VendorSpec, WarningSpec,
    BUILTIN_PLACEHOLDERS,
};

/// A provider file that cannot be used, with where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ProfileError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    id: Spanned<String>,
    label: String,
    help: String,
    example: String,
    pattern: Spanned<String>,
    message: String,
    #[serde(default)]
    kind: InputKind,
    #[serde(default)]
    optional: bool,
    #[serde(default)]
    strip_suffix: Vec<String>,
    #[serde(default)]
    lowercase: bool,
    #[serde(default)]
    secret: bool,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    options: Vec<ChoiceOption>,
    #[serde(default)]
    default: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    pattern: Spanned<String>,
    message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum RawSource {
    Registration,
    NonGallery,
    Gallery,
    Vendor,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    id: Spanned<String>,
    source: Spanned<RawSource>,
    #[serde(default)]
    name: Option<Spanned<String>>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    template_id: Option<String>,
    #[serde(default)]
    app_id: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawClaims {
    #[serde(default)]
    group_membership_claims: Option<Spanned<String>>,
    #[serde(default)]
    id_token: Vec<String>,
    #[serde(default)]
    access_token: Vec<String>,
    #[serde(default)]
    saml2_token: Vec<String>,
}

fn default_secret_lifetime() -> Spanned<u32> {
    Spanned::new(0..0, 365)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOidc {
    app: Spanned<String>,
    redirect_uris: Vec<Spanned<String>>,
    #[serde(default = "default_secret_lifetime")]
    secret_lifetime_days: Spanned<u32>,
    #[serde(default)]
    claims: RawClaims,
    #[serde(default)]
    groups_claim_note: Option<String>,
}

fn default_cert_lifetime() -> Spanned<u32> {
    Spanned::new(0..0, 1095)
}

fn default_name_id() -> String {
    "user.userprincipalname".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSaml {
    app: Spanned<String>,
    entity_id: Spanned<String>,
    reply_urls: Vec<Spanned<String>>,
    #[serde(default)]
    sign_on_url: Option<Spanned<String>>,
    #[serde(default)]
    logout_url: Option<Spanned<String>>,
    /// `groupMembershipClaims`: SecurityGroup, ApplicationGroup, All, None, or a template.
    #[serde(default)]
    groups_claim: Option<Spanned<String>>,
    #[serde(default)]
    relay_state: Option<String>,
    #[serde(default = "default_name_id")]
    name_id: String,
    #[serde(default = "default_cert_lifetime")]
    certificate_lifetime_days: Spanned<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignIn {
    #[serde(default)]
    oidc: Option<Spanned<RawOidc>>,
    #[serde(default)]
    saml: Option<Spanned<RawSaml>>,
    #[serde(default)]
    vendor: Option<Spanned<RawVendorSignIn>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVendorSignIn {
    app: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVendor {
    console_url: Spanned<String>,
    console_steps: String,
    #[serde(default)]
    hand_over: Vec<Spanned<String>>,
    reconsent: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirectorySync {
    app: Spanned<String>,
    assign_to: Spanned<String>,
    assign_to_note: String,
    #[serde(default)]
    warn_if_assigned_to: Vec<Spanned<String>>,
    members: MemberCount,
    #[serde(default)]
    enabled_users_only: bool,
    assigned_label: String,
    all_label: String,
    where_to_choose: String,
    schedule: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScim {
    app: Spanned<String>,
    #[serde(default)]
    job_template: Option<Spanned<String>>,
    #[serde(default)]
    needs_premium: bool,
    endpoint_help: String,
    token_help: String,
    #[serde(default)]
    endpoint_example: String,
    #[serde(default)]
    token_lifetime_days: Option<u32>,
    #[serde(default)]
    match_sso_groups: bool,
    #[serde(default)]
    advice: Vec<WarningSpec>,
    #[serde(default)]
    no_mail_reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvisioning {
    scim: Spanned<RawScim>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPermission {
    #[serde(default)]
    app: Option<Spanned<String>>,
    #[serde(default)]
    api: Option<Spanned<String>>,
    name: Spanned<String>,
    #[serde(rename = "type")]
    kind: PermissionKind,
    why: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    id: String,
    title: String,
    #[serde(default)]
    help: String,
    format: OutputFormat,
    template: Spanned<String>,
    #[serde(default)]
    contains_secret: bool,
    #[serde(default)]
    file_name: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    method: Spanned<String>,
    url: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFind {
    url: Spanned<String>,
    items: Spanned<String>,
    #[serde(rename = "match")]
    matches: BTreeMap<String, String>,
    id: Spanned<String>,
    #[serde(default)]
    page_param: Option<String>,
    #[serde(default)]
    total_pages: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAnswer {
    #[serde(default)]
    ok: Option<Spanned<String>>,
    #[serde(default)]
    errors: Option<Spanned<String>>,
    #[serde(default)]
    id: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPush {
    object: String,
    output: Spanned<String>,
    api_base: Spanned<String>,
    auth_header: String,
    auth_value: Spanned<String>,
    #[serde(default)]
    auth_hint: Option<String>,
    #[serde(default)]
    find: Option<Spanned<RawFind>>,
    create: RawRequest,
    #[serde(default)]
    update: Option<RawRequest>,
    #[serde(default)]
    answer: RawAnswer,
    #[serde(default)]
    inputs: Vec<RawInput>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    id: Spanned<String>,
    name: String,
    description: String,
    docs_url: Spanned<String>,
    #[serde(default)]
    link_hosts: Vec<Spanned<String>>,
    instance_input: Spanned<String>,
    #[serde(default)]
    service_name: Option<Spanned<String>>,
    #[serde(default)]
    inputs: Vec<RawInput>,
    apps: Spanned<Vec<RawApp>>,
    #[serde(default)]
    sign_in: Option<Spanned<RawSignIn>>,
    #[serde(default)]
    provisioning: Option<RawProvisioning>,
    #[serde(default)]
    permissions: Vec<RawPermission>,
    #[serde(default)]
    outputs: Vec<RawOutput>,
    #[serde(default)]
    push: Option<Spanned<RawPush>>,
    #[serde(default)]
    warnings: Vec<WarningSpec>,
    #[serde(default)]
    vendor: Option<Spanned<RawVendor>>,
    #[serde(default)]
    directory_sync: Option<Spanned<RawDirectorySync>>,
}

fn line_of(src: &str, span: &Range<usize>) -> usize {
    src[..span.start.min(src.len())].matches('\n').count() + 1
}

/// Checks a JSON pointer's shape (`/a/b`, or empty for the whole answer).
fn is_pointer(p: &str) -> bool {
    p.is_empty() || p.starts_with('/')
}

struct Ctx<'a> {
    file: &'a str,
    src: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: Range<usize>, message: impl ToString) -> ProfileError {
        ProfileError {
            file: self.file.to_string(),
            line: if span == (0..0) {
                1
            } else {
                line_of(self.src, &span)
            },
            message: message.to_string(),
        }
    }
}

fn input(c: &Ctx<'_>, raw: RawInput, known: &mut Vec<String>) -> Result<InputSpec, ProfileError> {
    let id = raw.id.get_ref().clone();
    if id.is_empty() || !id.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_') {
        return Err(c.err(
            raw.id.span(),
            format!("input id '{id}' must be lowercase letters and '_'"),
        ));
    }
    if known.contains(&id) {
        return Err(c.err(
            raw.id.span(),
            format!("input '{id}' is declared twice or shadows a built-in value"),
        ));
    }
    if raw.kind == InputKind::Choice && raw.options.is_empty() {
        return Err(c.err(
            raw.id.span(),
            format!(
                "the choice input '{id}' needs options = [{{ value = \"…\", label = \"…\" }}, …]"
            ),
        ));
    }
    if raw.kind != InputKind::Choice && !raw.options.is_empty() {
        return Err(c.err(
            raw.id.span(),
            format!("input '{id}' has options but is not kind = \"choice\""),
        ));
    }
    let examples = if raw.kind.is_list() {
        super::list_items(&raw.example)
    } else {
        vec![raw.example.clone()]
    };
    let re = Regex::new(raw.pattern.get_ref()).map_err(|e| {
        c.err(
            raw.pattern.span(),
            format!("pattern of '{id}' is not a valid regex: {e}"),
        )
    })?;
    if !raw.secret && !examples.iter().all(|x| re.is_match(x)) {
        return Err(c.err(
            raw.pattern.span(),
            format!(
                "the example '{}' of '{id}' does not match its own pattern",
                raw.example
            ),
        ));
    }
    let mut rules = vec![];
    for rule in raw.rules {
        let re = Regex::new(rule.pattern.get_ref()).map_err(|e| {
            c.err(
                rule.pattern.span(),
                format!("a rule of '{id}' is not a valid regex: {e}"),
            )
        })?;
        if !raw.secret && !examples.iter().all(|x| re.is_match(x)) {
            return Err(c.err(
                rule.pattern.span(),
                format!(
                    "the example '{}' of '{id}' breaks one of its own rules",
                    raw.example
                ),
            ));
        }
        rules.push(InputRule {
            pattern: rule.pattern.into_inner(),
            message: rule.message,
        });
    }
    let offered = |v: &str| raw.options.iter().any(|o| o.value == v);
    if raw.kind == InputKind::Choice && !offered(&raw.example) {
        return Err(c.err(
            raw.pattern.span(),
            format!(
                "the example '{}' of '{id}' is not one of its options",
                raw.example
            ),
        ));
    }
    if let Some(d) = &raw.default {
        let ok = if raw.kind == InputKind::Choice {
            offered(d.get_ref())
        } else {
            re.is_match(d.get_ref())
        };
        if !ok {
            return Err(c.err(
                d.span(),
                format!(
                    "the default '{}' of '{id}' is not a value it accepts",
                    d.get_ref()
                ),
            ));
        }
    }
    known.push(id.clone());
    if raw.kind == InputKind::Url {
        known.push(format!("{id}_host"));
    }
    if raw.kind == InputKind::GroupList {
        known.push(format!("{id}_ids"));
    }
    Ok(InputSpec {
        id,
        label: raw.label,
        help: raw.help,
        example: raw.example,
        pattern: raw.pattern.into_inner(),
        message: raw.message,
        kind: raw.kind,
        optional: raw.optional,
        strip_suffix: raw.strip_suffix,
        lowercase: raw.lowercase,
        secret: raw.secret,
        rules,
        options: raw.options,
        default: raw.default.map(Spanned::into_inner),
    })
}

/// Parses and checks one profile. `file` names it in errors.
#[allow(clippy::too_many_lines)] // one pass over the file's sections, in the order they are written
pub fn parse(file: &str, src: &str) -> Result<Provider, ProfileError> {
    let c = Ctx { file, src };
    let raw: RawProvider = toml::from_str(src).map_err(|e| {
        let line = e.span().map_or(1, |s| line_of(src, &s));
        ProfileError {
            file: file.to_string(),
            line,
            message: e.message().to_string(),
        }
    })?;
    let id = raw.id.get_ref().clone();
    let stem = file
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(file)
        .trim_end_matches(".toml");
    if id != stem {
        return Err(c.err(
            raw.id.span(),
            format!("id '{id}' must match the file name '{stem}'"),
        ));
    }
    if id.is_empty()
        || !id
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
    {
        return Err(c.err(
            raw.id.span(),
            "id must be lowercase letters, digits and '-'",
        ));
    }
    if !raw.docs_url.get_ref().starts_with("https://") {
        return Err(c.err(raw.docs_url.span(), "docs_url must be an https:// page"));
    }
    let mut link_hosts = vec![];
    for h in raw.link_hosts {
        let host = h.get_ref();
        let bare = host.strip_prefix("*.").unwrap_or(host);
        if bare.is_empty()
            || bare.contains(['/', ':', ' ', '*'])
            || !bare.contains('.')
            || bare.starts_with('.')
        {
            return Err(c.err(
                h.span(),
                format!("link host '{host}' must be a host name such as dash.example.com, or *.example.com for its subdomains (no scheme or path)"),
            ));
        }
        // `*.github.io` would let the profile vouch for every page anyone publishes there.
        let lower = bare.to_ascii_lowercase();
        if psl::suffix_str(&lower) == Some(lower.as_str()) {
            return Err(c.err(
                h.span(),
                format!("link host '{host}' is a public suffix (anyone can publish under it): name the provider's own host, such as dash.example.com"),
            ));
        }
        link_hosts.push(host.clone());
    }

    // Inputs, and every name a template may use.
    let mut known: Vec<String> = BUILTIN_PLACEHOLDERS
        .iter()
        .map(|s| (*s).to_string())
        .collect();
    let mut inputs = vec![];
    for i in raw.inputs {
        inputs.push(input(&c, i, &mut known)?);
    }
    if !inputs.iter().any(|i| &i.id == raw.instance_input.get_ref()) {
        return Err(c.err(
            raw.instance_input.span(),
            format!(
                "instance_input '{}' is not one of the inputs",
                raw.instance_input.get_ref()
            ),
        ));
    }
    let mut push_inputs = vec![];
    let raw_push = raw.push.map(|p| {
        let span = p.span();
        (span, p.into_inner())
    });
    let mut push_known = known.clone();
    let mut raw_push = raw_push;
    if let Some((_, p)) = raw_push.as_mut() {
        for i in std::mem::take(&mut p.inputs) {
            push_inputs.push(input(&c, i, &mut push_known)?);
        }
    }
    let check_template = |t: &Spanned<String>, names: &[String]| -> Result<(), ProfileError> {
        for ph in placeholders(t.get_ref()) {
            if !names.contains(&ph) {
                return Err(c.err(
                    t.span(),
                    format!("unknown placeholder {{{ph}}} (known: {})", names.join(", ")),
                ));
            }
        }
        Ok(())
    };

    if let Some(n) = &raw.service_name {
        check_template(n, &known)?;
    }

    // Apps.
    let apps_span = raw.apps.span();
    let mut apps: Vec<AppSpec> = vec![];
    for a in raw.apps.into_inner() {
        let app_id = a.id.get_ref().clone();
        if app_id.is_empty()
            || !app_id
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch == '_')
        {
            return Err(c.err(
                a.id.span(),
                format!("app id '{app_id}' must be lowercase letters and '_'"),
            ));
        }
        if apps.iter().any(|x| x.id == app_id) {
            return Err(c.err(a.id.span(), format!("app '{app_id}' is declared twice")));
        }
        let source_span = a.source.span();
        let source = match a.source.into_inner() {
            RawSource::Registration => AppSource::Registration,
            RawSource::NonGallery => AppSource::NonGallery,
            RawSource::Gallery => AppSource::Gallery {
                template: a.template.clone().ok_or_else(|| {
                    c.err(
                        source_span.clone(),
                        format!("app '{app_id}' comes from the gallery: say which template with template = \"<its display name>\""),
                    )
                })?,
                template_id: a.template_id.clone(),
            },
            RawSource::Vendor => {
                if a.app_id.is_none() && a.display_name.is_none() {
                    return Err(c.err(
                        source_span,
                        format!("app '{app_id}' is the vendor's own: say how to find it with app_id = \"<its appId>\" or display_name = \"…\""),
                    ));
                }
                AppSource::Vendor {
                    app_id: a.app_id.clone(),
                    display_name: a.display_name.clone(),
                }
            }
        };
        let name = match (&source, a.name) {
            (AppSource::Vendor { .. }, Some(n)) => {
                return Err(c.err(
                    n.span(),
                    format!("app '{app_id}' is the vendor's own and keeps its name: leave out name"),
                ))
            }
            (AppSource::Vendor { .. }, None) => None,
            (_, None) => {
                return Err(c.err(
                    a.id.span(),
                    format!("app '{app_id}' needs a name (its display name; inputs may be used, e.g. \"Acme ({{team}})\")"),
                ))
            }
            (_, Some(n)) => {
                check_template(&n, &known)?;
                Some(n.into_inner())
            }
        };
        if !matches!(source, AppSource::Gallery { .. })
            && (a.template.is_some() || a.template_id.is_some())
        {
            return Err(c.err(
                a.id.span(),
                format!("template and template_id are for gallery apps; app '{app_id}' is not one"),
            ));
        }
        if !matches!(source, AppSource::Vendor { .. })
            && (a.app_id.is_some() || a.display_name.is_some())
        {
            return Err(c.err(
                a.id.span(),
                format!("app_id and display_name find a vendor's app; app '{app_id}' is not one"),
            ));
        }
        apps.push(AppSpec {
            id: app_id,
            source,
            name,
        });
    }
    if apps.is_empty() {
        return Err(c.err(apps_span, "a profile declares at least one [[apps]]"));
    }
    let app_named = |name: &Spanned<String>| -> Result<&AppSpec, ProfileError> {
        apps.iter()
            .find(|a| &a.id == name.get_ref())
            .ok_or_else(|| {
                c.err(
                    name.span(),
                    format!(
                        "no app '{}' (the apps are: {})",
                        name.get_ref(),
                        apps.iter()
                            .map(|a| a.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
    };

    let samples = {
        let mut v: BTreeMap<String, String> = BTreeMap::new();
        let probe = Provider {
            id: id.clone(),
            name: raw.name.clone(),
            description: String::new(),
            docs_url: String::new(),
            link_hosts: vec![],
            custom: None,
            instance_input: String::new(),
            service_name: None,
            inputs: inputs.clone(),
            apps: vec![],
            sign_in: None,
            scim: None,
            permissions: vec![],
            outputs: vec![],
            push: None,
            warnings: vec![],
            vendor: None,
            directory_sync: None,
            file: file.to_string(),
        };
        v.extend(probe.sample_values());
        for i in &push_inputs {
            v.insert(i.id.clone(), i.example.clone());
        }
        v
    };
    let list_inputs: Vec<&str> = inputs
        .iter()
        .filter(|i| i.kind == InputKind::UrlList)
        .map(|i| i.id.as_str())
        .collect();

    // Sign-in.
    let sign_in = match raw.sign_in {
        None => None,
        Some(s) => {
            let span = s.span();
            let s = s.into_inner();
            let ways = usize::from(s.oidc.is_some())
                + usize::from(s.saml.is_some())
                + usize::from(s.vendor.is_some());
            if ways > 1 {
                return Err(c.err(
                    span,
                    "a provider signs in one way: [sign_in.oidc], [sign_in.saml] or [sign_in.vendor], not several",
                ));
            }
            if let Some(v) = s.vendor {
                let v = v.into_inner();
                let app = app_named(&v.app)?;
                if !matches!(app.source, AppSource::Vendor { .. }) {
                    return Err(c.err(
                        v.app.span(),
                        format!("[sign_in.vendor] names the vendor's own app: app '{}' must have source = \"vendor\"", app.id),
                    ));
                }
                Some(SignIn::Vendor {
                    app: v.app.into_inner(),
                })
            } else {
                match (s.oidc, s.saml) {
                    (Some(_), Some(_)) => unreachable!("counted above"),
                    (None, None) => {
                        return Err(c.err(
                            span,
                            "[sign_in] needs [sign_in.oidc], [sign_in.saml] or [sign_in.vendor]",
                        ))
                    }
                    (Some(o), None) => {
                        let o = o.into_inner();
                        let app = app_named(&o.app)?;
                        if app.source != AppSource::Registration {
                            return Err(c.err(
                            o.app.span(),
                            format!("OIDC sign-in goes through an app registration: app '{}' must have source = \"registration\"", app.id),
                        ));
                        }
                        if o.redirect_uris.is_empty() {
                            return Err(c.err(o.app.span(), "[sign_in.oidc] needs redirect_uris"));
                        }
                        for r in &o.redirect_uris {
                            check_template(r, &known)?;
                            let whole_list = r
                                .get_ref()
                                .strip_prefix('{')
                                .and_then(|x| x.strip_suffix('}'))
                                .is_some_and(|n| list_inputs.contains(&n));
                            let uris = if whole_list {
                                super::list_items(
                                    &render(r.get_ref(), &samples, str::to_string)
                                        .map_err(|e| c.err(r.span(), e))?,
                                )
                            } else {
                                vec![render(r.get_ref(), &samples, str::to_string)
                                    .map_err(|e| c.err(r.span(), e))?]
                            };
                            for uri in uris {
                                check_redirect_uri(&uri).map_err(|m| c.err(r.span(), m))?;
                            }
                        }
                        let life = *o.secret_lifetime_days.get_ref();
                        if !(1..=730).contains(&life) {
                            return Err(c.err(
                                o.secret_lifetime_days.span(),
                                format!("secret_lifetime_days must be 1 to 730, not {life}"),
                            ));
                        }
                        if let Some(g) = &o.claims.group_membership_claims {
                            // A placeholder lets an input choose it (an empty value: no groups claim).
                            check_template(g, &known)?;
                            let value = render(g.get_ref(), &samples, str::to_string)
                                .map_err(|e| c.err(g.span(), e))?;
                            if ![
                                "",
                                "None",
                                "SecurityGroup",
                                "All",
                                "DirectoryRole",
                                "ApplicationGroup",
                            ]
                            .contains(&value.as_str())
                            {
                                return Err(c.err(
                                    g.span(),
                                    format!(
                                        "group_membership_claims '{}' is not a value Entra accepts",
                                        g.get_ref()
                                    ),
                                ));
                            }
                        }
                        Some(SignIn::Oidc(OidcSpec {
                            app: o.app.into_inner(),
                            redirect_uris: o
                                .redirect_uris
                                .into_iter()
                                .map(Spanned::into_inner)
                                .collect(),
                            secret_lifetime_days: life,
                            claims: ClaimsSpec {
                                group_membership_claims: o
                                    .claims
                                    .group_membership_claims
                                    .map(Spanned::into_inner),
                                id_token: o.claims.id_token,
                                access_token: o.claims.access_token,
                                saml2_token: o.claims.saml2_token,
                            },
                            groups_claim_note: o.groups_claim_note,
                        }))
                    }
                    (None, Some(s)) => {
                        let s = s.into_inner();
                        let app = app_named(&s.app)?;
                        if !matches!(
                            app.source,
                            AppSource::NonGallery | AppSource::Gallery { .. }
                        ) {
                            return Err(c.err(
                            s.app.span(),
                            format!("SAML sign-in goes through an enterprise app: app '{}' must have source = \"non_gallery\" or \"gallery\"", app.id),
                        ));
                        }
                        check_template(&s.entity_id, &known)?;
                        let entity = render(s.entity_id.get_ref(), &samples, str::to_string)
                            .map_err(|e| c.err(s.entity_id.span(), e))?;
                        if entity.ends_with('/') || entity.trim().is_empty() {
                            return Err(c.err(
                            s.entity_id.span(),
                            "entity_id must not be empty or end with '/' (Entra refuses such identifier URIs)",
                        ));
                        }
                        if s.reply_urls.is_empty() {
                            return Err(c.err(s.app.span(), "[sign_in.saml] needs reply_urls"));
                        }
                        for r in &s.reply_urls {
                            check_template(r, &known)?;
                            let u = render(r.get_ref(), &samples, str::to_string)
                                .map_err(|e| c.err(r.span(), e))?;
                            check_redirect_uri(&u).map_err(|m| c.err(r.span(), m))?;
                        }
                        for u in [&s.sign_on_url, &s.logout_url, &s.groups_claim]
                            .into_iter()
                            .flatten()
                        {
                            check_template(u, &known)?;
                        }
                        let life = *s.certificate_lifetime_days.get_ref();
                        if !(1..=1095).contains(&life) {
                            return Err(c.err(
                            s.certificate_lifetime_days.span(),
                            format!("certificate_lifetime_days must be 1 to 1095 (Entra's signing certificates last at most 3 years), not {life}"),
                        ));
                        }
                        Some(SignIn::Saml(SamlSpec {
                            app: s.app.into_inner(),
                            entity_id: s.entity_id.into_inner(),
                            reply_urls: s.reply_urls.into_iter().map(Spanned::into_inner).collect(),
                            sign_on_url: s.sign_on_url.map(Spanned::into_inner),
                            logout_url: s.logout_url.map(Spanned::into_inner),
                            groups_claim: s.groups_claim.map(Spanned::into_inner),
                            relay_state: s.relay_state,
                            name_id: s.name_id,
                            certificate_lifetime_days: life,
                        }))
                    }
                }
            }
        }
    };

    // Provisioning.
    let scim = match raw.provisioning {
        None => None,
        Some(p) => {
            let s = p.scim.into_inner();
            let app = app_named(&s.app)?;
            let job_template = match (&app.source, s.job_template) {
                (AppSource::NonGallery, None) => Some("scim".to_string()),
                (AppSource::NonGallery, Some(t)) if t.get_ref() != "scim" => {
                    return Err(c.err(
                        t.span(),
                        "a non-gallery app provisions with the \"scim\" job template",
                    ))
                }
                // The gallery app's own: whatever its synchronization/templates offers.
                (AppSource::Gallery { .. }, None) => None,
                (AppSource::Registration | AppSource::Vendor { .. }, _) => {
                    return Err(c.err(
                        s.app.span(),
                        format!("Entra provisions only from enterprise apps made from a template: app '{}' must have source = \"non_gallery\" or \"gallery\"", app.id),
                    ))
                }
                (_, Some(t)) => Some(t.into_inner()),
            };
            Some(ScimSpec {
                app: s.app.into_inner(),
                job_template,
                needs_premium: s.needs_premium,
                endpoint_help: s.endpoint_help,
                token_help: s.token_help,
                endpoint_example: s.endpoint_example,
                token_lifetime_days: s.token_lifetime_days,
                match_sso_groups: s.match_sso_groups,
                advice: s.advice,
                no_mail_reason: s.no_mail_reason,
            })
        }
    };
    // The vendor's own apps: how the admin connects them, and the vendor's directory sync.
    let has_vendor_apps = apps
        .iter()
        .any(|a| matches!(a.source, AppSource::Vendor { .. }));
    let vendor = match raw.vendor {
        None if has_vendor_apps => {
            return Err(c.err(
                apps_span.clone(),
                "a profile with the vendor's own apps needs [vendor]: console_url, console_steps and reconsent (how the admin connects them in the vendor's console)",
            ))
        }
        None => None,
        Some(v) => {
            let span = v.span();
            let v = v.into_inner();
            if !has_vendor_apps {
                return Err(c.err(span, "[vendor] is for profiles with an app of source = \"vendor\""));
            }
            check_template(&v.console_url, &known)?;
            if !v.console_url.get_ref().starts_with("https://") {
                return Err(c.err(v.console_url.span(), "console_url must be an https:// page"));
            }
            for h in &v.hand_over {
                if !BUILTIN_PLACEHOLDERS.contains(&h.get_ref().as_str()) {
                    return Err(c.err(
                        h.span(),
                        format!("hand_over names values Entra knows ({}), not '{}'", BUILTIN_PLACEHOLDERS.join(", "), h.get_ref()),
                    ));
                }
            }
            Some(VendorSpec {
                console_url: v.console_url.into_inner(),
                console_steps: v.console_steps,
                hand_over: v.hand_over.into_iter().map(Spanned::into_inner).collect(),
                reconsent: v.reconsent,
            })
        }
    };
    let directory_sync = match raw.directory_sync {
        None => None,
        Some(d) => {
            let d = d.into_inner();
            let vendor_app = |name: &Spanned<String>| -> Result<String, ProfileError> {
                let app = app_named(name)?;
                if matches!(app.source, AppSource::Vendor { .. }) {
                    Ok(app.id.clone())
                } else {
                    Err(c.err(
                        name.span(),
                        format!("[directory_sync] is the vendor's own sync: app '{}' must have source = \"vendor\"", app.id),
                    ))
                }
            };
            let app = vendor_app(&d.app)?;
            let assign_to = vendor_app(&d.assign_to)?;
            let mut warn = vec![];
            for w in &d.warn_if_assigned_to {
                warn.push(app_named(w)?.id.clone());
            }
            Some(DirectorySyncSpec {
                app,
                assign_to,
                assign_to_note: d.assign_to_note,
                warn_if_assigned_to: warn,
                members: d.members,
                enabled_users_only: d.enabled_users_only,
                assigned_label: d.assigned_label,
                all_label: d.all_label,
                where_to_choose: d.where_to_choose,
                schedule: d.schedule,
            })
        }
    };
    if sign_in.is_none() && scim.is_none() {
        return Err(c.err(
            raw.id.span(),
            "a profile needs a way to sign users in ([sign_in.oidc] or [sign_in.saml]) or to provision them ([provisioning.scim]), or both",
        ));
    }
    for a in &apps {
        let used = sign_in.as_ref().is_some_and(|s| match s {
            SignIn::Oidc(o) => o.app == a.id,
            SignIn::Saml(x) => x.app == a.id,
            SignIn::Vendor { app } => app == &a.id,
        }) || scim.as_ref().is_some_and(|s| s.app == a.id)
            || directory_sync
                .as_ref()
                .is_some_and(|d| d.app == a.id || d.assign_to == a.id);
        if !used {
            return Err(c.err(
                apps_span.clone(),
                format!("app '{}' is neither signed in through nor provisioned from: remove it or use it in [sign_in] or [provisioning]", a.id),
            ));
        }
    }

    // Permissions.
    let default_app = match &sign_in {
        Some(SignIn::Oidc(o)) => Some(o.app.clone()),
        Some(SignIn::Saml(s)) => Some(s.app.clone()),
        Some(SignIn::Vendor { app }) => Some(app.clone()),
        None => None,
    };
    let mut permissions = vec![];
    for perm in raw.permissions {
        let app = match &perm.app {
            Some(a) => app_named(a)?.id.clone(),
            None => default_app.clone().ok_or_else(|| {
                c.err(
                    perm.name.span(),
                    "say which app gets this permission with app = \"…\"",
                )
            })?,
        };
        // Permissions of a vendor's app are what its consent must hold (checked, never granted).
        if apps.iter().find(|a| a.id == app).is_some_and(|a| {
            !matches!(a.source, AppSource::Registration | AppSource::Vendor { .. })
        }) {
            return Err(c.err(
                perm.app.as_ref().map_or(perm.name.span(), Spanned::span),
                format!(
                    "the wizard grants permissions to apps it registers and checks those of the vendor's own apps; app '{app}' is neither"
                ),
            ));
        }
        let api_name = perm
            .api
            .as_ref()
            .map_or(crate::apis::MICROSOFT_GRAPH.to_string(), |a| {
                a.get_ref().clone()
            });
        let api = crate::apis::by_name(&api_name).ok_or_else(|| {
            c.err(
                perm.api.as_ref().map_or(perm.name.span(), Spanned::span),
                format!(
                    "'{api_name}' is not a known API (data/apis.toml knows: {})",
                    crate::apis::all()
                        .iter()
                        .map(|a| a.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        if api.pinned_id(perm.name.get_ref(), perm.kind).is_none() {
            return Err(c.err(
                perm.name.span(),
                format!(
                    "'{}' is not a known {} {:?} permission",
                    perm.name.get_ref(),
                    api.name,
                    perm.kind
                )
                .to_lowercase(),
            ));
        }
        permissions.push(PermissionSpec {
            app,
            api: api.name.clone(),
            name: perm.name.into_inner(),
            kind: perm.kind,
            why: perm.why,
        });
    }
    if sign_in.is_none() && !permissions.is_empty() {
        return Err(c.err(
            1..1,
            "a provider that only provisions registers no app to grant permissions to",
        ));
    }

    // Outputs.
    let mut outputs = vec![];
    for o in raw.outputs {
        check_template(&o.template, &known)?;
        // The output is saved under this name in the folder the admin picks: a shared profile
        // must not be able to write anywhere else on the admin's computer.
        let file_name = match &o.file_name {
            Some(f) => {
                crate::files::plain_file_name(f.get_ref())
                    .map_err(|e| c.err(f.span(), format!("output '{}': file_name {e}", o.id)))?;
                Some(f.get_ref().clone())
            }
            None => {
                crate::files::plain_file_name(&o.id).map_err(|e| {
                    c.err(
                        o.template.span(),
                        format!("output id {e} (it names the saved file when file_name is absent)"),
                    )
                })?;
                None
            }
        };
        let text = render(o.template.get_ref(), &samples, |v| {
            escape_quoted(o.format, v)
        })
        .map_err(|e| c.err(o.template.span(), e))?;
        if o.format == OutputFormat::Json {
            serde_json::from_str::<serde_json::Value>(&text).map_err(|e| ProfileError {
                file: file.to_string(),
                line: line_of(src, &o.template.span()) + e.line(),
                message: format!("output '{}' does not render to valid JSON: {e}", o.id),
            })?;
        }
        let has_secret = placeholders(o.template.get_ref())
            .iter()
            .any(|p| p == "client_secret");
        if has_secret != o.contains_secret {
            return Err(c.err(
                o.template.span(),
                format!("output '{}': contains_secret must be {has_secret}", o.id),
            ));
        }
        outputs.push(OutputSpec {
            id: o.id,
            title: o.title,
            help: o.help,
            format: o.format,
            template: o.template.into_inner(),
            contains_secret: o.contains_secret,
            file_name,
        });
    }

    // Push.
    let push = match raw_push {
        None => None,
        Some((_, p)) => {
            let mut names = push_known.clone();
            names.extend(["api_base".to_string(), "id".to_string()]);
            let out = outputs
                .iter()
                .find(|o| &o.id == p.output.get_ref())
                .ok_or_else(|| {
                    c.err(
                        p.output.span(),
                        format!(
                            "push output '{}' is not one of the outputs",
                            p.output.get_ref()
                        ),
                    )
                })?;
            if out.format != OutputFormat::Json {
                return Err(c.err(
                    p.output.span(),
                    format!("push output '{}' must be JSON", out.id),
                ));
            }
            let base = p.api_base.get_ref();
            if !base.starts_with("https://") {
                return Err(c.err(p.api_base.span(), "api_base must be an https:// URL"));
            }
            check_template(&p.auth_value, &names)?;
            let request = |r: RawRequest, allowed: &[&str]| -> Result<PushRequest, ProfileError> {
                let m = r.method.get_ref().to_ascii_uppercase();
                if !allowed.contains(&m.as_str()) {
                    return Err(c.err(
                        r.method.span(),
                        format!(
                            "method '{}' is not one of {}",
                            r.method.get_ref(),
                            allowed.join(", ")
                        ),
                    ));
                }
                check_template(&r.url, &names)?;
                if !r.url.get_ref().starts_with("{api_base}") {
                    return Err(c.err(r.url.span(), "push URLs start with {api_base}"));
                }
                crate::push::template_stays_on(r.url.get_ref(), base)
                    .map_err(|m| c.err(r.url.span(), m))?;
                Ok(PushRequest {
                    method: m,
                    url: r.url.into_inner(),
                })
            };
            let create = request(p.create, &["POST", "PUT"])?;
            let update = p
                .update
                .map(|u| request(u, &["PUT", "PATCH", "POST"]))
                .transpose()?;
            let find = match p.find {
                None => None,
                Some(f) => {
                    let fspan = f.span();
                    let f = f.into_inner();
                    check_template(&f.url, &names)?;
                    if !f.url.get_ref().starts_with("{api_base}") {
                        return Err(c.err(f.url.span(), "push URLs start with {api_base}"));
                    }
                    crate::push::template_stays_on(f.url.get_ref(), base)
                        .map_err(|m| c.err(f.url.span(), m))?;
                    for ptr in [&f.items, &f.id].into_iter().chain(f.total_pages.iter()) {
                        if !is_pointer(ptr.get_ref()) {
                            return Err(c.err(
                                ptr.span(),
                                format!("'{}' is not a JSON pointer (/a/b)", ptr.get_ref()),
                            ));
                        }
                    }
                    for (k, v) in &f.matches {
                        if !is_pointer(k) {
                            return Err(c.err(
                                fspan.clone(),
                                format!("match key '{k}' is not a JSON pointer (/a/b)"),
                            ));
                        }
                        for ph in placeholders(v) {
                            if !names.contains(&ph) {
                                return Err(c.err(
                                    fspan.clone(),
                                    format!("unknown placeholder {{{ph}}} in match"),
                                ));
                            }
                        }
                    }
                    if update.is_none() {
                        return Err(c.err(
                            fspan,
                            "a push that finds what it made before needs [push.update]",
                        ));
                    }
                    Some(PushFind {
                        url: f.url.into_inner(),
                        items: f.items.into_inner(),
                        matches: f.matches,
                        id: f.id.into_inner(),
                        page_param: f.page_param,
                        total_pages: f.total_pages.map(Spanned::into_inner),
                    })
                }
            };
            for ptr in [&p.answer.ok, &p.answer.errors, &p.answer.id]
                .into_iter()
                .flatten()
            {
                if !is_pointer(ptr.get_ref()) {
                    return Err(c.err(
                        ptr.span(),
                        format!("'{}' is not a JSON pointer (/a/b)", ptr.get_ref()),
                    ));
                }
            }
            Some(PushSpec {
                object: p.object,
                output: p.output.into_inner(),
                api_base: p.api_base.into_inner(),
                auth_header: p.auth_header,
                auth_value: p.auth_value.into_inner(),
                auth_hint: p.auth_hint,
                find,
                create,
                update,
                answer: PushAnswer {
                    ok: p.answer.ok.map(Spanned::into_inner),
                    errors: p.answer.errors.map(Spanned::into_inner),
                    id: p.answer.id.map(Spanned::into_inner),
                },
                inputs: push_inputs,
            })
        }
    };

    Ok(Provider {
        id,
        name: raw.name,
        description: raw.description,
        docs_url: raw.docs_url.into_inner(),
        link_hosts,
        custom: None,
        instance_input: raw.instance_input.into_inner(),
        service_name: raw.service_name.map(Spanned::into_inner),
        inputs,
        apps,
        sign_in,
        scim,
        permissions,
        outputs,
        push,
        warnings: raw.warnings,
        vendor,
        directory_sync,
        file: file.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::{builtin, find, AppSource, PermissionKind, Protocol, Provider, SignIn};

    fn src(id: &str) -> String {
        super::super::BUILTIN
            .iter()
            .find(|(f, _)| f.trim_end_matches(".toml") == id)
            .map(|(_, s)| (*s).to_string())
            .unwrap()
    }

    /// Parses `text` as providers/<id>.toml and returns the error's line and message.
    fn broken(id: &str, text: &str) -> (usize, String) {
        let e = Provider::parse(&format!("providers/{id}.toml"), text).unwrap_err();
        assert_eq!(e.file, format!("providers/{id}.toml"));
        (e.line, e.message)
    }

    fn line_of(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).unwrap() + 1
    }

    #[test]
    fn every_shipped_profile_is_valid_and_says_its_apps() {
        let all = builtin().unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<&str> = all.iter().map(Provider::id).collect();
        assert_eq!(
            ids,
            [
                "cloudflare",
                "file-transfer",
                "file-transfer-oauth",
                "firezone",
                "oidc",
                "pomerium",
                "saml",
                "scim",
                "twingate"
            ]
        );
        // The vendors' own apps: found by name, never made; Twingate provisions through its
        // gallery app with the gallery app's own synchronization template.
        let tg = find("twingate").unwrap();
        assert_eq!(tg.protocol(), Protocol::Vendor);
        assert!(!tg.sign_in_app().unwrap().source.wizard_made());
        assert_eq!(
            tg.scim_app().unwrap().source,
            AppSource::Gallery {
                template: "Twingate".into(),
                template_id: None
            }
        );
        assert_eq!(
            tg.scim.as_ref().unwrap().job_template,
            None,
            "Twingate's job is made from the template its gallery app offers"
        );
        assert_eq!(tg.vendor.as_ref().unwrap().hand_over, ["tenant_id"]);
        let fz = find("firezone").unwrap();
        let ds = fz.directory_sync.as_ref().unwrap();
        assert_eq!((ds.app.as_str(), ds.assign_to.as_str()), ("sync", "auth"));
        assert_eq!(ds.members, super::super::MemberCount::Transitive);
        assert_eq!(
            fz.vendor_apps()
                .map(|a| match &a.source {
                    AppSource::Vendor { display_name, .. } => display_name.clone().unwrap(),
                    _ => unreachable!(),
                })
                .collect::<Vec<_>>(),
            ["Firezone Authentication", "Firezone Directory Sync"]
        );
        assert_eq!(
            fz.permissions
                .iter()
                .filter(|p| p.app == "sync")
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            [
                "Directory.Read.All",
                "User.Read.All",
                "Application.Read.All"
            ]
        );
        let cf = find("cloudflare").unwrap();
        assert_eq!(cf.protocol(), Protocol::Oidc);
        assert_eq!(cf.sign_in_app().unwrap().source, AppSource::Registration);
        assert_eq!(cf.scim_app().unwrap().source, AppSource::NonGallery);
        assert_eq!(
            cf.scim.as_ref().unwrap().job_template.as_deref(),
            Some("scim")
        );
        assert_eq!(
            cf.permission_names(PermissionKind::Delegated),
            [
                "email",
                "offline_access",
                "openid",
                "profile",
                "User.Read",
                "Directory.Read.All",
                "GroupMember.Read.All"
            ]
        );
        assert!(cf
            .permissions
            .iter()
            .all(|p| p.app == "sign_in" && p.api == "Microsoft Graph"));
        let pom = find("pomerium").unwrap();
        assert_eq!(
            pom.permission_names(PermissionKind::Application),
            ["Directory.Read.All", "Group.Read.All", "User.Read.All"]
        );
        assert!(pom.scim.is_none());
        let scim = find("scim").unwrap();
        assert_eq!(scim.protocol(), Protocol::Scim);
        assert!(scim.sign_in.is_none() && !scim.has_sign_in());
    }

    #[test]
    fn bad_inputs_say_what_to_type() {
        let cf = find("cloudflare").unwrap();
        let mut given = BTreeMap::new();
        given.insert("team".to_string(), "acme corp".to_string());
        let e = cf.validate_inputs(&given).unwrap_err();
        assert_eq!(e[0].field, "team");
        assert!(e[0].message.contains("no spaces"), "{}", e[0].message);
        given.insert(
            "team".to_string(),
            " Acme.cloudflareaccess.com ".to_string(),
        );
        assert_eq!(cf.validate_inputs(&given).unwrap()["team"], "acme");
        let pom = find("pomerium").unwrap();
        let mut given = BTreeMap::new();
        given.insert(
            "authenticate_url".to_string(),
            "http://authenticate.corp.example.com".to_string(),
        );
        let e = pom.validate_inputs(&given).unwrap_err();
        assert!(
            e[0].message.contains("Plain http:// is not allowed"),
            "{}",
            e[0].message
        );
        given.insert(
            "authenticate_url".to_string(),
            "https://authenticate.corp.example.com/".to_string(),
        );
        let ok = pom.validate_inputs(&given).unwrap();
        assert_eq!(
            ok["authenticate_url"],
            "https://authenticate.corp.example.com"
        );
        assert_eq!(ok["authenticate_url_host"], "authenticate.corp.example.com");
    }

    #[test]
    fn a_broken_profile_names_file_and_line_in_every_section() {
        let cf = src("cloudflare");
        let cases: Vec<(String, &str, &str)> = vec![
            (
                cf.replace("default = \"true\"", "default = \"yes\""),
                "default = \"yes\"",
                "the default 'yes' of 'pkce' is not a value it accepts",
            ),
            (
                cf.replace(
                    "options = [{ value = \"true\", label = \"On\" }, { value = \"false\", label = \"Off\" }]\ndefault = \"true\"",
                    "default = \"true\"",
                ),
                "id = \"pkce\"",
                "needs options",
            ),
            (
                cf.replace(
                    "name = \"GroupMember.Read.All\"",
                    "name = \"GroupMember.Reed.All\"",
                ),
                "GroupMember.Reed.All",
                "not a known microsoft graph delegated permission",
            ),
            (
                cf.replace("{team}.cloudflareaccess", "{teem}.cloudflareaccess"),
                "{teem}.cloudflareaccess",
                "unknown placeholder {teem}",
            ),
            (
                cf.replace("source = \"registration\"", "source = \"registraton\""),
                "registraton",
                "unknown variant",
            ),
            (
                cf.replace("source = \"non_gallery\"", "source = \"gallery\""),
                "source = \"gallery\"",
                "say which template",
            ),
            (
                cf.replace("app = \"provisioning\"", "app = \"provisoning\""),
                "app = \"provisoning\"",
                "no app 'provisoning'",
            ),
            (
                cf.replace(
                    "[sign_in.oidc]\napp = \"sign_in\"",
                    "[sign_in.oidc]\napp = \"provisioning\"",
                ),
                "app = \"provisioning\"",
                "must have source = \"registration\"",
            ),
            (
                cf.replace("secret_lifetime_days = 365", "secret_lifetime_days = 900"),
                "secret_lifetime_days = 900",
                "1 to 730",
            ),
            (
                cf.replace("items = \"/result\"", "items = \"result\""),
                "items = \"result\"",
                "not a JSON pointer",
            ),
            (
                cf.replace(
                    "url = \"{api_base}/accounts/{account_id}/access/identity_providers\"\nitems",
                    "url = \"https://evil.example/{account_id}\"\nitems",
                ),
                "https://evil.example",
                "push URLs start with {api_base}",
            ),
            (
                cf.replace(
                    "api_base = \"https://api.cloudflare.com/client/v4\"",
                    "api_base = \"https://api.cloudflare.com\"",
                )
                .replace(
                    "url = \"{api_base}/accounts/{account_id}/access/identity_providers\"\nitems",
                    "url = \"{api_base}.evil.example/{account_id}\"\nitems",
                ),
                "{api_base}.evil.example",
                "not to the provider's API",
            ),
            (
                cf.replace(
                    "file_name = \"cloudflare-entra-id.tf\"",
                    "file_name = \"../../.config/autostart/x.desktop\"",
                ),
                "autostart",
                "not a plain file name",
            ),
            (
                cf.replace(
                    "name = \"GroupMember.Read.All\"",
                    "name = \"Application.ReadWrite.All\"",
                ),
                "Application.ReadWrite.All",
                "not a known microsoft graph delegated permission",
            ),
            (
                cf.replace("\"*.cloudflareaccess.com\"", "\"*.github.io\""),
                "*.github.io",
                "public suffix",
            ),
            (
                cf.replace(
                    "\"dash.cloudflare.com\",",
                    "\"https://dash.cloudflare.com\",",
                ),
                "https://dash.cloudflare.com",
                "must be a host name",
            ),
            (
                cf.replace(
                    "[[permissions]]\nname = \"email\"",
                    "[[permissions]]\napi = \"Microsoft Grapf\"\nname = \"email\"",
                ),
                "Microsoft Grapf",
                "not a known API",
            ),
            (
                cf.replace(
                    "group_membership_claims = \"SecurityGroup\"",
                    "group_membership_claims = \"Groups\"",
                ),
                "group_membership_claims = \"Groups\"",
                "not a value Entra accepts",
            ),
        ];
        for (text, at, says) in cases {
            let (line, message) = broken("cloudflare", &text);
            assert!(message.contains(says), "{at}: {message}");
            assert_eq!(line, line_of(&text, at), "{at}: {message}");
        }
    }

    #[test]
    fn vendor_sections_say_what_to_fix() {
        let fz = src("firezone");
        // Vendor apps without [vendor]: the admin would not know where to connect them.
        let start = fz.find("[vendor]").unwrap();
        let end = fz[start..].find("[[permissions]]").unwrap() + start;
        let no_vendor = format!("{}{}", &fz[..start], &fz[end..]);
        let (_, m) = broken("firezone", &no_vendor);
        assert!(m.contains("needs [vendor]"), "{m}");
        // [directory_sync] on an app the wizard makes.
        let wrong = fz.replace(
            "id = \"sync\"\nsource = \"vendor\"\ndisplay_name = \"Firezone Directory Sync\"",
            "id = \"sync\"\nsource = \"non_gallery\"\nname = \"Firezone Directory Sync\"",
        );
        let (line, m) = broken("firezone", &wrong);
        assert!(m.contains("must have source = \"vendor\""), "{m}");
        assert_eq!(line, line_of(&wrong, "[directory_sync]") + 1);
        // Something to hand over that Entra does not know.
        let unknown = fz.replace(
            "reconsent =",
            "hand_over = [\"favourite_colour\"]\nreconsent =",
        );
        let (line, m) = broken("firezone", &unknown);
        assert!(m.contains("not 'favourite_colour'"), "{m}");
        assert_eq!(line, line_of(&unknown, "favourite_colour"));
        // Two ways to sign in.
        let two = fz.replace(
            "[sign_in.vendor]\napp = \"auth\"",
            "[sign_in.vendor]\napp = \"auth\"\n[sign_in.saml]\napp = \"auth\"\nentity_id = \"https://x.example.com\"\nreply_urls = [\"https://x.example.com/acs\"]",
        );
        let (_, m) = broken("firezone", &two);
        assert!(m.contains("signs in one way"), "{m}");
    }

    #[test]
    fn saml_gallery_and_vendor_apps_have_their_place_in_a_profile() {
        let text = r#"
id = "files"
name = "Acme Files"
description = "A file-transfer service."
docs_url = "https://docs.example.com/sso"
instance_input = "tenant"

[[inputs]]
id = "tenant"
label = "Tenant"
help = "Your tenant name."
example = "acme"
pattern = '^[a-z]+$'
message = "Letters only."

[[apps]]
id = "files"
source = "non_gallery"
name = "Acme Files ({tenant})"

[sign_in.saml]
app = "files"
entity_id = "https://{tenant}.files.example.com/saml"
reply_urls = ["https://{tenant}.files.example.com/saml/acs"]
relay_state = "/home"

[provisioning.scim]
app = "files"
endpoint_help = "Admin → SCIM."
token_help = "Admin → SCIM → token."
"#;
        let p = Provider::parse("providers/files.toml", text).unwrap();
        assert_eq!(p.protocol(), Protocol::Saml);
        let Some(SignIn::Saml(s)) = &p.sign_in else {
            panic!("{:?}", p.sign_in)
        };
        assert_eq!(s.name_id, "user.userprincipalname");
        assert_eq!(s.certificate_lifetime_days, 1095);
        assert_eq!(p.unsupported(), None);
        // The Entity ID must not end in '/', and the certificate lasts at most three years.
        let (line, m) = broken("files", &text.replace("/saml\"\nreply", "/saml/\"\nreply"));
        assert!(m.contains("end with '/'"), "{m}");
        assert_eq!(line, line_of(text, "entity_id"));
        let (_, m) = broken(
            "files",
            &text.replace(
                "relay_state = \"/home\"",
                "relay_state = \"/home\"\ncertificate_lifetime_days = 2000",
            ),
        );
        assert!(m.contains("at most 3 years"), "{m}");

        // The vendor's own app keeps its name and must say how to find it.
        let vendor = text.replace(
            "source = \"non_gallery\"",
            "source = \"vendor\"\napp_id = \"11111111-2222-3333-4444-555555555555\"",
        );
        let (line, m) = broken("files", &vendor);
        assert!(m.contains("keeps its name"), "{m}");
        assert_eq!(line, line_of(&vendor, "name = \"Acme Files ({tenant})\""));
        let unfindable = text.replace(
            "source = \"non_gallery\"\nname = \"Acme Files ({tenant})\"",
            "source = \"vendor\"",
        );
        let (_, m) = broken("files", &unfindable);
        assert!(m.contains("say how to find it"), "{m}");

        let gallery = text.replace(
            "source = \"non_gallery\"",
            "source = \"gallery\"\ntemplate = \"Acme Files\"",
        );
        let own = Provider::parse("providers/files.toml", &gallery).unwrap();
        assert_eq!(
            own.scim.as_ref().unwrap().job_template,
            None,
            "a gallery app without job_template uses the template the app offers"
        );
        let p = Provider::parse(
            "providers/files.toml",
            &gallery.replace(
                "[provisioning.scim]\napp = \"files\"",
                "[provisioning.scim]\napp = \"files\"\njob_template = \"acmefiles\"",
            ),
        )
        .unwrap();
        assert!(matches!(
            p.scim_app().unwrap().source,
            AppSource::Gallery { .. }
        ));
        assert!(p.unsupported().is_some());
    }

    #[test]
    fn a_list_input_stands_for_each_redirect_uri() {
        let text = r#"
id = "any-oidc"
name = "Any OIDC"
description = "d"
docs_url = "https://docs.example.com"
instance_input = "name"

[[inputs]]
id = "name"
label = "Name"
help = "h"
example = "App"
pattern = '^.+$'
message = "m"

[[inputs]]
id = "redirect_uris"
label = "Redirect URIs"
help = "h"
example = "https://app.example.com/callback, http://localhost:8080/cb"
pattern = '^https?://'
message = "m"
kind = "url_list"

[[apps]]
id = "sign_in"
source = "registration"
name = "{name}"

[sign_in.oidc]
app = "sign_in"
redirect_uris = ["{redirect_uris}"]
"#;
        let p = Provider::parse("providers/any-oidc.toml", text).unwrap();
        let mut given = BTreeMap::new();
        given.insert("name".to_string(), "Wiki".to_string());
        given.insert(
            "redirect_uris".to_string(),
            " https://wiki.example.com/oidc , https://wiki2.example.com/oidc ".to_string(),
        );
        let v = p.validate_inputs(&given).unwrap();
        assert_eq!(
            p.render_redirect_uris(&v),
            [
                "https://wiki.example.com/oidc",
                "https://wiki2.example.com/oidc"
            ]
        );
        given.insert(
            "redirect_uris".to_string(),
            "https://ok.example.com/cb, http://wiki.example.com/cb".to_string(),
        );
        let e = p.validate_inputs(&given).unwrap_err();
        assert!(
            e[0].message.contains("http://wiki.example.com/cb") && e[0].message.contains("https"),
            "{}",
            e[0].message
        );
    }

    #[test]
    fn a_folder_profile_cannot_take_a_built_in_id() {
        let dir = std::env::temp_dir().join(format!("profiles-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cloudflare.toml"), src("cloudflare")).unwrap();
        let e = super::super::catalogue(&[dir.as_path()]).unwrap_err();
        assert!(e.message.contains("already taken"), "{e}");
        assert!(e.file.ends_with("cloudflare.toml"));
        // Another id under the built-in's name would pass for it on screen.
        std::fs::remove_file(dir.join("cloudflare.toml")).unwrap();
        std::fs::write(
            dir.join("lookalike.toml"),
            src("cloudflare").replacen("id = \"cloudflare\"", "id = \"lookalike\"", 1),
        )
        .unwrap();
        let e = super::super::catalogue(&[dir.as_path()]).unwrap_err();
        assert!(
            e.message
                .contains("name of the built-in provider 'cloudflare'"),
            "{e}"
        );
        // With a name of its own it loads, marked custom with its file.
        std::fs::write(
            dir.join("lookalike.toml"),
            src("cloudflare")
                .replacen("id = \"cloudflare\"", "id = \"lookalike\"", 1)
                .replacen("name = \"Cloudflare One\"", "name = \"Acme Access\"", 1),
        )
        .unwrap();
        let all = super::super::catalogue(&[dir.as_path()]).unwrap();
        let mine = all.iter().find(|p| p.id == "lookalike").unwrap();
        assert!(mine
            .custom
            .as_deref()
            .is_some_and(|f| f.ends_with("lookalike.toml")));
        assert!(all
            .iter()
            .find(|p| p.id == "cloudflare")
            .unwrap()
            .custom
            .is_none());
        let _ = std::fs::remove_dir_all(dir);
    }
}
