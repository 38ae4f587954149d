//! What the admin typed: provider inputs, SCIM choices and files holding secrets.

use super::*;
use entra_setup_core::values;

pub(crate) fn parse_pairs(pairs: &[String], what: &str) -> Result<BTreeMap<String, String>, Fail> {
    let mut out = BTreeMap::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| Fail(2, format!("{what} '{p}' must look like KEY=VALUE")))?;
        let k = k.trim();
        if k.is_empty() {
            return Err(Fail(2, format!("{what} '{p}' has no name before '='")));
        }
        if let Some(first) = out.insert(k.to_string(), v.to_string()) {
            return Err(Fail(
                2,
                format!("{what} {k} is given twice ('{first}' and '{v}'): give it once"),
            ));
        }
    }
    Ok(out)
}

pub(crate) async fn intent(t: &Target) -> Result<Intent, Fail> {
    let mut inputs = t.inputs.clone();
    if let Some(from) = &t.sp_metadata {
        inputs.extend(sp_metadata_inputs(from, &t.inputs).await?);
    }
    let intent = intent_of(&t.provider, &inputs, t.secret_days)?;
    if (t.rotate_secret || t.secret_days.is_some()) && intent.provider.oidc().is_none() {
        let flag = if t.rotate_secret {
            "--rotate-secret"
        } else {
            "--secret-days"
        };
        let why = match intent.provider.protocol() {
            provider::Protocol::Saml => "signs in with SAML, which uses a signing certificate (rotate it with --rotate-certificate)",
            provider::Protocol::Vendor => "signs in through the vendor's own Entra app, which holds no secret of this wizard's",
            _ => "only provisions users and groups: its app has no client secret",
        };
        return Err(Fail(
            2,
            format!("{flag} is for services that sign in with a client secret; {} {why}. Leave {flag} out.", intent.provider.name),
        ));
    }
    values::distinct(t.scim.assign.iter().map(String::as_str))
        .map_err(|e| Fail(2, format!("--assign {e}.")))?;
    if t.rotate_certificate && intent.saml.is_none() {
        return Err(Fail(
            2,
            format!("--rotate-certificate is for SAML services; {} signs in without a SAML certificate (use --rotate-secret for a client secret).", intent.provider.name),
        ));
    }
    Ok(intent.with_rotation(t.rotate_secret || t.rotate_certificate))
}

/// Reads the service's SAML metadata (a file or a URL) into `KEY=VALUE` inputs; an input given
/// with --input as well must agree with it.
async fn sp_metadata_inputs(from: &str, given: &[String]) -> Result<Vec<String>, Fail> {
    let shown = entra_setup_core::redact::echo(from, 200);
    let source = saml::MetadataSource::parse(from)
        .map_err(|e| Fail(2, format!("--sp-metadata {shown}: {e}. Give the service's SAML metadata: its XML file, or its https URL.")))?;
    let md = saml::import_sp_metadata(&entra_setup_core::http::client(), &source)
        .await
        .map_err(|e| Fail(2, format!("--sp-metadata {shown}: {e}. Give the service's SAML metadata: its XML file, or its https URL.")))?;
    let explicit = parse_pairs(given, "--input")?;
    let mut out = vec![];
    for (k, v) in md.inputs() {
        match explicit.get(&k) {
            Some(g) if g.trim() != v => {
                return Err(Fail(
                    2,
                    format!("--input {k}={g} differs from the metadata's {v}: give one of them."),
                ))
            }
            Some(_) => {}
            None => out.push(format!("{k}={v}")),
        }
    }
    errln!(
        "From the metadata: Entity ID {}, Reply URL {}{}{}.",
        md.entity_id,
        md.reply_urls.join(", "),
        md.logout_url
            .as_ref()
            .map(|l| format!(", logout URL {l}"))
            .unwrap_or_default(),
        if md.skipped_acs.is_empty() {
            String::new()
        } else {
            format!(
                " (left out, Entra answers by HTTP-POST only: {})",
                md.skipped_acs.join(", ")
            )
        }
    );
    Ok(out)
}

/// Every provider: built in and the admin's own; a broken profile is a usage error naming its
/// file and line.
pub(crate) fn catalogue() -> Result<Vec<provider::Provider>, Fail> {
    provider::all().map_err(|e| Fail(2, format!("A provider profile cannot be used: {e}")))
}

