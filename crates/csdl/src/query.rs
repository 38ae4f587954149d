//! The property names a request's query options use (`$select`, `$filter`, `$orderby`,
//! `$expand`), checked against the type the path resolves to: Graph answers 400 "Could not find
//! a property named 'x' on type 'y'" for a name its schema does not have.

use super::{Schema, Target, TypeRef};

/// OData words that are not property names (OData v4 URL conventions §5.1.1).
const KEYWORDS: &[&str] = &[
    "eq", "ne", "gt", "ge", "lt", "le", "and", "or", "not", "in", "has", "add", "sub", "mul",
    "div", "mod", "true", "false", "null", "asc", "desc",
];

/// One property path a `$filter` names, as written (`web/redirectUris`), and the type it is
/// read from (the entity, or a lambda variable's element type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterPath {
    pub path: String,
    /// Whether the path starts at the request's entity (not at a lambda variable).
    pub top_level: bool,
}

impl Schema {
    /// Every query option's property names that `path`'s type does not have (empty = valid).
    pub fn check_query(&self, path: &str, query: &[(String, String)]) -> Vec<String> {
        let Ok(target) = self.resolve(path) else {
            return vec![];
        };
        let Some(ty) = self.element_type(&target) else {
            return vec![];
        };
        let mut errors = vec![];
        for (key, value) in query {
            match key.to_ascii_lowercase().as_str() {
                "$select" => {
                    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                        if let Err(e) = self.walk(&ty, name) {
                            errors.push(e);
                        }
                    }
                }
                "$orderby" => {
                    for item in value.split(',') {
                        let name = item.split_whitespace().next().unwrap_or_default();
                        if let Err(e) = self.walk(&ty, name) {
                            errors.push(e);
                        }
                    }
                }
                "$expand" => {
                    for item in split_top_level(value) {
                        let name = item.split('(').next().unwrap_or_default().trim();
                        if name != "*" && self.find_nav(&ty.name, name).is_none() {
                            errors.push(not_found(name, &ty.name));
                        }
                    }
                }
                "$filter" => errors.extend(self.check_filter(&ty, value)),
                _ => {}
            }
        }
        errors
            .into_iter()
            .map(|e| format!("GET {path}: {e}"))
            .collect()
    }

    /// The entity or complex type a target's items have, if it has properties.
    fn element_type(&self, target: &Target) -> Option<TypeRef> {
        let ty = match target {
            Target::Collection(t) | Target::Single(t) => t.element(),
            Target::Operation(op) => op.returns.as_ref()?.element(),
            Target::Reference | Target::Count => return None,
        };
        self.types.contains_key(&ty.name).then_some(ty)
    }

    /// Follows `a/b/microsoft.graph.c/d` from `ty`; the type at the end. A name may come from
    /// a type derived from the one declared: Graph answers `/groups/{id}/members?$select=
    /// displayName,userPrincipalName` (directoryObjects) with each member's own properties.
    fn walk(&self, ty: &TypeRef, path: &str) -> Result<TypeRef, String> {
        let mut cur = ty.element();
        for seg in path.split('/') {
            if seg.starts_with("microsoft.graph.") && self.types.contains_key(seg) {
                cur = TypeRef::single(seg);
                continue;
            }
            let family = self.types.keys().filter(|t| self.is_subtype(t, &cur.name));
            let found = std::iter::once(&cur.name).chain(family).find_map(|t| {
                self.find_prop(t, seg)
                    .map(|p| p.ty.clone())
                    .or_else(|| self.find_nav(t, seg).cloned())
            });
            match found {
                Some(next) => cur = next,
                None => return Err(not_found(seg, &cur.name)),
            }
        }
        Ok(cur)
    }

    fn check_filter(&self, ty: &TypeRef, filter: &str) -> Vec<String> {
        let mut errors = vec![];
        let mut vars: Vec<(String, TypeRef)> = vec![];
        for (path, lambda_var) in filter_tokens(filter) {
            let (root, rest) = match path.split_once('/') {
                Some((r, rest)) => (r, Some(rest)),
                None => (path.as_str(), None),
            };
            let resolved = match vars.iter().rev().find(|(v, _)| v == root) {
                // A variable over a collection already reported as unknown.
                Some((_, var_ty)) if var_ty.name == UNKNOWN => Ok(var_ty.clone()),
                Some((_, var_ty)) => match rest {
                    Some(rest) => self.walk(var_ty, rest),
                    None => Ok(var_ty.clone()),
                },
                None => self.walk(ty, &path),
            };
            match resolved {
                Ok(t) => {
                    if let Some(v) = lambda_var {
                        vars.push((v, t.element()));
                    }
                }
                Err(e) => {
                    errors.push(format!("$filter: {e}"));
                    if let Some(v) = lambda_var {
                        vars.push((v, TypeRef::single(UNKNOWN)));
                    }
                }
            }
        }
        errors
    }
}

/// The type of a lambda variable whose collection could not be resolved.
const UNKNOWN: &str = "Edm.Untyped";

fn not_found(name: &str, ty: &str) -> String {
    format!("Could not find a property named '{name}' on type '{ty}'.")
}

