//! An incremental parser of Server-Sent Events, enough for `streamGenerateContent?alt=sse`: it is fed
//! the body as it arrives and hands out the `data` of each complete event.

/// Longest line accepted; a Gemini event is a few KiB, this bounds memory if the upstream misbehaves.
const MAX_LINE: usize = 4 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    data: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct LineTooLong;

impl SseParser {
    /// Feeds bytes; returns the data of every event completed by them, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, LineTooLong> {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(nl) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + nl;
            let line = &self.buf[start..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let line = String::from_utf8_lossy(line).into_owned();
            start = end + 1;
            self.line(&line, &mut events);
        }
        self.buf.drain(..start);
        if self.buf.len() > MAX_LINE {
            return Err(LineTooLong);
        }
        Ok(events)
    }

    /// The body ended: an event not followed by a blank line still counts.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buf);
        let mut events = Vec::new();
        if !rest.is_empty() {
            let line = String::from_utf8_lossy(&rest).into_owned();
            self.line(line.trim_end_matches('\r'), &mut events);
        }
        events.extend(self.data.take());
        events.pop()
    }

    fn line(&mut self, line: &str, events: &mut Vec<String>) {
        if line.is_empty() {
            events.extend(self.data.take());
        } else if let Some(value) = line.strip_prefix("data:") {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            }
        }
        // Comments (`:`), `event:`, `id:` and `retry:` lines carry nothing the chatbot needs.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_anywhere() {
        let body = "data: {\"a\":1}\r\n\r\n: comment\ndata: {\"b\":\ndata: 2}\n\ndata: last";
        for split in 0..body.len() {
            let mut p = SseParser::default();
            let mut events = p.push(&body.as_bytes()[..split]).unwrap();
            events.extend(p.push(&body.as_bytes()[split..]).unwrap());
            events.extend(p.finish());
            assert_eq!(
                events,
                ["{\"a\":1}", "{\"b\":\n2}", "last"],
                "split at {split}"
            );
        }
    }
}
