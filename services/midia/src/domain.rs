//! Media items, their validation and the readable summary `GetMedia` returns.

use aula_api::limits;
use aula_runtime::fields::{self, InvalidField};
pub use aula_runtime::ids::CourseId;

/// Why a midia request failed; `grpc.rs` says which kind of failure each variant is, and the
/// runtime's one mapping turns it into a status.
#[derive(Debug, thiserror::Error)]
pub enum MidiaError {
    /// Bad input, naming the field (INVALID_ARGUMENT).
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// The course already holds as many items as one `GetMedia` answer may carry
    /// (FAILED_PRECONDITION).
    #[error(
        "id_curso {0}: the course already has {max} media items, the most a course may hold",
        max = limits::MEDIA_PER_COURSE
    )]
    CourseFull(i64),
    /// The database failed (classified by the runtime; never shown to the caller).
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
}

/// What a media item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Video,
    Slides,
    Texto,
}

impl MediaKind {
    pub const ALL: [MediaKind; 3] = [MediaKind::Video, MediaKind::Slides, MediaKind::Texto];

    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Video => "video",
            MediaKind::Slides => "slides",
            MediaKind::Texto => "texto",
        }
    }

    /// How a reader sees it.
    pub fn label(self) -> &'static str {
        match self {
            MediaKind::Video => "Vídeo",
            MediaKind::Slides => "Slides",
            MediaKind::Texto => "Texto",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim().to_lowercase();
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// A stored media item.
/// Read from a row by column name (`sqlx::FromRow`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MediaItem {
    pub id: i64,
    pub id_curso: i64,
    pub titulo: String,
    /// As stored: one of [`MediaKind::as_str`].
    pub tipo: String,
    pub url: String,
    pub duracao_segundos: i32,
    pub ordem: i32,
    pub descricao: String,
}

impl MediaItem {
    /// The item cut to today's limits: items stored before the limits existed are shown
    /// clipped, so that no course's answer can outgrow one gRPC message.
    pub fn within_limits(self) -> Self {
        let clip = |text: String, max: usize| match fields::clip(&text, max).len() {
            n if n == text.len() => text,
            n => text[..n].to_string(),
        };
        Self {
            titulo: clip(self.titulo, limits::MEDIA_TITLE_CHARS),
            tipo: clip(self.tipo, limits::MEDIA_KIND_CHARS),
            url: clip(self.url, limits::MEDIA_URL_CHARS),
            descricao: clip(self.descricao, limits::MEDIA_DESCRIPTION_CHARS),
            ..self
        }
    }
}

/// A validated `AddMedia` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMedia {
    pub id_curso: CourseId,
    pub titulo: String,
    pub tipo: MediaKind,
    pub url: String,
    pub duracao_segundos: i32,
    /// `None`: after the course's last item.
    pub ordem: Option<i32>,
    pub descricao: String,
}

/// The raw fields of an `AddMedia` request, as the edge received them.
#[derive(Debug, Clone, Default)]
pub struct AddMediaFields<'a> {
    pub id_curso: &'a str,
    pub titulo: &'a str,
    pub tipo: &'a str,
    pub url: &'a str,
    pub duracao_segundos: i32,
    pub ordem: i32,
    pub descricao: &'a str,
}

impl NewMedia {
    pub fn parse(f: AddMediaFields<'_>) -> Result<Self, InvalidField> {
        let id_curso = CourseId::parse(f.id_curso)?;
        let titulo = fields::required_text("titulo", f.titulo, limits::MEDIA_TITLE_CHARS)?;
        let tipo = fields::bounded("tipo", f.tipo, limits::MEDIA_KIND_CHARS)?;
        if tipo.is_empty() {
            return Err(InvalidField::new(
                "tipo",
                "must not be empty (video, slides or texto)",
            ));
        }
        let tipo = MediaKind::parse(tipo).ok_or_else(|| {
            InvalidField::new(
                "tipo",
                format!(
                    "must be video, slides or texto (got {})",
                    fields::quote(tipo)
                ),
            )
        })?;
        let url = fields::http_url("url", f.url, limits::MEDIA_URL_CHARS)?;
        if f.duracao_segundos < 0 {
            return Err(InvalidField::new(
                "duracao_segundos",
                "must not be negative",
            ));
        }
        if f.ordem < 0 {
            return Err(InvalidField::new("ordem", "must not be negative"));
        }
        let descricao =
            fields::optional_text("descricao", f.descricao, limits::MEDIA_DESCRIPTION_CHARS)?;
        Ok(Self {
            id_curso,
            titulo,
            tipo,
            url,
            duracao_segundos: f.duracao_segundos,
            ordem: (f.ordem > 0).then_some(f.ordem),
            descricao,
        })
    }
}

