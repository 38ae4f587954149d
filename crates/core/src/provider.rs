//! Service-provider profiles: data files in providers/ that say what a provider needs from Entra
//! (protocol, inputs Entra cannot know, redirect URIs, Graph permissions, claims, secret
//! lifetime, warnings, outputs). Adding a provider is adding a file.

use std::collections::BTreeMap;
use std::ops::Range;

use regex::Regex;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::graph::permissions;

include!(concat!(env!("OUT_DIR"), "/providers.rs"));

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Oidc,
    Saml,
    Scim,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "lowercase")]
pub enum PermissionKind {
    /// A delegated permission (scope), granted with an oauth2PermissionGrant.
    Delegated,
    /// An application permission (app role), granted with an appRoleAssignment.
    Application,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    #[default]
    Text,
    Url,
}

/// Something the admin must type because Entra cannot know it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub id: Spanned<String>,
    pub label: String,
    pub help: String,
    pub example: String,
    pub pattern: Spanned<String>,
    /// Shown when the value does not match `pattern`: says what to type.
    pub message: String,
    #[serde(default)]
    pub kind: InputKind,
    #[serde(default)]
    pub optional: bool,
    /// Suffixes removed if the admin pastes more than asked for (e.g. the whole team domain).
    #[serde(default)]
    pub strip_suffix: Vec<String>,
    #[serde(default)]
    pub lowercase: bool,
    /// Never shown again, logged or stored (e.g. an API token used once).
    #[serde(default)]
    pub secret: bool,
    /// Checks tried in order before `pattern`, each with the message that names its reason
    /// (too long, a hyphen at the end, …), so a bad value is told what is wrong with it.
    #[serde(default)]
    pub rules: Vec<InputRule>,
}

