//! The input limits of the API, in one place, because several services must agree on them:
//! what one service accepts and forwards, the service it forwards to must accept too
//! (cursos' `SendNotification.message` reaches notificacoes; midia's items reach the chatbot
//! as `MaterialItem`s through `AskQuestion`), and what a service returns must fit in one gRPC
//! message. `services/aula/tests/limits.rs` proves both.
//!
//! Text limits count characters (Unicode scalar values, at most 4 bytes each in UTF-8).
//! Each service checks them at its edge; a value over a limit is INVALID_ARGUMENT naming the
//! field and the limit. The table for users is in docs/CONFIG.md ("Input limits").

/// The largest gRPC message a service decodes or sends (tonic's default): every response must
/// fit, whatever the stored data.
pub const MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// A question (`duvida`): a few sentences, not a document.
pub const QUESTION_CHARS: usize = 4_000;
/// The lesson context a question comes with (`aula_contexto`).
pub const LESSON_CONTEXT_CHARS: usize = 50_000;

/// A course's name as the chatbot is told it (`nome_curso`).
pub const COURSE_NAME_CHARS: usize = 200;
/// A course's description as the chatbot is told it (`descricao_curso`).
pub const COURSE_DESCRIPTION_CHARS: usize = 5_000;

/// A media item's title (`AddMedia.titulo`, `MaterialItem.titulo`).
pub const MEDIA_TITLE_CHARS: usize = 200;
/// A media item's description (`AddMedia.descricao`, `MaterialItem.descricao`).
pub const MEDIA_DESCRIPTION_CHARS: usize = 2_000;
/// A media item's kind (`tipo`: video, slides, texto).
pub const MEDIA_KIND_CHARS: usize = 16;
/// A media item's address (`url`; http or https).
pub const MEDIA_URL_CHARS: usize = 2_048;
/// Media items one course may hold: `GetMedia` returns them all in one message, and they are
/// the material of every question on the course (`ChatbotDuvidaRequest.material`).
pub const MEDIA_PER_COURSE: usize = 100;

/// A notification's text (`SendNotificationRequest.message`, `NotifyScheduleRequest.message`).
pub const NOTIFICATION_MESSAGE_CHARS: usize = 2_000;
/// Who sent a notification (`origem`).
pub const NOTIFICATION_ORIGIN_CHARS: usize = 64;
/// A sender's idempotency key (`chave_idempotencia`).
pub const IDEMPOTENCY_KEY_CHARS: usize = 200;
/// Notification ids one `MarkAsRead` may carry.
pub const MARK_AS_READ_IDS: usize = 1_000;

/// An interaction id (`id_interacao`): the chatbot issues 36-character UUIDs.
pub const INTERACTION_ID_CHARS: usize = 128;
/// A model's name as insights records it (`modelo`); GEMINI_MODEL is held to it at start-up.
pub const MODEL_CHARS: usize = 128;

/// An appointment's title (`CreateScheduleRequest.titulo`).
pub const SCHEDULE_TITLE_CHARS: usize = 200;

/// A page token (`page_token`): the tokens services issue are about 30 characters.
pub const PAGE_TOKEN_CHARS: usize = 64;
