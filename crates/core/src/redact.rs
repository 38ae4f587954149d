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
    without_controls(&redact(text))
}

/// The terminal half of [`printable`], for everything a command prints (what it wrote itself
/// may hold a secret the admin asked to see): control characters (C0 but line breaks and tabs,
/// DEL, C1) and bidi controls replaced by U+FFFD.
pub fn without_controls(text: &str) -> String {
    text.chars()
        .map(|c| {
            if (c.is_control() && c != '\n' && c != '\t') || is_bidi_control(c) {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

/// Wraps a log writer so each formatted event is redacted before it is written (the desktop's
/// log file and the CLI's standard error alike), a second line of defence behind the redacting
/// types.
pub struct Redacting<M>(pub M);

pub struct RedactingWriter<W>(pub W);

impl<W: std::io::Write> std::io::Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl<'a, M: tracing_subscriber::fmt::MakeWriter<'a>> tracing_subscriber::fmt::MakeWriter<'a>
    for Redacting<M>
{
    type Writer = RedactingWriter<M::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter(self.0.make_writer())
    }
}

/// Unicode's bidirectional formatting characters (embeddings, overrides, isolates and marks):
/// they reorder what a terminal or the webview shows ("Trojan Source"), so remote text never
/// brings them in.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// [`printable`] with the credentials just sent (a token, a secret) masked wherever they are
/// echoed back, also when they look like nothing in particular.
pub fn printable_without(text: &str, sent: &[&str]) -> String {
    let mut out = text.to_string();
    for s in sent.iter().filter(|s| s.len() >= 4) {
        out = out.replace(*s, "<redacted>");
    }
    printable(&out)
}

/// What someone typed, as a message shows it back: [`printable`] on one line, and at most
/// `max` characters; a longer value is cut there and says how long it was.
pub fn echo(input: &str, max: usize) -> String {
    let p = printable(input).replace(['\n', '\t'], " ");
    match p.char_indices().nth(max) {
        Some((cut, _)) => format!("{}… ({} characters in all)", &p[..cut], p.chars().count()),
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
    fn bidi_controls_and_c1_never_reach_the_screen() {
        let out = super::printable("file\u{202e}gpj.exe \u{2066}x\u{2069} \u{9b}31m \u{85}");
        for c in ['\u{202e}', '\u{2066}', '\u{2069}', '\u{9b}', '\u{85}'] {
            assert!(!out.contains(c), "{out:?} keeps {c:?}");
        }
        let masked =
            super::printable_without("token tok-plain-1234 was wrong", &["tok-plain-1234"]);
        assert_eq!(masked, "token <redacted> was wrong");
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