/// The property paths a `$filter` names, in order; a path followed by `/any(v:` or `/all(v:`
/// comes with its lambda variable `v`. Quoted values, numbers, GUIDs, dates, keywords and
/// function names are left out.
fn filter_tokens(filter: &str) -> Vec<(String, Option<String>)> {
    // Blank out quoted values ('' is an escaped quote inside one).
    let mut text = String::with_capacity(filter.len());
    let mut quoted = false;
    for c in filter.chars() {
        if c == '\'' {
            quoted = !quoted;
            text.push(' ');
        } else {
            text.push(if quoted { ' ' } else { c });
        }
    }
    let chars: Vec<char> = text.chars().collect();
    let is_word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-');
    let mut out: Vec<(String, Option<String>)> = vec![];
    let mut i = 0;
    while i < chars.len() {
        if !is_word(chars[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_word(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let next = chars[i..].iter().find(|c| !c.is_whitespace()).copied();
        let first = word.chars().next().unwrap_or(' ');
        if first.is_ascii_digit() || first == '-' || crate::is_guid(&word) {
            continue;
        }
        if KEYWORDS.contains(&word.to_ascii_lowercase().as_str()) {
            continue;
        }
        if next == Some(':') {
            // A lambda variable's declaration: `v:` binds the collection just named.
            if let Some(last) = out.last_mut() {
                if last.1.as_deref() == Some("") {
                    last.1 = Some(word);
                }
            }
            continue;
        }
        if next == Some('(') {
            // A lambda on a collection (`tags/any(`), or a function call (`startswith(`).
            let lower = word.to_ascii_lowercase();
            if let Some(collection) = lower
                .strip_suffix("/any")
                .or_else(|| lower.strip_suffix("/all"))
                .map(|c| &word[..c.len()])
            {
                out.push((collection.to_string(), Some(String::new())));
            }
            continue;
        }
        out.push((word, None));
    }
    out.into_iter()
        .map(|(p, v)| (p, v.filter(|v| !v.is_empty())))
        .collect()
}

/// `a,b($select=x,y),c` → `a`, `b($select=x,y)`, `c`.
fn split_top_level(value: &str) -> Vec<&str> {
    let mut out = vec![];
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in value.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

/// The property paths a `$filter` reads from the entity itself (not from lambda variables):
/// `tags/any(t:t eq 'x') and startswith(displayName,'a')` → `tags`, `displayName`.
pub fn filtered_properties(filter: &str) -> Vec<FilterPath> {
    let tokens = filter_tokens(filter);
    let vars: Vec<String> = tokens.iter().filter_map(|(_, v)| v.clone()).collect();
    tokens
        .into_iter()
        .map(|(path, _)| {
            let root = path.split('/').next().unwrap_or_default().to_string();
            FilterPath {
                top_level: !vars.contains(&root),
                path,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph_v1;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn the_wizards_queries_name_real_properties() {
        let s = graph_v1();
        for (path, query) in [
            ("/applications", q(&[("$filter", "tags/any(t:t eq 'x')"), ("$select", "id,appId,displayName,uniqueName,tags,notes,web,createdDateTime")])),
            ("/applications", q(&[("$filter", "web/redirectUris/any(x:x eq 'https://a/b')"), ("$count", "true")])),
            ("/applications", q(&[("$filter", "applicationTemplateId eq 'a' and displayName eq 'it''s'")])),
            ("/servicePrincipals", q(&[("$filter", "startswith(displayName,'not ')"), ("$orderby", "displayName desc")])),
            ("/oauth2PermissionGrants", q(&[("$filter", "clientId eq '14d82eec-204b-4c2f-b7e8-296a70dab67e' and consentType eq 'AllPrincipals'")])),
            ("/auditLogs/provisioning", q(&[("$filter", "servicePrincipal/id eq 'x'"), ("$top", "5")])),
            ("/applications", q(&[("$filter", "keyCredentials/any(k:k/keyId eq 14d82eec-204b-4c2f-b7e8-296a70dab67e)")])),
            ("/groups/1/transitiveMembers/microsoft.graph.user", q(&[("$select", "id,userPrincipalName")])),
            ("/servicePrincipals", q(&[("$expand", "owners($select=id),appRoleAssignedTo")])),
        ] {
            assert_eq!(s.check_query(path, &query), Vec::<String>::new(), "{path} {query:?}");
        }
    }

    #[test]
    fn unknown_names_are_refused_with_graphs_words() {
        let s = graph_v1();
        let errs = s.check_query("/applications", &q(&[("$select", "id,displayNam")]));
        assert_eq!(
            errs,
            ["GET /applications: Could not find a property named 'displayNam' on type 'microsoft.graph.application'."]
        );
        assert_eq!(
            s.check_query(
                "/applications",
                &q(&[("$filter", "web/redirectUri/any(x:x eq 'a')")])
            )
            .len(),
            1
        );
        assert_eq!(
            s.check_query(
                "/applications",
                &q(&[("$filter", "keyCredentials/any(k:k/keyIdd eq 'a')")])
            )
            .len(),
            1,
            "a lambda variable's properties are checked against the element type"
        );
        assert_eq!(
            s.check_query("/servicePrincipals", &q(&[("$expand", "ownerz")]))
                .len(),
            1
        );
    }

    #[test]
    fn filtered_properties_leave_out_values_and_variables() {
        let names: Vec<(String, bool)> = filtered_properties(
            "tags/any(t:t eq 'not x') and startswith(displayName,'a') or appId eq 14d82eec-204b-4c2f-b7e8-296a70dab67e",
        )
        .into_iter()
        .map(|p| (p.path, p.top_level))
        .collect();
        assert_eq!(
            names,
            [
                ("tags".to_string(), true),
                ("t".to_string(), false),
                ("displayName".to_string(), true),
                ("appId".to_string(), true)
            ]
        );
    }
}
