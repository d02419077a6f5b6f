//! Page sizes and opaque page tokens shared by every list RPC: page_size defaults to 20, is
//! capped at 100, and a negative one is INVALID_ARGUMENT. A token carries the last key seen
//! (keyset paging), so items stored between two pages neither repeat nor go missing.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

pub const DEFAULT_PAGE_SIZE: i64 = 20;
pub const MAX_PAGE_SIZE: i64 = 100;

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub size: i64,
    /// The key of the last item of the previous page.
    pub after: Option<i64>,
}

impl Page {
    pub fn parse(page_size: i32, page_token: &str) -> Result<Self, tonic::Status> {
        let size = match page_size {
            n if n < 0 => {
                return Err(tonic::Status::invalid_argument(
                    "page_size: must not be negative",
                ))
            }
            0 => DEFAULT_PAGE_SIZE,
            n => i64::from(n).min(MAX_PAGE_SIZE),
        };
        let after = if page_token.is_empty() {
            None
        } else if page_token.len() > aula_api::limits::PAGE_TOKEN_CHARS {
            return Err(tonic::Status::invalid_argument(format!(
                "page_token: must be at most {} characters (got {})",
                aula_api::limits::PAGE_TOKEN_CHARS,
                page_token.chars().count()
            )));
        } else {
            Some(decode(page_token).ok_or_else(|| {
                tonic::Status::invalid_argument("page_token: not a token this service issued")
            })?)
        };
        Ok(Self { size, after })
    }

    /// The SQL LIMIT: one more than the page, to know whether another page follows.
    pub fn limit(&self) -> i64 {
        self.size + 1
    }

    /// Runs a keyset page `query` whose last two parameters are left to bind here: the key to
    /// start after (`first` on the first page: below every key for an ascending order, above
    /// every key for a descending one) and [`Self::limit`]. Each row is read by `read`, and the
    /// page [`Self::finish`]ed by `key`.
    pub async fn fetch<'q, T>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        pool: &sqlx::AnyPool,
        first: i64,
        read: impl Fn(&sqlx::any::AnyRow) -> sqlx::Result<T>,
        key: impl Fn(&T) -> i64,
    ) -> sqlx::Result<(Vec<T>, String)> {
        let rows = query
            .bind(self.after.unwrap_or(first))
            .bind(self.limit())
            .fetch_all(pool)
            .await?;
        let items = rows.iter().map(read).collect::<sqlx::Result<Vec<_>>>()?;
        Ok(self.finish(items, key))
    }

    /// Trims a fetched `limit()` rows to the page and returns the next token ("" at the end).
    pub fn finish<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> i64) -> (Vec<T>, String) {
        if rows.len() as i64 > self.size {
            rows.truncate(self.size as usize);
            let token = rows.last().map(|r| encode(key(r))).unwrap_or_default();
            (rows, token)
        } else {
            (rows, String::new())
        }
    }
}

fn encode(key: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("k1:{key}"))
}

fn decode(token: &str) -> Option<i64> {
    let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
    std::str::from_utf8(&raw)
        .ok()?
        .strip_prefix("k1:")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_tokens() {
        assert_eq!(Page::parse(0, "").unwrap().size, 20);
        assert_eq!(Page::parse(500, "").unwrap().size, 100);
        let err = Page::parse(-1, "").unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().starts_with("page_size"));
        assert!(Page::parse(5, "garbage!")
            .unwrap_err()
            .message()
            .starts_with("page_token"));
        let huge = Page::parse(5, &"A".repeat(1 << 20)).unwrap_err();
        assert!(huge
            .message()
            .starts_with("page_token: must be at most 64 characters"));
        assert!(huge.message().len() < 100);
        let page = Page::parse(2, "").unwrap();
        let (rows, token) = page.finish(vec![1, 2, 3], |r| *r);
        assert_eq!(rows, vec![1, 2]);
        assert_eq!(Page::parse(2, &token).unwrap().after, Some(2));
        assert_eq!(page.finish(vec![1, 2], |r| *r).1, "");
    }
}
