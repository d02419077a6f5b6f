//! Identifiers as the API carries them: strings that must hold a positive integer. One parser
//! for every service, so each rejects the same inputs with the same words.

/// A request field that failed validation; its message starts with the field's name, as every
/// INVALID_ARGUMENT of the API does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidField {
    pub field: &'static str,
    pub reason: String,
}

impl From<InvalidField> for tonic::Status {
    fn from(e: InvalidField) -> Self {
        tonic::Status::invalid_argument(e.to_string())
    }
}

/// Parses a required identifier field (`id_curso`, `id_usuario`, ...).
pub fn parse_id(field: &'static str, raw: &str) -> Result<i64, InvalidField> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(InvalidField {
            field,
            reason: "must not be empty".into(),
        });
    }
    match raw.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(InvalidField {
            field,
            reason: format!("must be a positive integer (got {raw:?})"),
        }),
    }
}

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
    }
}
