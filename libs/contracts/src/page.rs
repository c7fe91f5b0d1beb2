//! Keyset pagination shared by every list.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// Default and largest page sizes (API.md: default 50, max 500).
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

/// One page of a list; `next_cursor` is opaque and `None` on the last page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Makes a page from `rows` fetched with one more than `limit`: the extra row only
    /// says that a next page exists, whose cursor is the key of the last row kept.
    pub fn from_overfetched<Row>(
        mut rows: Vec<Row>,
        limit: u32,
        cursor: impl Fn(&Row) -> String,
        out: impl Fn(Row) -> T,
    ) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more { rows.last().map(&cursor) } else { None };
        Page {
            items: rows.into_iter().map(out).collect(),
            next_cursor,
        }
    }
}

/// Where a list starts and how much of it to return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct PageRequest {
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default = "default_limit")]
    pub limit: u32,
}

fn default_limit() -> u32 {
    DEFAULT_LIMIT
}

impl Default for PageRequest {
    /// The first page, of the default size.
    fn default() -> Self {
        Self {
            cursor: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

impl PageRequest {
    /// The limit clamped to 1..=MAX_LIMIT.
    pub fn effective_limit(&self) -> u32 {
        self.limit.clamp(1, MAX_LIMIT)
    }

    /// For lists sorted by one key: the key the page starts after (empty for the first
    /// page).
    pub fn single_key_after(&self) -> Result<String, InvalidCursor> {
        match &self.cursor {
            Some(cursor) => Ok(decode_cursor(cursor, 1)?.remove(0)),
            None => Ok(String::new()),
        }
    }
}

/// Encodes the sort key of the last item of a page as an opaque cursor.
pub fn encode_cursor(key: &[&str]) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

/// Decodes a cursor made by [`encode_cursor`] with `parts` key parts.
pub fn decode_cursor(cursor: &str, parts: usize) -> Result<Vec<String>, InvalidCursor> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| InvalidCursor)?;
    let key: Vec<String> = serde_json::from_slice(&bytes).map_err(|_| InvalidCursor)?;
    if key.len() == parts {
        Ok(key)
    } else {
        Err(InvalidCursor)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cursor is not one this list returned")]
pub struct InvalidCursor;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_key_page_starts_after_its_cursors_key_or_at_the_start() {
        let first = PageRequest::default();
        let next = PageRequest {
            cursor: Some(encode_cursor(&["user-7"])),
            ..PageRequest::default()
        };
        let two_keys = PageRequest {
            cursor: Some(encode_cursor(&["a", "b"])),
            ..PageRequest::default()
        };
        assert_eq!(first.single_key_after(), Ok(String::new()));
        assert_eq!(next.single_key_after(), Ok("user-7".to_owned()));
        assert_eq!(two_keys.single_key_after(), Err(InvalidCursor));
    }

    #[test]
    fn a_full_page_points_to_the_next_one_and_the_last_does_not() {
        let full = Page::from_overfetched(vec![1, 2, 3], 2, |n| n.to_string(), |n| n);
        assert_eq!(full.items, vec![1, 2]);
        assert_eq!(full.next_cursor.as_deref(), Some("2"));
        let last = Page::from_overfetched(vec![1, 2], 2, |n| n.to_string(), |n| n);
        assert_eq!(last.next_cursor, None);
    }

    #[test]
    fn a_cursor_round_trips_its_key() {
        let cursor = encode_cursor(&["2026-11-25T10:00:00Z", "0191"]);
        assert_eq!(
            decode_cursor(&cursor, 2).unwrap(),
            vec!["2026-11-25T10:00:00Z", "0191"]
        );
    }

    #[test]
    fn a_forged_or_mismatched_cursor_is_refused() {
        assert_eq!(decode_cursor("not base64!", 1), Err(InvalidCursor));
        assert_eq!(decode_cursor(&encode_cursor(&["a"]), 2), Err(InvalidCursor));
    }

    #[test]
    fn the_default_page_has_the_default_size() {
        assert_eq!(PageRequest::default().effective_limit(), DEFAULT_LIMIT);
    }

    #[test]
    fn limits_are_clamped_to_the_documented_range() {
        assert_eq!(
            PageRequest {
                cursor: None,
                limit: 0
            }
            .effective_limit(),
            1
        );
        assert_eq!(
            PageRequest {
                cursor: None,
                limit: 9999
            }
            .effective_limit(),
            MAX_LIMIT
        );
    }
}
