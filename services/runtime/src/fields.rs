//! Request fields checked at the edge, the same way in every service: one error type naming
//! the field, one wording ("must not be empty", "must be at most N characters"), and one way to
//! quote what the caller sent ([`quote`]: a short prefix, never the whole input, so a 1 MB bad
//! value cannot become a 1 MB status message).
//!
//! Lengths are counted in characters (Unicode scalar values), as users count them; a
//! character is at most 4 bytes in UTF-8, which is how the byte budgets of responses are
//! derived (`aula_api::limits`).

/// A request field that failed validation; its message starts with the field's name, as every
/// INVALID_ARGUMENT of the API does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidField {
    /// The field as the API spells it (`id_curso`, `material.descricao`).
    pub field: &'static str,
    pub reason: String,
}

impl InvalidField {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

impl From<InvalidField> for tonic::Status {
    fn from(e: InvalidField) -> Self {
        tonic::Status::invalid_argument(e.to_string())
    }
}

/// How many characters of a bad value an error message quotes.
pub const QUOTE_CHARS: usize = 32;

/// A bad value as an error message may show it: the whole value when it is short, else its
/// first [`QUOTE_CHARS`] characters and its length. Control characters are escaped.
pub fn quote(raw: &str) -> String {
    let mut chars = raw.char_indices();
    match chars.nth(QUOTE_CHARS) {
        None => format!("{raw:?}"),
        Some((cut, _)) => format!(
            "{:?}… ({} characters)",
            &raw[..cut],
            QUOTE_CHARS + 1 + chars.count()
        ),
    }
}

/// The character count of `raw`, or `None` as soon as it exceeds `max` (so a huge value costs
/// no more than `max` steps to refuse).
fn chars_within(raw: &str, max: usize) -> Option<usize> {
    // A string of at most `max` bytes has at most `max` characters: no need to count.
    if raw.len() <= max {
        return Some(raw.chars().count());
    }
    let n = raw.chars().take(max + 1).count();
    (n <= max).then_some(n)
}

fn too_long(field: &'static str, raw: &str, max: usize) -> InvalidField {
    InvalidField::new(
        field,
        format!(
            "must be at most {max} characters (got {})",
            raw.chars().count()
        ),
    )
}

/// A free-text field that may be empty: trimmed, at most `max` characters.
pub fn optional_text(field: &'static str, raw: &str, max: usize) -> Result<String, InvalidField> {
    bounded(field, raw, max).map(|t| t.to_string())
}

/// A required free-text field: trimmed, not blank, at most `max` characters.
pub fn required_text(field: &'static str, raw: &str, max: usize) -> Result<String, InvalidField> {
    let text = bounded(field, raw, max)?;
    if text.is_empty() {
        return Err(InvalidField::new(field, "must not be empty"));
    }
    Ok(text.to_string())
}

/// Trims `raw` and checks that what is left has at most `max` characters and no NUL.
pub fn bounded<'a>(field: &'static str, raw: &'a str, max: usize) -> Result<&'a str, InvalidField> {
    let text = raw.trim();
    if chars_within(text, max).is_none() {
        return Err(too_long(field, text, max));
    }
    // PostgreSQL's text cannot hold U+0000 (an INTERNAL error at the insert); refused on both
    // backends so a request means the same everywhere.
    if text.contains('\0') {
        return Err(InvalidField::new(
            field,
            "must not contain NUL characters (\\0)",
        ));
    }
    Ok(text)
}

/// A repeated field: at most `max` elements.
pub fn count<T>(field: &'static str, items: &[T], max: usize) -> Result<(), InvalidField> {
    if items.len() > max {
        return Err(InvalidField::new(
            field,
            format!("must have at most {max} elements (got {})", items.len()),
        ));
    }
    Ok(())
}

/// A required web address: at most `max` characters, `http` or `https`, with a host.
/// Anything else (`javascript:`, `data:`, `file:`, a bare path) is refused: clients render
/// these as links.
pub fn http_url(field: &'static str, raw: &str, max: usize) -> Result<String, InvalidField> {
    let text = bounded(field, raw, max)?;
    if text.is_empty() {
        return Err(InvalidField::new(field, "must not be empty"));
    }
    let url = url::Url::parse(text).map_err(|e| {
        InvalidField::new(
            field,
            format!("must be an http(s) URL ({e}; got {})", quote(text)),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(InvalidField::new(
            field,
            format!(
                "must be an http(s) URL (got scheme {})",
                quote(url.scheme())
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(InvalidField::new(
            field,
            "must be an http(s) URL with a host",
        ));
    }
    // What was sent, trimmed: the parser's normalised form would change what users typed.
    Ok(text.to_string())
}

/// Text longer than `max` characters cut to `max` (for data a service forwards but did not
/// check itself, such as rows stored before a limit existed).
pub fn clip(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_short() {
        assert_eq!(quote("abc"), "\"abc\"");
        assert_eq!(quote("a\nb"), "\"a\\nb\"");
        let big = "x".repeat(1 << 20);
        let q = quote(&big);
        assert!(q.len() < 80, "{q}");
        assert!(q.ends_with("… (1048576 characters)"), "{q}");
        let exact = "é".repeat(QUOTE_CHARS);
        assert_eq!(quote(&exact), format!("{exact:?}"));
    }

    #[test]
    fn texts() {
        assert_eq!(
            required_text("f", "a\0b", 10).unwrap_err().to_string(),
            "f: must not contain NUL characters (\\0)"
        );
        assert_eq!(required_text("t", " a ", 3).unwrap(), "a");
        assert_eq!(
            required_text("t", "  ", 3).unwrap_err().to_string(),
            "t: must not be empty"
        );
        assert_eq!(
            required_text("t", "ãããã", 3).unwrap_err().to_string(),
            "t: must be at most 3 characters (got 4)"
        );
        assert_eq!(required_text("t", "ããã", 3).unwrap(), "ããã");
        assert_eq!(optional_text("t", "", 3).unwrap(), "");
        assert!(count("ids", &[1, 2, 3], 2)
            .unwrap_err()
            .to_string()
            .starts_with("ids: must have at most 2 elements"));
        assert_eq!(clip("ãbc", 2), "ãb");
        assert_eq!(clip("ab", 5), "ab");
    }

    #[test]
    fn urls() {
        assert_eq!(
            http_url("url", " https://example.com/a b ", 100).unwrap(),
            "https://example.com/a b"
        );
        assert!(http_url("url", "http://h:8080/x?y#z", 100).is_ok());
        for bad in [
            "javascript:alert(1)",
            "JAVASCRIPT:alert(1)",
            "data:text/html,<script>",
            "file:///etc/passwd",
            "/relative",
            "ftp://h/x",
            "http://",
            "",
        ] {
            let e = http_url("url", bad, 100).unwrap_err();
            assert_eq!(e.field, "url", "{bad}: {e}");
        }
        let long = format!("https://h/{}", "a".repeat(200));
        assert!(http_url("url", &long, 100)
            .unwrap_err()
            .reason
            .starts_with("must be at most 100 characters"));
    }
}
