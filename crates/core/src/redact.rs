//! Defence in depth for logs: secrets are kept in redacting types and never formatted, and any
//! text that still looks like a token is masked before it is written.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::Regex;

fn patterns() -> &'static [(Regex, &'static str)] {
    static P: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    P.get_or_init(|| {
        [
            // JWTs (access and id tokens).
            (r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*", "<redacted-jwt>"),
            // Bearer credentials in headers.
            (r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}", "${1}<redacted>"),
            // Form fields and JSON members that carry secrets.
            (
                r#"(?i)((?:refresh_token|access_token|id_token|client_secret|code_verifier|device_code|secretText|SecretToken|password)["']?\s*[:=]\s*["']?)[^"'&\s,}]{4,}"#,
                "${1}<redacted>",
            ),
            // An authorization code travels as a query or form field (`code=…`); `code: X` in
            // an error message is Graph's error code, which the admin needs to see.
            (r#"(?i)(\bcode=)[^"'&\s,}]{4,}"#, "${1}<redacted>"),
        ]
        .into_iter()
        .filter_map(|(re, with)| Regex::new(re).ok().map(|r| (r, with)))
        .collect()
    })
}

/// Masks anything that looks like a token or secret.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for (re, with) in patterns() {
        if re.is_match(&out) {
            out = Cow::Owned(re.replace_all(&out, *with).into_owned());
        }
    }
    out
}

/// Text from outside (a remote endpoint's answer, something the admin typed) as it may be
/// shown on a terminal, in the webview or in a file: anything that looks like a credential
/// masked, and control characters (an ANSI sequence that clears the screen and draws a fake
/// PASS, a bell, a carriage return that overwrites the line) replaced; line breaks and tabs
/// kept.
pub fn printable(text: &str) -> String {
    redact(text)
        .chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

/// What someone typed, as a message shows it back: [`printable`] on one line, and at most
/// `max` characters.
pub fn echo(input: &str, max: usize) -> String {
    let p = printable(input).replace(['\n', '\t'], " ");
    match p.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &p[..cut]),
        None => p,
    }
}

#[cfg(test)]
mod tests {
    use super::{printable, redact};

    #[test]
    fn printable_text_has_no_control_characters_and_no_tokens() {
        let out = printable("ok\x1b[2J\x1b[HPASS\r\x07 Bearer abcdefghijkl\nnext\tline");
        assert!(
            !out.contains('\x1b') && !out.contains('\r') && !out.contains('\x07'),
            "{out:?}"
        );
        assert!(!out.contains("abcdefghijkl"), "{out}");
        assert!(out.contains("\nnext\tline"), "{out:?}");
    }

    #[test]
    fn masks_tokens_and_secrets() {
        let line = "POST token refresh_token=0.AAAAbcdefgh&client_id=x Authorization: Bearer abc.def-ghijkl {\"secretText\":\"Qw8~abc\"} eyJhbGciOi.eyJzdWIiOiIx.sig-123";
        let out = redact(line);
        assert!(!out.contains("0.AAAAbcdefgh"), "{out}");
        assert!(!out.contains("abc.def-ghijkl"), "{out}");
        assert!(!out.contains("Qw8~abc"), "{out}");
        assert!(!out.contains("eyJzdWIiOiIx"), "{out}");
        assert!(out.contains("client_id=x"), "{out}");
    }

    #[test]
    fn keeps_error_codes_but_masks_authorization_codes() {
        let out =
            redact("Error code: CredentialValidationUnavailable; GET /?code=0.AXoAbcdefgh&state=s");
        assert!(out.contains("CredentialValidationUnavailable"), "{out}");
        assert!(!out.contains("0.AXoAbcdefgh"), "{out}");
    }

    #[test]
    fn leaves_plain_text_alone() {
        assert_eq!(
            redact("signed in to contoso.com as adele@contoso.com"),
            "signed in to contoso.com as adele@contoso.com"
        );
    }
}
