//! Relay cursor pagination over any sea-orm `Select`, keyed by a UUID v7 column.
//!
//! Lists are newest first. Because v7 ids grow with creation time and are
//! unique, ordering by the id alone is stable and needs no tie-breaker, and a
//! page is one indexed range scan (`id < cursor ORDER BY id DESC LIMIT n+1`)
//! however deep the client pages.

use crate::Error;
use async_graphql::OutputType;
use async_graphql::connection::{Connection, Edge};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect, Select,
};
use uuid::Uuid;

/// Page size when the client gives none.
pub const DEFAULT_PAGE_SIZE: i32 = 20;
/// The largest page a client may ask for.
pub const MAX_PAGE_SIZE: i32 = 100;

/// The validator's cost of an edge page: `first` (clamped to the page limit,
/// so a bad value reaches the resolver's `BAD_USER_INPUT` instead of
/// overflowing here) times its selection.
pub fn edge_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    clamped_size(first)
        .saturating_mul(child_complexity)
        .saturating_add(1)
}

/// The validator's cost of a root list page: the larger of `first` and
/// `last` (each clamped like [`edge_complexity`]'s) times its selection.
pub fn list_complexity(first: Option<i32>, last: Option<i32>, child_complexity: usize) -> usize {
    clamped_size(first)
        .max(clamped_size(last.or(Some(0))))
        .saturating_mul(child_complexity)
        .saturating_add(1)
}

fn clamped_size(size: Option<i32>) -> usize {
    usize::try_from(size.unwrap_or(DEFAULT_PAGE_SIZE).clamp(0, MAX_PAGE_SIZE)).unwrap_or(0)
}

/// The connection arguments as the client sent them.
#[derive(Debug, Default, Clone)]
pub struct PageArgs {
    /// Forward page size.
    pub first: Option<i32>,
    /// Forward cursor.
    pub after: Option<String>,
    /// Backward page size.
    pub last: Option<i32>,
    /// Backward cursor.
    pub before: Option<String>,
}

/// A validated request for one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    limit: u64,
    cursor: Option<Uuid>,
    backward: bool,
}

/// Parses a Relay connection field's four arguments into a [`Window`]: the one
/// call every connection resolver makes.
///
/// # Errors
/// As [`PageArgs::parse`].
pub fn window(
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> Result<Window, Error> {
    PageArgs {
        first,
        after,
        last,
        before,
    }
    .parse()
}

impl PageArgs {
    /// Parses the arguments.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` for sizes outside 0..=100, malformed cursors, or a mix of
    /// forward and backward arguments.
    pub fn parse(self) -> Result<Window, Error> {
        let backward = self.last.is_some() || self.before.is_some();
        if backward && (self.first.is_some() || self.after.is_some()) {
            return Err(Error::bad_input(
                "first",
                "use first/after or last/before, not both",
            ));
        }
        let (size, cursor, size_field, cursor_field) = if backward {
            (self.last, self.before, "last", "before")
        } else {
            (self.first, self.after, "first", "after")
        };
        let size = size.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(0..=MAX_PAGE_SIZE).contains(&size) {
            return Err(Error::bad_input(
                size_field,
                format!("must be between 0 and {MAX_PAGE_SIZE}"),
            ));
        }
        let cursor = cursor
            .map(|c| decode_cursor(&c, cursor_field))
            .transpose()?;
        Ok(Window {
            limit: size as u64,
            cursor,
            backward,
        })
    }
}

/// The opaque cursor for a row id.
pub fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn decode_cursor(text: &str, field: &str) -> Result<Uuid, Error> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| Uuid::from_slice(&bytes).ok())
        .ok_or_else(|| Error::bad_input(field, "not a valid cursor"))
}

/// One page of rows, newest first.
#[derive(Debug, Clone)]
pub struct Page<M> {
    /// The rows with their ids.
    pub items: Vec<(Uuid, M)>,
    /// More rows exist after the last one.
    pub has_next_page: bool,
    /// More rows exist before the first one.
    pub has_previous_page: bool,
}