pub(crate) fn intent_of(
    provider: &str,
    inputs: &[String],
    secret_days: Option<u32>,
) -> Result<Intent, Fail> {
    let all = catalogue()?;
    let p = all
        .iter()
        .find(|p| p.id() == provider)
        .cloned()
        .ok_or_else(|| {
            let known: Vec<String> = all.iter().map(|p| p.id().to_string()).collect();
            Fail(
                2,
                format!(
                    "No provider '{}'. Known providers: {}.",
                    entra_setup_core::redact::echo(provider, 80),
                    known.join(", ")
                ),
            )
        })?;
    let raw = parse_pairs(inputs, "--input")?;
    Intent::new(p, &raw, secret_days).map_err(|errors| {
        let lines: Vec<String> = errors
            .iter()
            .map(|e| format!("  --input {}=…: {}", e.field, e.message))
            .collect();
        Fail(2, format!("Fix these inputs:\n{}", lines.join("\n")))
    })
}

/// Looks up each `--assign` value (a user's sign-in name, a group's exact name, or an object ID).
async fn resolve_all(
    s: &Session,
    who: &[String],
) -> Result<Vec<entra_setup_core::setup::Assignee>, Fail> {
    let mut out: Vec<entra_setup_core::setup::Assignee> = vec![];
    for w in who {
        let found = people::resolve(&s.graph, w).await.map_err(|e| match e {
            people::ResolveError::Graph(g) => Fail(4, g.to_string()),
            other => Fail(2, format!("--assign {w}: {other}")),
        })?;
        if let Some(same) = out.iter().find(|o| o.id == found.id) {
            return Err(Fail(
                2,
                format!(
                    "--assign {w} is {} ({}), already given as another --assign: give each user or group once.",
                    same.display_name, same.id
                ),
            ));
        }
        errln!(
            "Assigning {} ({:?} {}).",
            found.display_name,
            found.kind,
            found.id
        );
        out.push(found);
    }
    Ok(out)
}

/// What the --scim-* flags hold, read and checked before signing in: the token from its file
/// and when it expires.
#[derive(Default)]
pub(crate) struct ScimFlags {
    token: Option<SecretString>,
    expires: Option<chrono::NaiveDate>,
}

/// Checks the --scim-*, --assign and --sync-all flags against the service before anything is
/// asked of the tenant: flags that mean nothing for it are refused, the token file is read,
/// and the URL and choice are checked as the core checks them (people are looked up later).
pub(crate) fn scim_flags(t: &Target, intent: &Intent) -> Result<ScimFlags, Fail> {
    let a = &t.scim;
    let name = &intent.provider.name;
    if intent.provider.directory_sync.is_some() {
        if a.scim_url.is_some() {
            return Err(Fail(2, format!("{name} reads your directory itself through Microsoft Graph, with no SCIM from Entra: leave out --scim-url and give --assign GROUP (\"Assigned groups only\") or --sync-all (\"All groups\").")));
        }
        if a.assign.is_empty() && !a.sync_all {
            return Err(Fail(2, format!("Choose {name}'s sync mode: --assign GROUP (repeat for several) for \"Assigned groups only\", or --sync-all for \"All groups\".")));
        }
        return Ok(ScimFlags::default());
    }
    if a.sync_all && a.scim_url.is_none() {
        return Err(Fail(
            2,
            "--sync-all needs --scim-url: it is the scope of SCIM provisioning.".into(),
        ));
    }
    let Some(url) = &a.scim_url else {
        if intent.provider.saml().is_none() {
            if !a.assign.is_empty() {
                return Err(Fail(2, format!("--assign needs --scim-url: {name} assigns users and groups for provisioning only.")));
            }
            if !intent.provider.has_sign_in() {
                return Err(Fail(2, format!("{name} only provisions users and groups: give --scim-url and --scim-token-file, and --assign WHO or --sync-all.")));
            }
        }
        return Ok(ScimFlags::default());
    };
    if intent.provider.scim.is_none() {
        return Err(Fail(
            2,
            format!("{name} takes no SCIM provisioning from Entra: leave out --scim-url."),
        ));
    }
    let token = a
        .scim_token_file
        .as_deref()
        .map(|f| {
            let raw = read_secret_file("--scim-token-file", f, "SCIM token")?;
            ScimToken::parse(raw.expose_secret()).map_err(|why| {
                Fail(
                    2,
                    format!(
                        "--scim-token-file {}: {why}",
                        entra_setup_core::redact::echo(&f.display().to_string(), 200)
                    ),
                )
            })
        })
        .transpose()?;
    let expires = a.scim_token_expires;
    let someone = a.sync_all || !a.assign.is_empty();
    ScimIntent::new(url, token.is_some(), expires, someone, vec![], true).map_err(scim_fail)?;
    Ok(ScimFlags { token, expires })
}

