//! Checks Microsoft Graph URLs and JSON bodies against Microsoft's own v1.0 CSDL schema.
//!
//! The wizard's Graph client and the simulated tenant are written by the same team, so a test
//! that only checks one against the other can pass while both are wrong. This crate is the
//! referee: it reads `tests/graph/graph-v1.0.csdl.xml` (Microsoft's published metadata), resolves a
//! request path such as `/applications(uniqueName='x')/addPassword` to the entity, complex type or
//! bound action it names, and reports every property in a body that the schema does not define or
//! whose value has the wrong JSON shape.
//!
//! It is deliberately strict: `OpenType="true"` on Graph types is ignored (Graph rejects unknown
//! properties in practice), and `@odata.*` annotations are the only extra keys allowed.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

mod query;
pub use query::{filtered_properties, FilterPath};

/// A type reference: `Edm.String`, `microsoft.graph.user`, or a collection of either.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeRef {
    pub name: String,
    pub collection: bool,
}

impl TypeRef {
    fn single(name: &str) -> Self {
        Self {
            name: name.to_string(),
            collection: false,
        }
    }
    fn element(&self) -> Self {
        Self {
            name: self.name.clone(),
            collection: false,
        }
    }
    fn as_collection(&self) -> Self {
        Self {
            name: self.name.clone(),
            collection: true,
        }
    }
}

impl std::fmt::Display for TypeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.collection {
            write!(f, "Collection({})", self.name)
        } else {
            f.write_str(&self.name)
        }
    }
}

#[derive(Clone, Debug)]
struct Prop {
    ty: TypeRef,
    nullable: bool,
}

#[derive(Clone, Debug)]
struct StructType {
    base: Option<String>,
    props: HashMap<String, Prop>,
    navs: HashMap<String, TypeRef>,
}

#[derive(Clone, Debug)]
struct EnumType {
    members: HashSet<String>,
    flags: bool,
}

/// A bound action or function from the schema.
#[derive(Clone, Debug)]
pub struct Operation {
    pub name: String,
    pub is_action: bool,
    pub binding: TypeRef,
    pub params: Vec<(String, TypeRef, bool)>,
    pub returns: Option<TypeRef>,
}

/// What a request path points at.
#[derive(Clone, Debug)]
pub enum Target {
    /// An entity set, a collection-valued navigation or structural property.
    Collection(TypeRef),
    /// One entity or one complex value.
    Single(TypeRef),
    /// A bound action or function.
    Operation(Operation),
    /// `.../$ref` on a navigation property.
    Reference,
    /// `.../$count`.
    Count,
}

/// Microsoft Graph's schema, loaded once.
pub struct Schema {
    types: HashMap<String, StructType>,
    enums: HashMap<String, EnumType>,
    entity_sets: HashMap<String, String>,
    singletons: HashMap<String, String>,
    operations: HashMap<String, Vec<Operation>>,
}

/// Where the vendored copy of Microsoft's schema lives in this repository: found from the
/// package being tested (cargo sets `CARGO_MANIFEST_DIR` when it runs a test) or the current
/// directory, walking up to the checkout's root. Not from where this crate was compiled: a
/// shared target directory may hold a build made in another checkout.
pub fn default_schema_path() -> PathBuf {
    const REL: &str = "tests/graph/graph-v1.0.csdl.xml";
    let starts = [
        std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from),
        std::env::current_dir().ok(),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
    ];
    starts
        .iter()
        .flatten()
        .flat_map(|start| start.ancestors().map(|a| a.join(REL)))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join(REL)
        })
}

/// The vendored Graph v1.0 schema, parsed once per process.
///
/// # Panics
/// When the vendored file is missing or is not valid CSDL: a broken checkout, not a test result.
pub fn graph_v1() -> &'static Schema {
    try_graph_v1().unwrap_or_else(|e| panic!("{e}"))
}

/// The vendored Graph v1.0 schema, parsed once per process; why not, when the file is missing
/// (an installed app, far from its checkout) or is not CSDL.
pub fn try_graph_v1() -> Result<&'static Schema, String> {
    static SCHEMA: OnceLock<Result<Schema, String>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let path = default_schema_path();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read Graph CSDL at {}: {e}", path.display()))?;
            Schema::parse(&text)
                .map_err(|e| format!("the Graph CSDL at {} does not parse: {e}", path.display()))
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn parse_type_ref(raw: &str, aliases: &HashMap<String, String>) -> TypeRef {
    let (inner, collection) = match raw
        .strip_prefix("Collection(")
        .and_then(|s| s.strip_suffix(')'))
    {
        Some(inner) => (inner, true),
        None => (raw, false),
    };
    TypeRef {
        name: qualify(inner, aliases),
        collection,
    }
}

