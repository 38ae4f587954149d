//! Templates in provider profiles: `{name}` placeholders filled from the inputs and the values
//! the wizard knows (tenant id, client id, …), and read back from what they produced.

use std::collections::BTreeMap;

use super::OutputFormat;

/// The `{name}` placeholders in a template.
pub fn placeholders(template: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if close > 0 && is_name(&after[..close]) => {
                out.push(after[..close].to_string());
                rest = &after[close + 1..];
            }
            _ => rest = after,
        }
    }
    out
}

fn is_name(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

/// A template names a value the setup does not have.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no value for {{{0}}}")]
pub struct MissingValue(pub String);

/// Replaces `{name}` placeholders; `escape` adapts each value to where it is written.
pub fn render(
    template: &str,
    values: &BTreeMap<String, String>,
    escape: impl Fn(&str) -> String,
) -> Result<String, MissingValue> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if close > 0 && is_name(&after[..close]) => {
                let name = &after[..close];
                let v = values
                    .get(name)
                    .ok_or_else(|| MissingValue(name.to_string()))?;
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

/// Host of a URL input (for names such as "Pomerium (authenticate.corp.example.com)").
pub fn url_host(u: &str) -> String {
    url::Url::parse(u)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn unrendering_reads_values_back_only_when_they_render_the_same() {
        let t = "https://{team}.cloudflareaccess.com/cdn-cgi/access/callback";
        let v = unrender(
            t,
            "https://acme.cloudflareaccess.com/cdn-cgi/access/callback",
        )
        .unwrap();
        assert_eq!(v["team"], "acme");
        assert!(unrender(t, "https://acme.example.com/cdn-cgi/access/callback").is_none());
        assert_eq!(
            unrender("{service} (SCIM)", "Acme (SCIM)").unwrap()["service"],
            "Acme"
        );
    }
}