/// The core's verdict on the SCIM choice, said with the CLI's flags.
fn scim_fail(errors: Vec<provider::InputError>) -> Fail {
    let flag = |field: &str| match field {
        "scim_url" => "--scim-url",
        "scim_token_expires" => "--scim-token-expires",
        "scim_assign" => "--assign / --sync-all",
        _ => "--scim-*",
    };
    Fail(
        2,
        errors
            .iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    flag(&e.field),
                    e.message
                        .replace("\"Assigned users and groups only\"", "no --sync-all")
                        .replace("pick at least one user or group", "give --assign WHO")
                        .replace("choose \"All users and groups\"", "use --sync-all")
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// Adds provisioning (or who may sign in, or the vendor's sync mode) to the intent from the
/// flags [`scim_flags`] checked, looking up the names given to --assign in the tenant; returns
/// the SCIM token.
pub(crate) async fn with_scim(
    t: &Target,
    s: &Session,
    intent: Intent,
    flags: ScimFlags,
) -> Result<(Intent, Option<SecretString>), Fail> {
    let a = &t.scim;
    if intent.provider.directory_sync.is_some() {
        let assign = resolve_all(s, &a.assign).await?;
        let d = entra_setup_core::setup::DirectorySyncIntent::new(a.sync_all, assign)
            .and_then(|d| intent.with_directory_sync(d))
            .map_err(|e| {
                Fail(
                    2,
                    e.iter()
                        .map(|x| x.message.clone())
                        .collect::<Vec<_>>()
                        .join(" "),
                )
            })?;
        return Ok((d, None));
    }
    let Some(url) = &a.scim_url else {
        if intent.provider.saml().is_some() {
            // Who may sign in through the SAML app: those given, or everyone.
            let assign = if a.assign.is_empty() {
                None
            } else {
                Some(resolve_all(s, &a.assign).await?)
            };
            return Ok((intent.with_saml_access(assign, vec![]), None));
        }
        return Ok((intent, None));
    };
    let assign = resolve_all(s, &a.assign).await?;
    let si = ScimIntent::new(
        url,
        flags.token.is_some(),
        flags.expires,
        a.sync_all,
        assign,
        !a.no_start,
    )
    .map_err(scim_fail)?;
    let intent = intent.with_scim(si).map_err(scim_fail)?;
    Ok((intent, flags.token))
}

/// The largest secret file read (a token, a password).
const SECRET_FILE_LIMIT: u64 = 64 * 1024;

/// Reads a one-line secret from the file `flag` names (or standard input for `-`), without its
/// line ending: a regular file only, at most 64 KiB, one line of text. Every refusal names the
/// flag and the file and says what the file should hold.
pub(crate) fn read_secret_file(
    flag: &str,
    path: &std::path::Path,
    what: &str,
) -> Result<SecretString, Fail> {
    use std::io::Read;
    let shown = if path.as_os_str() == "-" {
        "standard input".to_string()
    } else {
        entra_setup_core::redact::echo(&path.display().to_string(), 200)
    };
    let fix = format!("give a file that holds only the {what}, on one line");
    let fail = |why: String| Fail(2, format!("{flag} {shown}: {why}: {fix}."));
    let raw = if path.as_os_str() == "-" {
        // At most one byte more than a secret may hold: a log piped in by mistake is refused
        // after 64 KiB, not read into memory.
        let mut bytes = vec![];
        std::io::stdin()
            .take(SECRET_FILE_LIMIT + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(format!("cannot be read ({e})")))?;
        if bytes.len() as u64 > SECRET_FILE_LIMIT {
            return Err(fail("is larger than 64 KiB".into()));
        }
        String::from_utf8(bytes).map_err(|_| fail("is not text (UTF-8)".into()))?
    } else {
        entra_setup_core::files::read_regular(path, SECRET_FILE_LIMIT).map_err(|e| {
            use entra_setup_core::files::ReadError;
            fail(match e {
                ReadError::NotAFile { what, .. } => format!("is not a regular file ({what})"),
                ReadError::TooLarge { .. } => "is larger than 64 KiB".into(),
                ReadError::Io { why, .. } => format!("cannot be read ({why})"),
                ReadError::NotText { .. } => "is not text (UTF-8)".into(),
            })
        })?
    };
    // An editor's byte-order mark is not part of the value.
    let value = raw.trim_start_matches('\u{feff}').trim();
    if value.is_empty() {
        return Err(fail(format!("is empty: it holds no {what}")));
    }
    if value.contains('\n') {
        return Err(fail("holds more than one line".into()));
    }
    Ok(SecretString::from(value.to_string()))
}
