//! The text log line: time, level, the call it belongs to (method and trace id), the event.
//!
//! tracing-subscriber's default format prefixes every line with every field of every enclosing
//! span (`grpc.server{otel.name=... otel.kind=... rpc.system=... rpc.service=... ...}:`), some
//! 250 characters of attributes meant for the trace exporter. A reader needs which call and
//! which trace; the rest is in the trace.

use std::fmt;
use tracing::{Event, Subscriber};
use tracing_subscriber::{
    fmt::{
        format::Writer,
        time::{FormatTime, SystemTime},
        FmtContext, FormatEvent, FormatFields, FormattedFields,
    },
    registry::LookupSpan,
};

/// The text format (`AULA_LOG_FORMAT=text`).
#[derive(Debug, Default, Clone, Copy)]
pub struct TextFormat;

impl<S, N> FormatEvent<S, N> for TextFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        SystemTime.format_time(&mut w)?;
        write!(w, " {:>5} ", event.metadata().level())?;
        if let Some(scope) = ctx.event_scope() {
            // The outermost call: a client span inside a server span belongs to the server's call.
            for span in scope.from_root() {
                let ext = span.extensions();
                let Some(fields) = ext.get::<FormattedFields<N>>() else {
                    continue;
                };
                if let Some(call) = field(fields, "otel.name") {
                    write!(w, "{call}")?;
                    if let Some(trace) = field(fields, "trace_id") {
                        write!(w, " trace_id={trace}")?;
                    }
                    write!(w, ": ")?;
                    break;
                }
            }
        }
        ctx.format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// The value of `key` in a span's formatted fields (`key="quoted"` or `key=bare`).
fn field<'a>(fields: &'a str, key: &str) -> Option<&'a str> {
    let start = fields.match_indices(key).map(|(i, _)| i).find(|&i| {
        (i == 0 || fields.as_bytes()[i - 1] == b' ') && fields[i + key.len()..].starts_with('=')
    })? + key.len()
        + 1;
    let rest = &fields[start..];
    match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next(),
        None => rest.split(' ').next(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_found_quoted_or_bare() {
        let f = r#"otel.name="services.X/Y" otel.kind="server" trace_id=abc span_id=def"#;
        assert_eq!(field(f, "otel.name"), Some("services.X/Y"));
        assert_eq!(field(f, "trace_id"), Some("abc"));
        assert_eq!(field(f, "name"), None);
        assert_eq!(field(f, "missing"), None);
    }

    #[test]
    fn a_line_inside_a_call_names_the_call_not_every_attribute() {
        use tracing_subscriber::layer::SubscriberExt;
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .event_format(TextFormat)
                .with_writer(move || out.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "grpc.server",
                otel.name = "services.MidiaConteudoService/GetMedia",
                otel.kind = "server",
                rpc.system = "grpc",
                trace_id = tracing::field::Empty,
            );
            span.record("trace_id", tracing::field::display("4bf92f35"));
            let _g = span.enter();
            tracing::info!(rows = 3, "read");
        });
        let line = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(
            line.ends_with(
                "INFO services.MidiaConteudoService/GetMedia trace_id=4bf92f35: read rows=3\n"
            ),
            "{line}"
        );
        assert!(!line.contains("rpc.system"), "{line}");
    }
}