/// One check on an input: the value must match `pattern`; `message` says why it does not.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputRule {
    pub pattern: Spanned<String>,
    pub message: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionSpec {
    pub name: Spanned<String>,
    #[serde(rename = "type")]
    pub kind: PermissionKind,
    pub why: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsSpec {
    #[serde(default)]
    pub group_membership_claims: Option<Spanned<String>>,
    #[serde(default)]
    pub id_token: Vec<String>,
    #[serde(default)]
    pub access_token: Vec<String>,
    #[serde(default)]
    pub saml2_token: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Json,
    Yaml,
    Hcl,
    Text,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub help: String,
    pub format: OutputFormat,
    pub template: Spanned<String>,
    #[serde(default)]
    pub contains_secret: bool,
    #[serde(default)]
    pub file_name: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushSpec {
    pub kind: Spanned<String>,
    pub api_base: String,
    /// The output whose rendering is the request body.
    pub output: Spanned<String>,
    #[serde(default)]
    pub inputs: Vec<InputSpec>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarningSpec {
    pub id: String,
    pub severity: crate::tenant::Severity,
    pub title: String,
    pub detail: String,
}

/// SCIM provisioning from Entra to the provider: a separate non-gallery enterprise app whose
/// provisioning job calls the provider's SCIM endpoint (reference §8a, §10).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScimSpec {
    /// Display name of the provisioning app; may use input placeholders.
    pub app_name: Spanned<String>,
    /// The provider documents that its SCIM needs Entra ID P1 or P2 (group provisioning).
    #[serde(default)]
    pub needs_premium: bool,
    /// Where the admin finds the SCIM endpoint (Entra's "Tenant URL") at the provider.
    pub endpoint_help: String,
    /// Where the admin finds the bearer token (Entra's "Secret Token").
    pub token_help: String,
    #[serde(default)]
    pub endpoint_example: String,
    /// How long the provider's tokens last, if they expire (suggests the expiry date to record).
    #[serde(default)]
    pub token_lifetime_days: Option<u32>,
    /// The SCIM app should be assigned the same groups as the sign-in app (the provider
    /// overwrites a user's groups with what SCIM sends).
    #[serde(default)]
    pub match_sso_groups: bool,
    /// Advice shown in the SCIM step and on Done (e.g. attribute mappings).
    #[serde(default)]
    pub advice: Vec<WarningSpec>,
}

fn default_secret_lifetime() -> Spanned<u32> {
    Spanned::new(0..0, 365)
}

/// One provider profile as written in providers/<id>.toml.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    pub id: Spanned<String>,
    pub name: String,
    pub description: String,
    pub protocol: Protocol,
    pub docs_url: String,
    /// Display name of the app registration; may use input placeholders.
    pub app_name: Spanned<String>,
    /// The input that tells two setups of this provider apart (it names the app's uniqueName).
    pub instance_input: Spanned<String>,
    /// Default client-secret lifetime (OIDC providers).
    #[serde(default = "default_secret_lifetime")]
    pub secret_lifetime_days: Spanned<u32>,
    #[serde(default)]
    pub inputs: Vec<InputSpec>,
    #[serde(default)]
    pub redirect_uris: Vec<Spanned<String>>,
    #[serde(default)]
    pub permissions: Vec<PermissionSpec>,
    #[serde(default)]
    pub claims: ClaimsSpec,
    #[serde(default)]
    pub groups_claim_note: Option<String>,
    #[serde(default)]
    pub outputs: Vec<OutputSpec>,
    #[serde(default)]
    pub push: Option<PushSpec>,
    #[serde(default)]
    pub warnings: Vec<WarningSpec>,
    #[serde(default)]
    pub scim: Option<ScimSpec>,
}

/// A provider file that cannot be used, with where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ProfileError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// A bad value for one input, with what to type instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
#[error("{label}: {message}")]
pub struct InputError {
    pub field: String,
    pub label: String,
    pub message: String,
}

/// Placeholders every template may use besides the provider's own inputs.
pub const BUILTIN_PLACEHOLDERS: &[&str] = &[
    "tenant_id",
    "client_id",
    "client_secret",
    "authority",
    "app_name",
    "secret_expiry",
];

fn line_of(src: &str, span: &Range<usize>) -> usize {
    src[..span.start.min(src.len())].matches('\n').count() + 1
}

/// The `{name}` placeholders in a template.
pub fn placeholders(template: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close)
                if after[..close]
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_')
                    && close > 0 =>
            {
                out.push(after[..close].to_string());
                rest = &after[close + 1..];
            }
            _ => rest = after,
        }
    }
    out
}

