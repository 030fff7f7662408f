//! Primary keys: UUID v7, time-ordered so that ordering by id is ordering by creation.

use crate::Error;
use uuid::Uuid;

/// A new primary key. Monotonic within this process, so ties never reorder.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// Parses an opaque id received from a client.
///
/// # Errors
/// `BAD_USER_INPUT` on `field` when the text is not an id we could have issued.
pub fn parse_id(text: &str, field: &str) -> Result<Uuid, Error> {
    Uuid::try_parse(text).map_err(|_| Error::bad_input(field, "not a valid id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_in_creation_order() {
        let ids: Vec<Uuid> = (0..1000).map(|_| new_id()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert_eq!(ids[0].get_version_num(), 7);
    }

    #[test]
    fn malformed_ids_are_bad_input() {
        let err = parse_id("42", "id").unwrap_err();
        assert!(matches!(err, Error::BadInput { ref field, .. } if field == "id"));
        let id = new_id();
        assert_eq!(parse_id(&id.to_string(), "id").unwrap(), id);
    }
}
