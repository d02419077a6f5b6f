//! Serde types of Gemini's REST API (`v1beta`), only the fields the chatbot reads or writes.
//! Reference: <https://ai.google.dev/api/generate-content>. Unknown fields are ignored, so new
//! fields in Google's responses do not break parsing.

use serde::{Deserialize, Serialize};

/// Body of `models/{model}:generateContent` and `:streamGenerateContent`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_instruction: Option<Content>,
    pub contents: Vec<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation_config: Option<GenerationConfig>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default)]
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Set on the model's "thinking" parts, which are not part of the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
}

impl Part {
    pub fn text(text: impl Into<String>) -> Part {
        Part {
            text: Some(text.into()),
            thought: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
}

/// A `generateContent` response, and each event of a `streamGenerateContent?alt=sse` stream.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentResponse {
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_feedback: Option<PromptFeedback>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// `STOP`, `MAX_TOKENS`, `SAFETY`, `RECITATION`, `BLOCKLIST`, `PROHIBITED_CONTENT`, `SPII`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback {
    /// Set when the prompt itself was refused: `SAFETY`, `BLOCKLIST`, `PROHIBITED_CONTENT`, `OTHER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_reason: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    #[serde(default)]
    pub prompt_token_count: u32,
    #[serde(default)]
    pub candidates_token_count: u32,
    #[serde(default)]
    pub total_token_count: u32,
}

/// The body of an error response: `{"error": {"code", "message", "status", "details"}}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    #[serde(default)]
    pub code: u16,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub status: String,
    /// `google.rpc` details; a `RetryInfo` carries `retryDelay` (e.g. `"37s"`) on quota errors.
    #[serde(default)]
    pub details: Vec<serde_json::Value>,
}

impl ErrorBody {
    /// The `retryDelay` of a `google.rpc.RetryInfo` detail, if any.
    pub fn retry_delay(&self) -> Option<std::time::Duration> {
        self.details.iter().find_map(|d| {
            let delay = d.get("retryDelay")?.as_str()?;
            let secs: f64 = delay.strip_suffix('s')?.parse().ok()?;
            std::time::Duration::try_from_secs_f64(secs).ok()
        })
    }
}

/// Finish reasons meaning the answer was withheld by a filter rather than finished.
pub const BLOCKING_FINISH_REASONS: &[&str] = &[
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
];

impl GenerateContentResponse {
    /// The reason the prompt or the answer was blocked, if it was.
    pub fn block_reason(&self) -> Option<String> {
        if let Some(reason) = self
            .prompt_feedback
            .as_ref()
            .and_then(|f| f.block_reason.clone())
        {
            return Some(reason);
        }
        self.candidates
            .first()
            .and_then(|c| c.finish_reason.as_deref())
            .filter(|r| BLOCKING_FINISH_REASONS.contains(r))
            .map(str::to_owned)
    }

    /// The answer text of the first candidate, thinking parts left out.
    pub fn text(&self) -> String {
        self.candidates
            .first()
            .and_then(|c| c.content.as_ref())
            .map(|c| {
                c.parts
                    .iter()
                    .filter(|p| p.thought != Some(true))
                    .filter_map(|p| p.text.as_deref())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn finish_reason(&self) -> Option<&str> {
        self.candidates
            .first()
            .and_then(|c| c.finish_reason.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_real_response_shape() {
        let body = r#"{
          "candidates": [{
            "content": {"parts": [{"text": "thinking", "thought": true}, {"text": "Olá, "}, {"text": "mundo"}], "role": "model"},
            "finishReason": "STOP", "index": 0,
            "safetyRatings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"}]
          }],
          "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 4, "totalTokenCount": 16},
          "modelVersion": "gemini-2.5-flash"
        }"#;
        let r: GenerateContentResponse = serde_json::from_str(body).unwrap();
        assert_eq!(r.text(), "Olá, mundo");
        assert_eq!(r.block_reason(), None);
        assert_eq!(r.usage_metadata.unwrap().prompt_token_count, 12);
    }

    #[test]
    fn block_reasons() {
        let r: GenerateContentResponse =
            serde_json::from_str(r#"{"promptFeedback": {"blockReason": "SAFETY"}}"#).unwrap();
        assert_eq!(r.block_reason().as_deref(), Some("SAFETY"));
        let r: GenerateContentResponse =
            serde_json::from_str(r#"{"candidates": [{"finishReason": "RECITATION"}]}"#).unwrap();
        assert_eq!(r.block_reason().as_deref(), Some("RECITATION"));
    }

    #[test]
    fn retry_info() {
        let e: ErrorResponse = serde_json::from_str(
            r#"{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED",
               "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}]}}"#,
        )
        .unwrap();
        assert_eq!(
            e.error.retry_delay(),
            Some(std::time::Duration::from_millis(1500))
        );
    }

    #[test]
    fn request_is_camel_case() {
        let req = GenerateContentRequest {
            system_instruction: Some(Content {
                role: None,
                parts: vec![Part::text("sys")],
            }),
            contents: vec![],
            generation_config: Some(GenerationConfig {
                temperature: Some(0.5),
                max_output_tokens: None,
            }),
        };
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(v["systemInstruction"]["parts"][0]["text"], "sys");
        assert_eq!(v["generationConfig"]["temperature"], 0.5);
    }
}