/// A duration as a reader says it: "45 s", "12 min", "1 h 05 min".
pub fn human_duration(seconds: i32) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", (s + 30) / 60),
        s => {
            let minutes = (s + 30) / 60;
            format!("{} h {:02} min", minutes / 60, minutes % 60)
        }
    }
}

/// The readable summary of a course's media, e.g.
/// `3 itens: Vídeo 'Introdução ao Python' (12 min), Slides 'Variáveis', Texto 'Funções'`.
pub fn summary(id_curso: CourseId, items: &[MediaItem]) -> String {
    if items.is_empty() {
        return format!("Nenhuma mídia cadastrada para o curso {}", id_curso.get());
    }
    let described: Vec<String> = items
        .iter()
        .map(|item| {
            let label: &str = match MediaKind::parse(&item.tipo) {
                Some(kind) => kind.label(),
                None => &item.tipo,
            };
            let mut s = format!("{label} '{}'", item.titulo);
            if item.duracao_segundos > 0 {
                s.push_str(&format!(" ({})", human_duration(item.duracao_segundos)));
            }
            s
        })
        .collect();
    let count = if items.len() == 1 {
        "1 item".to_string()
    } else {
        format!("{} itens", items.len())
    };
    format!("{count}: {}", described.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(titulo: &str, tipo: &str, duracao: i32) -> MediaItem {
        MediaItem {
            id: 1,
            id_curso: 1,
            titulo: titulo.into(),
            tipo: tipo.into(),
            url: "https://x".into(),
            duracao_segundos: duracao,
            ordem: 1,
            descricao: String::new(),
        }
    }

    #[test]
    fn summaries_read_naturally() {
        let c = CourseId::parse("3").unwrap();
        assert_eq!(
            summary(
                c,
                &[
                    item("Introdução ao Python", "video", 720),
                    item("Variáveis", "slides", 0)
                ]
            ),
            "2 itens: Vídeo 'Introdução ao Python' (12 min), Slides 'Variáveis'"
        );
        assert_eq!(
            summary(c, &[item("Guia", "texto", 0)]),
            "1 item: Texto 'Guia'"
        );
        assert_eq!(summary(c, &[]), "Nenhuma mídia cadastrada para o curso 3");
        assert_eq!(human_duration(45), "45 s");
        assert_eq!(human_duration(3900), "1 h 05 min");
    }

    #[test]
    fn new_media_names_the_bad_field() {
        let ok = AddMediaFields {
            id_curso: "1",
            titulo: "T",
            tipo: "Video",
            url: "https://x",
            ..Default::default()
        };
        let parsed = NewMedia::parse(ok.clone()).unwrap();
        assert_eq!(parsed.tipo, MediaKind::Video);
        assert_eq!(parsed.ordem, None);
        let field = |f: AddMediaFields<'_>| match NewMedia::parse(f) {
            Err(e) => e.field,
            other => panic!("expected invalid, got {other:?}"),
        };
        assert_eq!(
            field(AddMediaFields {
                id_curso: "",
                ..ok.clone()
            }),
            "id_curso"
        );
        assert_eq!(
            field(AddMediaFields {
                id_curso: "x",
                ..ok.clone()
            }),
            "id_curso"
        );
        assert_eq!(
            field(AddMediaFields {
                titulo: " ",
                ..ok.clone()
            }),
            "titulo"
        );
        assert_eq!(
            field(AddMediaFields {
                tipo: "audio",
                ..ok.clone()
            }),
            "tipo"
        );
        assert_eq!(
            field(AddMediaFields {
                url: "",
                ..ok.clone()
            }),
            "url"
        );
        assert_eq!(
            field(AddMediaFields {
                duracao_segundos: -1,
                ..ok.clone()
            }),
            "duracao_segundos"
        );
        assert_eq!(
            field(AddMediaFields {
                url: "javascript:alert(1)",
                ..ok.clone()
            }),
            "url"
        );
        assert_eq!(
            field(AddMediaFields {
                descricao: &"d".repeat(limits::MEDIA_DESCRIPTION_CHARS + 1),
                ..ok.clone()
            }),
            "descricao"
        );
        assert_eq!(field(AddMediaFields { ordem: -1, ..ok }), "ordem");
    }
}