fn qualify(name: &str, aliases: &HashMap<String, String>) -> String {
    if let Some((prefix, rest)) = name.split_once('.') {
        if let Some(ns) = aliases.get(prefix) {
            return format!("{ns}.{rest}");
        }
    }
    name.to_string()
}

impl Schema {
    /// Parses CSDL XML text.
    pub fn parse(xml: &str) -> Result<Self, String> {
        let doc = roxmltree::Document::parse(xml.trim_start_matches('\u{feff}'))
            .map_err(|e| e.to_string())?;
        let mut aliases = HashMap::new();
        for schema in doc.descendants().filter(|n| n.has_tag_name("Schema")) {
            let ns = schema.attribute("Namespace").unwrap_or_default();
            if let Some(alias) = schema.attribute("Alias") {
                aliases.insert(alias.to_string(), ns.to_string());
            }
        }
        let mut me = Schema {
            types: HashMap::new(),
            enums: HashMap::new(),
            entity_sets: HashMap::new(),
            singletons: HashMap::new(),
            operations: HashMap::new(),
        };
        for schema in doc.descendants().filter(|n| n.has_tag_name("Schema")) {
            let ns = schema.attribute("Namespace").unwrap_or_default();
            for node in schema.children().filter(roxmltree::Node::is_element) {
                let name = node.attribute("Name").unwrap_or_default();
                let qualified = format!("{ns}.{name}");
                match node.tag_name().name() {
                    "EntityType" | "ComplexType" => {
                        let mut props = HashMap::new();
                        let mut navs = HashMap::new();
                        for child in node.children().filter(roxmltree::Node::is_element) {
                            let pname = child.attribute("Name").unwrap_or_default().to_string();
                            let ty = parse_type_ref(
                                child.attribute("Type").unwrap_or_default(),
                                &aliases,
                            );
                            match child.tag_name().name() {
                                "Property" => {
                                    let nullable = child.attribute("Nullable") != Some("false");
                                    props.insert(pname, Prop { ty, nullable });
                                }
                                "NavigationProperty" => {
                                    navs.insert(pname, ty);
                                }
                                _ => {}
                            }
                        }
                        let base = node.attribute("BaseType").map(|b| qualify(b, &aliases));
                        me.types.insert(qualified, StructType { base, props, navs });
                    }
                    "EnumType" => {
                        let members = node
                            .children()
                            .filter(|c| c.has_tag_name("Member"))
                            .filter_map(|c| c.attribute("Name").map(str::to_string))
                            .collect();
                        let flags = node.attribute("IsFlags") == Some("true");
                        me.enums.insert(qualified, EnumType { members, flags });
                    }
                    "Action" | "Function" if node.attribute("IsBound") == Some("true") => {
                        let mut params: Vec<(String, TypeRef, bool)> = node
                            .children()
                            .filter(|c| c.has_tag_name("Parameter"))
                            .map(|c| {
                                (
                                    c.attribute("Name").unwrap_or_default().to_string(),
                                    parse_type_ref(
                                        c.attribute("Type").unwrap_or_default(),
                                        &aliases,
                                    ),
                                    c.attribute("Nullable") != Some("false"),
                                )
                            })
                            .collect();
                        if params.is_empty() {
                            continue;
                        }
                        let binding = params.remove(0).1;
                        let returns = node
                            .children()
                            .find(|c| c.has_tag_name("ReturnType"))
                            .and_then(|c| c.attribute("Type"))
                            .map(|t| parse_type_ref(t, &aliases));
                        me.operations
                            .entry(name.to_string())
                            .or_default()
                            .push(Operation {
                                name: name.to_string(),
                                is_action: node.tag_name().name() == "Action",
                                binding,
                                params,
                                returns,
                            });
                    }
                    "EntityContainer" => {
                        for child in node.children().filter(roxmltree::Node::is_element) {
                            let cname = child.attribute("Name").unwrap_or_default().to_string();
                            match child.tag_name().name() {
                                "EntitySet" => {
                                    let t = qualify(
                                        child.attribute("EntityType").unwrap_or_default(),
                                        &aliases,
                                    );
                                    me.entity_sets.insert(cname, t);
                                }
                                "Singleton" => {
                                    let t = qualify(
                                        child.attribute("Type").unwrap_or_default(),
                                        &aliases,
                                    );
                                    me.singletons.insert(cname, t);
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        if me.types.is_empty() || me.entity_sets.is_empty() {
            return Err("no entity types or entity sets found: not a CSDL document".into());
        }
        Ok(me)
    }

    /// `ty` and all its base types, nearest first.
    fn lineage<'a>(&'a self, ty: &'a str) -> Vec<&'a str> {
        let mut out = vec![];
        let mut cur = Some(ty);
        while let Some(name) = cur {
            out.push(name);
            cur = self.types.get(name).and_then(|t| t.base.as_deref());
            if out.len() > 32 {
                break;
            }
        }
        out
    }

    fn is_subtype(&self, derived: &str, base: &str) -> bool {
        self.lineage(derived).contains(&base)
    }

    fn find_prop(&self, ty: &str, name: &str) -> Option<&Prop> {
        self.lineage(ty)
            .into_iter()
            .find_map(|t| self.types.get(t).and_then(|s| s.props.get(name)))
    }

    fn find_nav(&self, ty: &str, name: &str) -> Option<&TypeRef> {
        self.lineage(ty)
            .into_iter()
            .find_map(|t| self.types.get(t).and_then(|s| s.navs.get(name)))
    }

    fn find_operation(&self, current: &TypeRef, name: &str) -> Option<&Operation> {
        let ops = self.operations.get(name)?;
        let lineage = self.lineage(&current.name);
        // Nearest type first: an override on a derived type wins.
        lineage.iter().find_map(|t| {
            ops.iter()
                .find(|op| op.binding.name == *t && op.binding.collection == current.collection)
        })
    }

    /// Whether the schema defines this structured (entity or complex) type.
    pub fn has_type(&self, qualified: &str) -> bool {
        self.types.contains_key(qualified)
    }

    /// Resolves a Graph path relative to the version root (e.g. `/me/transitiveMemberOf/microsoft.graph.directoryRole`).
    /// A query string, if present, is ignored.
    pub fn resolve(&self, path: &str) -> Result<Target, String> {
        let path = path.split('?').next().unwrap_or_default();
        let segments = split_segments(path);
        let mut iter = segments.iter();
        let first = iter.next().ok_or("empty path")?;
        let (head, key) = split_key(first);
        let mut target = if let Some(t) = self.entity_sets.get(head) {
            if key.is_some() {
                Target::Single(TypeRef::single(t))
            } else {
                Target::Collection(TypeRef::single(t).as_collection())
            }
        } else if let Some(t) = self.singletons.get(head) {
            Target::Single(TypeRef::single(t))
        } else {
            return Err(format!(
                "'{head}' is neither an entity set nor a singleton in Graph v1.0"
            ));
        };
        for seg in iter {
            target = self.step(target, seg)?;
        }
        Ok(target)
    }

    fn step(&self, target: Target, seg: &str) -> Result<Target, String> {
        let (name, key) = split_key(seg);
        match target {
            Target::Collection(ty) => {
                if seg == "$count" {
                    return Ok(Target::Count);
                }
                if seg == "$ref" {
                    return Ok(Target::Reference);
                }
                if let Some(cast) = self.cast(&ty, seg)? {
                    return Ok(Target::Collection(cast.as_collection()));
                }
                if let Some(op) = self.find_operation(&ty, name) {
                    return Ok(Target::Operation(op.clone()));
                }
                // Anything else is a key segment: /applications/{id}.
                let _ = key;
                Ok(Target::Single(ty.element()))
            }
            Target::Single(ty) => {
                if seg == "$ref" {
                    return Ok(Target::Reference);
                }
                if let Some(cast) = self.cast(&ty, seg)? {
                    return Ok(Target::Single(cast));
                }
                if let Some(nav) = self.find_nav(&ty.name, name) {
                    return Ok(match (nav.collection, key.is_some()) {
                        (true, false) => Target::Collection(nav.clone()),
                        (true, true) | (false, _) => Target::Single(nav.element()),
                    });
                }
                if let Some(prop) = self.find_prop(&ty.name, name) {
                    return Ok(if prop.ty.collection {
                        Target::Collection(prop.ty.clone())
                    } else {
                        Target::Single(prop.ty.clone())
                    });
                }
                if let Some(op) = self.find_operation(&ty, name) {
                    return Ok(Target::Operation(op.clone()));
                }
                Err(format!(
                    "'{name}' is not a property, navigation property or bound operation of {}",
                    ty.name
                ))
            }
            Target::Operation(op) => match &op.returns {
                Some(r) if r.collection => self.step(Target::Collection(r.clone()), seg),
                Some(r) => self.step(Target::Single(r.clone()), seg),
                None => Err(format!("cannot navigate past action {}", op.name)),
            },
            Target::Reference | Target::Count => {
                Err(format!("nothing can follow $ref or $count (got '{seg}')"))
            }
        }
    }

    /// A segment like `microsoft.graph.directoryRole` is a type cast when it names a type.
    fn cast(&self, current: &TypeRef, seg: &str) -> Result<Option<TypeRef>, String> {
        if !seg.starts_with("microsoft.graph.") {
            return Ok(None);
        }
        if !self.types.contains_key(seg) {
            return Ok(None);
        }
        if !self.is_subtype(seg, &current.name) {
            return Err(format!("cast to {seg} is not allowed on {}", current.name));
        }
        Ok(Some(TypeRef::single(seg)))
    }

    /// Checks a request body for `method path` and returns every violation found (empty = valid).
    pub fn check_request(&self, method: &str, path: &str, body: &Value) -> Vec<String> {
        let target = match self.resolve(path) {
            Ok(t) => t,
            Err(e) => return vec![format!("{method} {path}: {e}")],
        };
        let mut errors = vec![];
        match (method, &target) {
            (_, Target::Operation(op)) => {
                if !op.is_action {
                    errors.push(format!(
                        "{} is a function; it takes no request body",
                        op.name
                    ));
                } else {
                    self.check_params(op, body, &mut errors);
                }
            }
            ("POST", Target::Collection(ty)) => {
                self.check_value(&ty.element(), body, "$", &mut errors)
            }
            ("PUT", Target::Collection(ty)) => match body.get("value") {
                Some(v) => self.check_value(ty, v, "$.value", &mut errors),
                None => errors.push("PUT on a collection needs {\"value\": [...]}".into()),
            },
            ("PATCH" | "PUT", Target::Single(ty)) => self.check_value(ty, body, "$", &mut errors),
            ("POST" | "PUT", Target::Reference) => match body.as_object() {
                Some(o) if o.len() == 1 && o.get("@odata.id").is_some_and(Value::is_string) => {}
                _ => errors.push("a $ref body must be exactly {\"@odata.id\": \"...\"}".into()),
            },
            (m, t) => errors.push(format!("{m} with a body is not expected on {t:?}")),
        }
        errors
            .into_iter()
            .map(|e| format!("{method} {path}: {e}"))
            .collect()
    }

    fn check_params(&self, op: &Operation, body: &Value, errors: &mut Vec<String>) {
        let Some(obj) = body.as_object() else {
            if !op.params.is_empty() || !body.is_null() {
                errors.push(format!("the body of {} must be a JSON object", op.name));
            }
            return;
        };
        for (key, value) in obj {
            match op.params.iter().find(|(n, _, _)| n == key) {
                Some((_, ty, nullable)) => {
                    if value.is_null() {
                        if !nullable {
                            errors.push(format!("$.{key}: parameter may not be null"));
                        }
                    } else {
                        self.check_value(ty, value, &format!("$.{key}"), errors);
                    }
                }
                None => errors.push(format!(
                    "$.{key}: {} has no parameter '{key}' (it has: {})",
                    op.name,
                    op.params
                        .iter()
                        .map(|p| p.0.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
    }

    /// Checks a successful response body for `method path` (empty = valid).
    pub fn check_response(&self, method: &str, path: &str, body: &Value) -> Vec<String> {
        let target = match self.resolve(path) {
            Ok(t) => t,
            Err(e) => return vec![format!("{method} {path}: {e}")],
        };
        let mut errors = vec![];
        match &target {
            Target::Collection(ty) if method == "GET" => match body.get("value") {
                Some(v) => self.check_value(ty, v, "$.value", &mut errors),
                None => errors.push("a collection response needs a 'value' array".into()),
            },
            Target::Collection(ty) => self.check_value(&ty.element(), body, "$", &mut errors),
            Target::Single(ty) => self.check_value(ty, body, "$", &mut errors),
            Target::Operation(op) => match &op.returns {
                Some(r) if r.collection || !self.types.contains_key(&r.name) => {
                    match body.get("value") {
                        Some(v) => self.check_value(r, v, "$.value", &mut errors),
                        None => errors.push(format!(
                            "{} returns {r}: expected {{\"value\": ...}}",
                            op.name
                        )),
                    }
                }
                Some(r) => self.check_value(r, body, "$", &mut errors),
                None => {
                    if !body.is_null() {
                        errors.push(format!(
                            "{} returns nothing but the response has a body",
                            op.name
                        ));
                    }
                }
            },
            Target::Count => {
                if !body.is_number() {
                    errors.push("$count must be a number".into());
                }
            }
            Target::Reference => {}
        }
        errors
            .into_iter()
            .map(|e| format!("{method} {path} response: {e}"))
            .collect()
    }

    /// Checks one JSON value against a type, appending violations to `errors`.
    pub fn check_value(&self, ty: &TypeRef, value: &Value, at: &str, errors: &mut Vec<String>) {
        if ty.collection {
            match value.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if item.is_null() {
                            errors.push(format!("{at}[{i}]: null inside a collection"));
                        } else {
                            self.check_value(&ty.element(), item, &format!("{at}[{i}]"), errors);
                        }
                    }
                }
                None => errors.push(format!("{at}: expected an array of {}", ty.name)),
            }
            return;
        }
        if let Some(primitive) = ty.name.strip_prefix("Edm.") {
            check_primitive(primitive, value, at, errors);
            return;
        }
        if let Some(e) = self.enums.get(&ty.name) {
            match value.as_str() {
                Some(s) => {
                    let parts: Vec<&str> = if e.flags {
                        s.split(',').map(str::trim).collect()
                    } else {
                        vec![s]
                    };
                    for p in parts {
                        if !e.members.contains(p) {
                            errors.push(format!("{at}: '{p}' is not a member of enum {}", ty.name));
                        }
                    }
                }
                None => errors.push(format!("{at}: expected an enum string of {}", ty.name)),
            }
            return;
        }
        let Some(_) = self.types.get(&ty.name) else {
            errors.push(format!("{at}: unknown type {}", ty.name));
            return;
        };
        let Some(obj) = value.as_object() else {
            errors.push(format!("{at}: expected an object of type {}", ty.name));
            return;
        };
        // A derived type named by @odata.type replaces the declared one.
        let mut actual = ty.name.clone();
        if let Some(t) = obj.get("@odata.type").and_then(Value::as_str) {
            let t = t.trim_start_matches('#');
            if !self.types.contains_key(t) {
                errors.push(format!("{at}: @odata.type '{t}' is not a Graph type"));
                return;
            }
            if !self.is_subtype(t, &ty.name) {
                errors.push(format!(
                    "{at}: @odata.type '{t}' does not derive from {}",
                    ty.name
                ));
                return;
            }
            actual = t.to_string();
        }
        for (key, v) in obj {
            let path = format!("{at}.{key}");
            if key.starts_with('@') {
                continue;
            }
            if let Some((nav, annotation)) = key.split_once('@') {
                if annotation.starts_with("odata.")
                    && self.find_nav(&actual, nav).is_none()
                    && self.find_prop(&actual, nav).is_none()
                {
                    errors.push(format!(
                        "{path}: annotation on '{nav}', which {actual} does not have"
                    ));
                }
                continue;
            }
            if let Some(prop) = self.find_prop(&actual, key) {
                if v.is_null() {
                    if !prop.nullable {
                        errors.push(format!("{path}: may not be null"));
                    }
                    continue;
                }
                let pty = prop.ty.clone();
                self.check_value(&pty, v, &path, errors);
            } else if let Some(nav) = self.find_nav(&actual, key) {
                if v.is_null() {
                    continue;
                }
                let nav = nav.clone();
                self.check_value(&nav, v, &path, errors);
            } else {
                errors.push(format!("{path}: {actual} has no property '{key}'"));
            }
        }
    }
}

fn check_primitive(primitive: &str, value: &Value, at: &str, errors: &mut Vec<String>) {
    let ok = match primitive {
        "String" => value.is_string(),
        "Boolean" => value.is_boolean(),
        "Int16" | "Int32" | "Int64" | "Byte" | "SByte" => value.is_i64() || value.is_u64(),
        "Double" | "Single" | "Decimal" => {
            value.is_number() || matches!(value.as_str(), Some("NaN" | "INF" | "-INF"))
        }
        "Guid" => value.as_str().is_some_and(is_guid),
        "DateTimeOffset" => value.as_str().is_some_and(is_datetime_offset),
        "Date" => value
            .as_str()
            .is_some_and(|s| s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-'),
        "Duration" => value
            .as_str()
            .is_some_and(|s| s.starts_with('P') || s.starts_with("-P")),
        "Binary" => value.as_str().is_some_and(|s| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
        }),
        "TimeOfDay" => value
            .as_str()
            .is_some_and(|s| s.len() >= 5 && s.as_bytes()[2] == b':'),
        _ => true,
    };
    if !ok {
        errors.push(format!("{at}: {value} is not a valid Edm.{primitive}"));
    }
}

/// `8-4-4-4-12` hexadecimal digits.
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_datetime_offset(s: &str) -> bool {
    // 2026-01-02T03:04:05Z, with optional fraction and offset.
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (s.ends_with('Z') || s[19..].contains('+') || s[19..].contains('-'))
}

/// Splits a path into segments, keeping `(...)` key groups (which may hold slashes in quotes) whole.
fn split_segments(path: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut depth = 0usize;
    let mut in_quote = false;
    for c in path.chars() {
        match c {
            '\'' => {
                in_quote = !in_quote;
                cur.push(c);
            }
            '(' if !in_quote => {
                depth += 1;
                cur.push(c);
            }
            ')' if !in_quote => {
                depth = depth.saturating_sub(1);
                cur.push(c);
            }
            '/' if depth == 0 && !in_quote => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `applications(uniqueName='x')` → (`applications`, Some(`uniqueName='x'`)).
fn split_key(seg: &str) -> (&str, Option<&str>) {
    match seg.find('(') {
        Some(i) if seg.ends_with(')') => (&seg[..i], Some(&seg[i + 1..seg.len() - 1])),
        _ => (seg, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resolves_the_paths_the_wizard_uses() {
        let s = graph_v1();
        assert!(
            matches!(s.resolve("/me").unwrap(), Target::Single(t) if t.name == "microsoft.graph.user")
        );
        assert!(
            matches!(s.resolve("/organization").unwrap(), Target::Collection(t) if t.name == "microsoft.graph.organization")
        );
        assert!(matches!(
            s.resolve("/me/transitiveMemberOf/microsoft.graph.directoryRole?$select=id").unwrap(),
            Target::Collection(t) if t.name == "microsoft.graph.directoryRole"
        ));
        assert!(matches!(
            s.resolve("/applications(uniqueName='a/b')/addPassword").unwrap(),
            Target::Operation(op) if op.name == "addPassword"
        ));
        assert!(matches!(
            s.resolve("/servicePrincipals/abc/synchronization/secrets").unwrap(),
            Target::Collection(t) if t.name == "microsoft.graph.synchronizationSecretKeyStringValuePair"
        ));
        assert!(s.resolve("/notAThing").is_err());
        assert!(s.resolve("/me/notAProperty").is_err());
    }

    #[test]
    fn flags_unknown_properties_and_wrong_shapes() {
        let s = graph_v1();
        let ok = json!({"passwordCredential": {"displayName": "x", "endDateTime": "2027-01-01T00:00:00Z"}});
        assert!(s
            .check_request("POST", "/applications/1/addPassword", &ok)
            .is_empty());
        let bad = json!({"passwordCredential": {"displayname": "x", "endDateTime": "soon"}});
        let errs = s.check_request("POST", "/applications/1/addPassword", &bad);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].contains("displayname") || errs[1].contains("displayname"));
        let wrong_enum = json!({"signInAudience": "AzureADMyOrg", "web": {"redirectUris": ["https://x"]}, "groupMembershipClaims": "SecurityGroup"});
        assert!(s
            .check_request("POST", "/applications", &wrong_enum)
            .is_empty());
        let derived = json!({"value": [{"@odata.type": "#microsoft.graph.directoryRole", "id": "1", "roleTemplateId": "x"}]});
        assert!(s
            .check_response("GET", "/me/transitiveMemberOf", &derived)
            .is_empty());
        let not_derived =
            json!({"value": [{"@odata.type": "#microsoft.graph.subscribedSku", "id": "1"}]});
        assert_eq!(
            s.check_response("GET", "/me/transitiveMemberOf", &not_derived)
                .len(),
            1
        );
    }

    #[test]
    fn guid_shape() {
        assert!(is_guid("14d82eec-204b-4c2f-b7e8-296a70dab67e"));
        assert!(!is_guid("14d82eec-204b-4c2f-b7e8-296a70dab67"));
        assert!(!is_guid("14d82eec204b4c2fb7e8296a70dab67e"));
    }
}