/// Replaces `{name}` placeholders; `escape` adapts each value to where it is written.
pub fn render(
    template: &str,
    values: &BTreeMap<String, String>,
    escape: impl Fn(&str) -> String,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close)
                if close > 0
                    && after[..close]
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_') =>
            {
                let name = &after[..close];
                let v = values
                    .get(name)
                    .ok_or_else(|| format!("no value for {{{name}}}"))?;
                out.push_str(&escape(v));
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The values that render `template` into `text`, if any do: the inverse of [`render`], used to
/// find a setup's inputs again from what it wrote into the tenant (its redirect URI, its app's
/// name). Checked by rendering the values back.
pub fn unrender(template: &str, text: &str) -> Option<BTreeMap<String, String>> {
    let names = placeholders(template);
    let mut pattern = String::from("^");
    let mut rest = template;
    let mut seen: Vec<&str> = vec![];
    for name in &names {
        let marker = format!("{{{name}}}");
        let at = rest.find(&marker)?;
        pattern.push_str(&regex::escape(&rest[..at]));
        if seen.contains(&name.as_str()) {
            pattern.push_str(".+?");
        } else {
            pattern.push_str(&format!("(?P<{name}>.+?)"));
            seen.push(name);
        }
        rest = &rest[at + marker.len()..];
    }
    pattern.push_str(&regex::escape(rest));
    pattern.push('$');
    let caps = regex::Regex::new(&pattern).ok()?.captures(text)?;
    let values: BTreeMap<String, String> = seen
        .iter()
        .filter_map(|n| {
            caps.name(n)
                .map(|m| ((*n).to_string(), m.as_str().to_string()))
        })
        .collect();
    (render(template, &values, str::to_string).ok()? == text).then_some(values)
}

/// Escapes a value for a double-quoted string in JSON, YAML or HCL.
pub fn escape_quoted(format: OutputFormat, v: &str) -> String {
    let json = serde_json::to_string(v).unwrap_or_default();
    let inner = json.trim_matches('"').to_string();
    match format {
        OutputFormat::Hcl => inner.replace("${", "$${").replace("%{", "%%{"),
        _ => inner,
    }
}

impl Provider {
    pub fn id(&self) -> &str {
        self.id.get_ref()
    }

    fn all_inputs(&self) -> impl Iterator<Item = &InputSpec> {
        self.inputs
            .iter()
            .chain(self.push.iter().flat_map(|p| p.inputs.iter()))
    }

    /// Parses and checks one profile. `file` names it in errors.
    pub fn parse(file: &str, src: &str) -> Result<Self, ProfileError> {
        let err = |line: usize, message: String| ProfileError {
            file: file.to_string(),
            line,
            message,
        };
        let p: Provider = toml::from_str(src).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(src, &s));
            err(line, e.message().to_string())
        })?;
        let at = |span: Range<usize>| line_of(src, &span);
        let stem = file
            .rsplit('/')
            .next()
            .unwrap_or(file)
            .trim_end_matches(".toml");
        if p.id() != stem {
            return Err(err(
                at(p.id.span()),
                format!("id '{}' must match the file name '{stem}'", p.id()),
            ));
        }
        if !p
            .id()
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(err(
                at(p.id.span()),
                "id must be lowercase letters, digits and '-'".into(),
            ));
        }
        let life = *p.secret_lifetime_days.get_ref();
        if !(1..=730).contains(&life) {
            return Err(err(
                at(p.secret_lifetime_days.span()),
                format!("secret_lifetime_days must be 1 to 730, not {life}"),
            ));
        }
        let mut known: Vec<String> = BUILTIN_PLACEHOLDERS
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        for input in p.all_inputs() {
            let id = input.id.get_ref();
            if !id.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                return Err(err(
                    at(input.id.span()),
                    format!("input id '{id}' must be lowercase letters and '_'"),
                ));
            }
            if known.contains(id) {
                return Err(err(
                    at(input.id.span()),
                    format!("input '{id}' is declared twice or shadows a built-in value"),
                ));
            }
            let re = Regex::new(input.pattern.get_ref()).map_err(|e| {
                err(
                    at(input.pattern.span()),
                    format!("pattern of '{id}' is not a valid regex: {e}"),
                )
            })?;
            if !input.secret && !re.is_match(&input.example) {
                return Err(err(
                    at(input.pattern.span()),
                    format!(
                        "the example '{}' of '{id}' does not match its own pattern",
                        input.example
                    ),
                ));
            }
            for rule in &input.rules {
                let re = Regex::new(rule.pattern.get_ref()).map_err(|e| {
                    err(
                        at(rule.pattern.span()),
                        format!("a rule of '{id}' is not a valid regex: {e}"),
                    )
                })?;
                if !input.secret && !re.is_match(&input.example) {
                    return Err(err(
                        at(rule.pattern.span()),
                        format!(
                            "the example '{}' of '{id}' breaks one of its own rules",
                            input.example
                        ),
                    ));
                }
            }
            known.push(id.clone());
            if input.kind == InputKind::Url {
                known.push(format!("{id}_host"));
            }
        }
        if !p
            .inputs
            .iter()
            .any(|i| i.id.get_ref() == p.instance_input.get_ref())
        {
            return Err(err(
                at(p.instance_input.span()),
                format!(
                    "instance_input '{}' is not one of the inputs",
                    p.instance_input.get_ref()
                ),
            ));
        }
        let check_template = |t: &Spanned<String>| -> Result<(), ProfileError> {
            for ph in placeholders(t.get_ref()) {
                if !known.contains(&ph) {
                    return Err(err(
                        at(t.span()),
                        format!("unknown placeholder {{{ph}}} (known: {})", known.join(", ")),
                    ));
                }
            }
            Ok(())
        };
        check_template(&p.app_name)?;
        let samples = p.sample_values();
        for r in &p.redirect_uris {
            check_template(r)?;
            let uri =
                render(r.get_ref(), &samples, str::to_string).map_err(|e| err(at(r.span()), e))?;
            check_redirect_uri(&uri).map_err(|m| err(at(r.span()), m))?;
        }
        for perm in &p.permissions {
            if permissions::pinned_id(perm.name.get_ref(), perm.kind).is_none() {
                return Err(err(
                    at(perm.name.span()),
                    format!(
                        "'{}' is not a known Microsoft Graph {:?} permission",
                        perm.name.get_ref(),
                        perm.kind
                    )
                    .to_lowercase(),
                ));
            }
        }
        if let Some(g) = &p.claims.group_membership_claims {
            if ![
                "None",
                "SecurityGroup",
                "All",
                "DirectoryRole",
                "ApplicationGroup",
            ]
            .contains(&g.get_ref().as_str())
            {
                return Err(err(
                    at(g.span()),
                    format!(
                        "group_membership_claims '{}' is not a value Entra accepts",
                        g.get_ref()
                    ),
                ));
            }
        }
        for o in &p.outputs {
            check_template(&o.template)?;
            let text = render(o.template.get_ref(), &samples, |v| {
                escape_quoted(o.format, v)
            })
            .map_err(|e| err(at(o.template.span()), e))?;
            if o.format == OutputFormat::Json {
                serde_json::from_str::<serde_json::Value>(&text).map_err(|e| {
                    err(
                        at(o.template.span()) + e.line(),
                        format!("output '{}' does not render to valid JSON: {e}", o.id),
                    )
                })?;
            }
            let has_secret = placeholders(o.template.get_ref())
                .iter()
                .any(|p| p == "client_secret");
            if has_secret != o.contains_secret {
                return Err(err(
                    at(o.template.span()),
                    format!("output '{}': contains_secret must be {has_secret}", o.id),
                ));
            }
        }
        match (p.protocol, &p.scim) {
            (Protocol::Scim, None) => {
                return Err(err(
                    1,
                    "a provider with protocol \"scim\" needs a [scim] section".into(),
                ));
            }
            (Protocol::Scim, Some(_))
                if !p.redirect_uris.is_empty()
                    || !p.permissions.is_empty()
                    || !p.outputs.is_empty() =>
            {
                return Err(err(1, "a SCIM-only provider has no redirect_uris, permissions or outputs: it registers no sign-in app".into()));
            }
            (Protocol::Saml, _) => {
                return Err(err(1, "SAML providers are not supported yet".into()));
            }
            _ => {}
        }
        if let Some(scim) = &p.scim {
            check_template(&scim.app_name)?;
        }
        if let Some(push) = &p.push {
            if push.kind.get_ref() != "cloudflare_identity_provider" {
                return Err(err(
                    at(push.kind.span()),
                    format!("unknown push kind '{}'", push.kind.get_ref()),
                ));
            }
            if !p.outputs.iter().any(|o| &o.id == push.output.get_ref()) {
                return Err(err(
                    at(push.output.span()),
                    format!(
                        "push output '{}' is not one of the outputs",
                        push.output.get_ref()
                    ),
                ));
            }
        }
        Ok(p)
    }

    /// Example values for every placeholder (used to check templates).
    pub fn sample_values(&self) -> BTreeMap<String, String> {
        let mut v: BTreeMap<String, String> = [
            ("tenant_id", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("client_id", "00001111-aaaa-2222-bbbb-3333cccc4444"),
            ("client_secret", "Abc8Q~example-secret.value_0123456789"),
            ("authority", "https://login.microsoftonline.com"),
            ("app_name", "Example app"),
            ("secret_expiry", "2027-11-22"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for i in self.all_inputs() {
            v.insert(i.id.get_ref().clone(), i.example.clone());
            if i.kind == InputKind::Url {
                v.insert(format!("{}_host", i.id.get_ref()), url_host(&i.example));
            }
        }
        v
    }

    /// Validates and normalises the admin's inputs for this provider (without push inputs).
    pub fn validate_inputs(
        &self,
        given: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, Vec<InputError>> {
        validate(self.inputs.iter(), given)
    }

    /// Validates the inputs for pushing to the provider's API.
    pub fn validate_push_inputs(
        &self,
        given: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, Vec<InputError>> {
        validate(self.push.iter().flat_map(|p| p.inputs.iter()), given)
    }

    /// Whether the provider signs users in (registers an OIDC app); false for SCIM-only ones.
    pub fn has_sign_in(&self) -> bool {
        self.protocol == Protocol::Oidc
    }

    /// The delegated and application permissions by name.
    pub fn permission_names(&self, kind: PermissionKind) -> Vec<String> {
        self.permissions
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| p.name.get_ref().clone())
            .collect()
    }
}

/// Host of a URL input (for names such as "Pomerium (authenticate.corp.example.com)").
pub fn url_host(u: &str) -> String {
    url::Url::parse(u)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default()
}

fn validate<'a>(
    specs: impl Iterator<Item = &'a InputSpec>,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, Vec<InputError>> {
    let specs: Vec<&InputSpec> = specs.collect();
    let mut out = BTreeMap::new();
    let mut errors = vec![];
    let declared: Vec<&str> = specs.iter().map(|s| s.id.get_ref().as_str()).collect();
    for unknown in given.keys().filter(|k| !declared.contains(&k.as_str())) {
        errors.push(InputError {
            field: unknown.clone(),
            label: unknown.clone(),
            message: if declared.is_empty() {
                format!("'{unknown}' is not an input here: none is taken.")
            } else {
                format!(
                    "'{unknown}' is not an input here; the inputs are: {}.",
                    declared.join(", ")
                )
            },
        });
    }
    for spec in specs {
        let id = spec.id.get_ref();
        let mut v = given
            .get(id)
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        if spec.lowercase {
            v = v.to_lowercase();
        }
        for suffix in &spec.strip_suffix {
            if let Some(stripped) = v.strip_suffix(suffix.as_str()) {
                v = stripped.to_string();
            }
        }
        if spec.kind == InputKind::Url {
            v = v.trim_end_matches('/').to_string();
        }
        if v.is_empty() {
            if !spec.optional {
                errors.push(InputError {
                    field: id.clone(),
                    label: spec.label.clone(),
                    message: format!("This is required. {}", spec.help),
                });
            }
            continue;
        }
        let matches = |pattern: &str| Regex::new(pattern).is_ok_and(|re| re.is_match(&v));
        let broken = spec
            .rules
            .iter()
            .find(|r| !matches(r.pattern.get_ref()))
            .map(|r| r.message.clone())
            .or_else(|| (!matches(spec.pattern.get_ref())).then(|| spec.message.clone()));
        if let Some(message) = broken {
            errors.push(InputError {
                field: id.clone(),
                label: spec.label.clone(),
                message,
            });
            continue;
        }
        if spec.kind == InputKind::Url {
            out.insert(format!("{id}_host"), url_host(&v));
        }
        out.insert(id.clone(), v);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Entra's rules for a web redirect URI (reference §12): https (http only for loopback), at most
/// 256 characters, none of `! $ ' ( ) , ;`.
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let u = url::Url::parse(uri).map_err(|e| format!("redirect URI '{uri}' is not a URL: {e}"))?;
    let loopback = matches!(u.host_str(), Some("localhost" | "127.0.0.1"));
    if u.scheme() != "https" && !(u.scheme() == "http" && loopback) {
        return Err(format!("redirect URI '{uri}' must use https"));
    }
    if uri.len() > 256 {
        return Err(format!(
            "redirect URI '{uri}' is longer than Entra's 256 characters"
        ));
    }
    if let Some(c) = uri.chars().find(|c| "!$'(),;".contains(*c)) {
        return Err(format!(
            "redirect URI '{uri}' contains '{c}', which Entra does not allow"
        ));
    }
    Ok(())
}

/// Every built-in provider, parsed. A broken file is a build-time mistake the tests catch.
pub fn builtin() -> Result<Vec<Provider>, ProfileError> {
    BUILTIN
        .iter()
        .map(|(file, src)| Provider::parse(&format!("providers/{file}"), src))
        .collect()
}

/// One built-in provider by id.
pub fn find(id: &str) -> Option<Provider> {
    builtin().ok()?.into_iter().find(|p| p.id() == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_profile_is_valid() {
        let all = builtin().unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<&str> = all.iter().map(Provider::id).collect();
        assert!(
            ids.contains(&"cloudflare") && ids.contains(&"pomerium"),
            "{ids:?}"
        );
    }

    #[test]
    fn cloudflare_is_seven_delegated_permissions() {
        let p = find("cloudflare").unwrap();
        assert_eq!(
            p.permission_names(PermissionKind::Delegated),
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
        assert!(p.permission_names(PermissionKind::Application).is_empty());
    }

    #[test]
    fn pomerium_is_three_application_permissions() {
        let p = find("pomerium").unwrap();
        assert_eq!(
            p.permission_names(PermissionKind::Application),
            ["Directory.Read.All", "Group.Read.All", "User.Read.All"]
        );
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
    fn a_broken_profile_is_reported_with_file_and_line() {
        let src = find_src("cloudflare").replace(
            "name = \"GroupMember.Read.All\"",
            "name = \"GroupMember.Reed.All\"",
        );
        let e = Provider::parse("providers/cloudflare.toml", &src).unwrap_err();
        assert_eq!(e.file, "providers/cloudflare.toml");
        let expected = src
            .lines()
            .position(|l| l.contains("GroupMember.Reed.All"))
            .unwrap()
            + 1;
        assert_eq!(e.line, expected, "{e}");
        assert!(
            e.to_string()
                .contains("not a known microsoft graph delegated permission"),
            "{e}"
        );

        let e = Provider::parse(
            "providers/cloudflare.toml",
            &src.replace("protocol = \"oidc\"", "protocol = \"oidcc\""),
        )
        .unwrap_err();
        assert!(e.line > 1 && e.to_string().contains("oidcc"), "{e}");
        let e = Provider::parse(
            "providers/cloudflare.toml",
            &find_src("cloudflare").replace("{team}.cloudflareaccess", "{teem}.cloudflareaccess"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown placeholder {teem}"), "{e}");
    }

    fn find_src(id: &str) -> String {
        BUILTIN
            .iter()
            .find(|(f, _)| f.trim_end_matches(".toml") == id)
            .map(|(_, s)| (*s).to_string())
            .unwrap()
    }

    #[test]
    fn rendering_escapes_for_the_target_format() {
        let mut v = BTreeMap::new();
        v.insert("x".to_string(), "a\"b${c}".to_string());
        assert_eq!(
            render("\"{x}\"", &v, |s| escape_quoted(OutputFormat::Json, s)).unwrap(),
            "\"a\\\"b${c}\""
        );
        assert_eq!(
            render("\"{x}\"", &v, |s| escape_quoted(OutputFormat::Hcl, s)).unwrap(),
            "\"a\\\"b$${c}\""
        );
        assert!(render("{y}", &v, str::to_string).is_err());
        assert_eq!(
            render("{ not a placeholder }", &v, str::to_string).unwrap(),
            "{ not a placeholder }"
        );
    }
}