/// Fetches one page of `select`, ordered by `key` descending.
///
/// # Errors
/// Internal, when the query fails.
pub async fn fetch<E, C>(
    db: &C,
    select: Select<E>,
    key: E::Column,
    id_of: fn(&E::Model) -> Uuid,
    window: Window,
) -> Result<Page<E::Model>, Error>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let select = match (window.cursor, window.backward) {
        (Some(c), false) => select.filter(key.lt(c)),
        (Some(c), true) => select.filter(key.gt(c)),
        (None, _) => select,
    };
    let order = if window.backward {
        Order::Asc
    } else {
        Order::Desc
    };
    let mut rows = select
        .order_by(key, order)
        .limit(window.limit + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > window.limit;
    rows.truncate(window.limit as usize);
    if window.backward {
        rows.reverse();
    }
    let items = rows.into_iter().map(|m| (id_of(&m), m)).collect();
    let (has_next_page, has_previous_page) = if window.backward {
        (window.cursor.is_some(), more)
    } else {
        (more, window.cursor.is_some())
    };
    Ok(Page {
        items,
        has_next_page,
        has_previous_page,
    })
}

impl<M> Page<M> {
    /// Turns the page into a Relay connection of `N` nodes.
    pub fn into_connection<N: OutputType>(self, node: impl Fn(M) -> N) -> Connection<String, N> {
        let mut conn = Connection::new(self.has_previous_page, self.has_next_page);
        conn.edges.extend(
            self.items
                .into_iter()
                .map(|(id, m)| Edge::new(encode_cursor(id), node(m))),
        );
        conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_costs_clamp_any_size_and_never_overflow() {
        let sizes = [
            None,
            Some(i32::MIN),
            Some(-1),
            Some(0),
            Some(7),
            Some(101),
            Some(i32::MAX),
        ];
        for first in sizes {
            for last in sizes {
                for child in [0, 1, 3, usize::MAX] {
                    let cost = list_complexity(first, last, child);
                    assert!(cost >= 1, "{first:?} {last:?} {child}");
                    let _ = edge_complexity(first, child);
                }
            }
        }
        assert_eq!(list_complexity(None, None, 3), 61, "twenty rows by default");
        assert_eq!(
            list_complexity(Some(-5), Some(-5), 3),
            1,
            "a negative size costs nothing"
        );
        assert_eq!(
            list_complexity(Some(5), Some(500), 3),
            301,
            "clamped to the page limit"
        );
        assert_eq!(edge_complexity(Some(10), 4), 41);
        assert_eq!(list_complexity(Some(1), None, usize::MAX), usize::MAX);
    }

    #[test]
    fn default_page_is_twenty_newest_first() {
        let w = PageArgs::default().parse().unwrap();
        assert_eq!(
            w,
            Window {
                limit: 20,
                cursor: None,
                backward: false
            }
        );
    }

    #[test]
    fn page_size_above_one_hundred_is_refused() {
        let err = PageArgs {
            first: Some(101),
            ..Default::default()
        }
        .parse()
        .unwrap_err();
        assert!(matches!(err, Error::BadInput { ref field, .. } if field == "first"));
        let err = PageArgs {
            last: Some(-1),
            ..Default::default()
        }
        .parse()
        .unwrap_err();
        assert!(matches!(err, Error::BadInput { ref field, .. } if field == "last"));
        assert!(
            PageArgs {
                first: Some(100),
                ..Default::default()
            }
            .parse()
            .is_ok()
        );
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_bad_input() {
        let id = Uuid::now_v7();
        let w = PageArgs {
            after: Some(encode_cursor(id)),
            ..Default::default()
        }
        .parse()
        .unwrap();
        assert_eq!(w.cursor, Some(id));
        let err = PageArgs {
            after: Some("not a cursor".into()),
            ..Default::default()
        }
        .parse()
        .unwrap_err();
        assert!(matches!(err, Error::BadInput { ref field, .. } if field == "after"));
    }

    #[test]
    fn forward_and_backward_arguments_do_not_mix() {
        let args = PageArgs {
            first: Some(1),
            last: Some(1),
            ..Default::default()
        };
        assert!(args.parse().is_err());
    }
}
