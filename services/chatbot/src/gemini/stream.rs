//! The streamed answer: a state machine driven by `stream::unfold` that connects (with the
//! retries of [`super::retry`], only before the first byte), then relays each SSE event's text
//! as it arrives, bounding silence by the attempt timeout and the whole by the deadline, and
//! ends with one final chunk carrying the token counts.

use std::collections::VecDeque;
use std::time::Instant;

use futures::stream::{self, BoxStream, StreamExt};
use tracing::Instrument;

use super::client::GeminiClient;
use super::failure::Failure;
use super::protocol::{GenerateContentRequest, GenerateContentResponse};
use super::sse::SseParser;
use crate::domain::{AnswerError, Chunk};

/// The answer to `body` as a stream of chunks, bounded by `deadline`.
pub(super) fn answer(
    client: GeminiClient,
    body: GenerateContentRequest,
    deadline: Instant,
) -> BoxStream<'static, Result<Chunk, AnswerError>> {
    let span = tracing::info_span!("gemini.stream", model = %client.model());
    let state = StreamState::Connecting {
        client,
        body,
        deadline,
        started: Instant::now(),
    };
    stream::unfold(state, move |state| {
        let span = span.clone();
        async move { state.step().await }.instrument(span)
    })
    .boxed()
}

/// The streaming call as a state machine driven by `stream::unfold`.
enum StreamState {
    Connecting {
        client: GeminiClient,
        body: GenerateContentRequest,
        deadline: Instant,
        started: Instant,
    },
    Reading(Box<Reading>),
    Done,
}

struct Reading {
    client: GeminiClient,
    body: BoxStream<'static, reqwest::Result<Vec<u8>>>,
    parser: SseParser,
    pending: VecDeque<Chunk>,
    deadline: Instant,
    started: Instant,
    tokens_in: u32,
    tokens_out: u32,
    saw_text: bool,
    ended: bool,
}

impl StreamState {
    async fn step(self) -> Option<(Result<Chunk, AnswerError>, StreamState)> {
        match self {
            StreamState::Done => None,
            StreamState::Connecting {
                client,
                body,
                deadline,
                started,
            } => {
                let opened = client
                    .with_retries(deadline, true, |span| client.open_stream(&body, span))
                    .await;
                match opened {
                    Err(e) => {
                        tracing::warn!(outcome = e.outcome(), error = %e, "gemini stream failed");
                        client.record_call(e.outcome(), started, 0, 0);
                        Some((Err(e), StreamState::Done))
                    }
                    Ok(response) => {
                        let reading = Reading {
                            client: client.clone(),
                            body: response
                                .bytes_stream()
                                .map(|r| r.map(|b| b.to_vec()))
                                .boxed(),
                            parser: SseParser::default(),
                            pending: VecDeque::new(),
                            deadline,
                            started,
                            tokens_in: 0,
                            tokens_out: 0,
                            saw_text: false,
                            ended: false,
                        };
                        Box::new(reading).next().await
                    }
                }
            }
            StreamState::Reading(reading) => reading.next().await,
        }
    }
}

impl Reading {
    async fn next(mut self: Box<Self>) -> Option<(Result<Chunk, AnswerError>, StreamState)> {
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                return Some((Ok(chunk), StreamState::Reading(self)));
            }
            if self.ended {
                return Some(self.finish());
            }
            // Between events, the attempt timeout bounds silence, the deadline bounds the whole.
            let config = &self.client.inner.config;
            let wait_until = self.deadline.min(Instant::now() + config.attempt_timeout);
            let next = tokio::time::timeout_at(
                tokio::time::Instant::from_std(wait_until),
                self.body.next(),
            )
            .await;
            let events = match next {
                Err(_elapsed) => return Some(self.fail(AnswerError::Timeout)),
                Ok(Some(Err(e))) => {
                    let detail = Failure::transport(e).redacted(&self.client);
                    return Some(self.fail(AnswerError::Unavailable {
                        detail: format!("the answer stream broke: {detail}"),
                    }));
                }
                Ok(Some(Ok(bytes))) => match self.parser.push(&bytes) {
                    Ok(events) => events,
                    Err(_) => {
                        return Some(self.fail(AnswerError::Unavailable {
                            detail: "the answer stream sent an oversized event".into(),
                        }))
                    }
                },
                Ok(None) => {
                    self.ended = true;
                    self.parser.finish().into_iter().collect()
                }
            };
            for data in events {
                if let Err(e) = self.event(&data) {
                    return Some(self.fail(e));
                }
            }
        }
    }

    fn event(&mut self, data: &str) -> Result<(), AnswerError> {
        let event: GenerateContentResponse =
            serde_json::from_str(data).map_err(|e| AnswerError::Unavailable {
                detail: format!("the answer stream sent an event that is not JSON: {e}"),
            })?;
        if let Some(reason) = event.block_reason() {
            return Err(AnswerError::Blocked {
                reason: self.client.scrub(&reason),
            });
        }
        if let Some(usage) = event.usage_metadata {
            self.tokens_in = usage.prompt_token_count;
            self.tokens_out = usage.candidates_token_count;
        }
        let text = event.text();
        if !text.is_empty() {
            self.saw_text = true;
            self.pending.push_back(Chunk {
                text,
                is_final: false,
                model: self.client.model().to_owned(),
                offline: false,
                tokens_in: 0,
                tokens_out: 0,
            });
        }
        Ok(())
    }

    fn finish(&self) -> (Result<Chunk, AnswerError>, StreamState) {
        if !self.saw_text {
            return self.fail(AnswerError::Unavailable {
                detail: "the answer stream ended without any text".into(),
            });
        }
        self.client
            .record_call("ok", self.started, self.tokens_in, self.tokens_out);
        let chunk = Chunk {
            text: String::new(),
            is_final: true,
            model: self.client.model().to_owned(),
            offline: false,
            tokens_in: self.tokens_in,
            tokens_out: self.tokens_out,
        };
        (Ok(chunk), StreamState::Done)
    }

    fn fail(&self, e: AnswerError) -> (Result<Chunk, AnswerError>, StreamState) {
        tracing::warn!(error = %e, "gemini answer stream failed");
        self.client
            .record_call(e.outcome(), self.started, self.tokens_in, self.tokens_out);
        (Err(e), StreamState::Done)
    }
}
