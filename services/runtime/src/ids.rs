//! Identifiers as the API carries them: strings that must hold a positive integer. One parser
//! for every service, so each rejects the same inputs with the same words, and the ids every
//! service shares (a course, a user) as types of their own ("parse, don't validate").

use crate::fields::quote;
pub use crate::fields::InvalidField;

/// The longest identifier accepted, in characters: an `i64` has at most 19 digits; a little
/// room for leading zeros and spaces, nothing more.
pub const MAX_ID_CHARS: usize = 32;

/// Parses a required identifier field (`id_curso`, `id_usuario`, ...).
pub fn parse_id(field: &'static str, raw: &str) -> Result<i64, InvalidField> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(InvalidField::new(field, "must not be empty"));
    }
    match raw.parse::<i64>() {
        Ok(n) if n > 0 && raw.len() <= MAX_ID_CHARS => Ok(n),
        _ => Err(InvalidField::new(
            field,
            format!("must be a positive integer (got {})", quote(raw)),
        )),
    }
}

/// Parses an optional identifier field: empty (or blank) is `None`, anything else must parse.
pub fn parse_optional_id(field: &'static str, raw: &str) -> Result<Option<i64>, InvalidField> {
    if raw.trim().is_empty() {
        Ok(None)
    } else {
        parse_id(field, raw).map(Some)
    }
}

/// Declares an id type: a positive integer parsed from the named request field.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(i64);

        impl $name {
            /// The request field this id travels in.
            pub const FIELD: &'static str = $field;

            pub fn parse(raw: &str) -> Result<Self, InvalidField> {
                parse_id($field, raw).map(Self)
            }

            /// Empty is `None`; anything else must parse.
            pub fn parse_optional(raw: &str) -> Result<Option<Self>, InvalidField> {
                Ok(parse_optional_id($field, raw)?.map(Self))
            }

            /// An id read back from storage (already valid when it was stored).
            pub fn from_stored(id: i64) -> Self {
                Self(id)
            }

            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A course (`id_curso`): owned by cursos, referred to by midia, chatbot and insights.
    CourseId,
    "id_curso"
);
id_type!(
    /// A user (`id_usuario`). Users are not owned by any service here: any positive integer
    /// is a user.
    UserId,
    "id_usuario"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(parse_id("id_curso", " 7 "), Ok(7));
        for bad in ["", "  ", "0", "-3", "abc", "1.5", "99999999999999999999"] {
            let e = parse_id("id_curso", bad).unwrap_err();
            assert!(e.to_string().starts_with("id_curso: "), "{e}");
        }
        let status: tonic::Status = parse_id("id_usuario", "x").unwrap_err().into();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().starts_with("id_usuario"));
        assert_eq!(parse_optional_id("id_usuario", " "), Ok(None));
        assert_eq!(
            UserId::parse_optional("4").unwrap().map(UserId::get),
            Some(4)
        );
        assert_eq!(CourseId::parse("3").unwrap().to_string(), "3");
        assert!(CourseId::parse("x")
            .unwrap_err()
            .to_string()
            .starts_with("id_curso: "));
    }

    #[test]
    fn a_huge_bad_id_gives_a_short_message() {
        let huge = "9".repeat(1 << 20);
        let e = parse_id("id_curso", &huge).unwrap_err().to_string();
        assert!(e.len() < 120, "{e}");
        let zeros = format!("{}1", "0".repeat(100));
        assert!(parse_id("id_curso", &zeros).is_err());
    }
}
