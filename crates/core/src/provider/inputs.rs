//! What the admin types because Entra cannot know it, and the checks each value must pass.

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::template::url_host;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    #[default]
    Text,
    /// A URL: a trailing `/` is dropped, and `{<id>_host}` is its host.
    Url,
    /// One or more URLs separated by commas; `pattern` and `rules` apply to each. A template
    /// that is just `{<id>}` stands for each URL in turn.
    UrlList,
    /// One of `options` (a form shows a list to pick from).
    Choice,
    /// Security groups by exact display name or object ID, separated by commas. The setup
    /// looks each up in the tenant; `{<id>_ids}` is their object IDs, and an output line that
    /// uses it is repeated for each.
    GroupList,
}

impl InputKind {
    /// Whether a value holds several items separated by commas.
    pub fn is_list(self) -> bool {
        matches!(self, Self::UrlList | Self::GroupList)
    }
}

/// One value a `choice` input offers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ChoiceOption {
    pub value: String,
    pub label: String,
}

/// Something the admin must type because Entra cannot know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputSpec {
    pub id: String,
    pub label: String,
    pub help: String,
    pub example: String,
    pub pattern: String,
    /// Shown when the value does not match `pattern`: says what to type.
    pub message: String,
    pub kind: InputKind,
    pub optional: bool,
    /// Suffixes removed if the admin pastes more than asked for (e.g. the whole team domain).
    pub strip_suffix: Vec<String>,
    pub lowercase: bool,
    /// Never shown again, logged or stored (e.g. an API token used once).
    pub secret: bool,
    /// Checks tried in order before `pattern`, each with the message that names its reason
    /// (too long, a hyphen at the end, …), so a bad value is told what is wrong with it.
    pub rules: Vec<InputRule>,
    /// What a `choice` input offers.
    pub options: Vec<ChoiceOption>,
    /// The value taken when the admin leaves the input empty.
    pub default: Option<String>,
}

/// One check on an input: the value must match `pattern`; `message` says why it does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputRule {
    pub pattern: String,
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

impl InputSpec {
    /// What is wrong with one (normalised) value, if anything: the first broken rule's message,
    /// else the pattern's.
    fn problem(&self, v: &str) -> Option<String> {
        let matches = |pattern: &str| Regex::new(pattern).is_ok_and(|re| re.is_match(v));
        self.rules
            .iter()
            .find(|r| !matches(&r.pattern))
            .map(|r| r.message.clone())
            .or_else(|| (!matches(&self.pattern)).then(|| self.message.clone()))
    }

    fn normalise(&self, raw: &str) -> String {
        let mut v = raw.trim().to_string();
        if self.lowercase {
            v = v.to_lowercase();
        }
        for suffix in &self.strip_suffix {
            if let Some(stripped) = v.strip_suffix(suffix.as_str()) {
                v = stripped.to_string();
            }
        }
        if self.kind == InputKind::Url {
            v = v.trim_end_matches('/').to_string();
        }
        v
    }
}

/// The items of a `url_list` value.
pub fn list_items(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Validates and normalises values against `specs`: every bad one is reported, each with what
/// to type, and a value for an input that does not exist is refused.
pub fn validate<'a>(
    specs: impl Iterator<Item = &'a InputSpec>,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, Vec<InputError>> {
    let specs: Vec<&InputSpec> = specs.collect();
    let mut out = BTreeMap::new();
    let mut errors = vec![];
    let declared: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
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
        let id = &spec.id;
        let mut v = spec.normalise(given.get(id).map(String::as_str).unwrap_or_default());
        // A list of nothing but commas and spaces (`redirect_uris=,`) is as empty as no value.
        if spec.kind.is_list() && list_items(&v).is_empty() {
            v.clear();
        }
        if v.is_empty() {
            if let Some(d) = &spec.default {
                v.clone_from(d);
            }
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
        let (value, problem) = if spec.kind.is_list() {
            let items = list_items(&v);
            // A URL is told the rule it breaks first; the profile's own pattern comes after.
            let problem = items.iter().find_map(|item| {
                (spec.kind == InputKind::UrlList)
                    .then(|| super::check_redirect_uri(item).err())
                    .flatten()
                    .map(|m| format!("{m}."))
                    .or_else(|| {
                        spec.problem(item)
                            .map(|m| format!("'{}': {m}", crate::redact::echo(item, 200)))
                    })
            });
            (items.join(","), problem)
        } else if spec.kind == InputKind::Choice {
            let problem = (!spec.options.iter().any(|o| o.value == v)).then(|| {
                format!(
                    "'{v}' is not one of the choices: {}.",
                    spec.options
                        .iter()
                        .map(|o| format!("{} ({})", o.value, o.label))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
            (v, problem)
        } else {
            let problem = spec.problem(&v).or_else(|| {
                (spec.kind == InputKind::Url)
                    .then(|| {
                        crate::endpoint::parse(&v, crate::endpoint::Http::Loopback, false).err()
                    })
                    .flatten()
                    .map(|e| format!("{e}."))
            });
            (v, problem)
        };
        if let Some(message) = problem {
            errors.push(InputError {
                field: id.clone(),
                label: spec.label.clone(),
                message,
            });
            continue;
        }
        if spec.kind == InputKind::Url {
            out.insert(format!("{id}_host"), url_host(&value));
        }
        out.insert(id.clone(), value);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}
