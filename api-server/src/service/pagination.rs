//! Opaque list cursors: base64url of the last id on the page.

use crate::service::Error;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tooken_contract::page::{DEFAULT_LIMIT, MAX_LIMIT};

pub struct Cursor(String);

impl Cursor {
    pub fn decode(raw: &str) -> Result<Cursor, Error> {
        let invalid = || Error::validation("cursor", "cursor is not one this API returned");
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let id = String::from_utf8(bytes).map_err(|_| invalid())?;
        uuid::Uuid::parse_str(&id).map_err(|_| invalid())?;
        Ok(Cursor(id))
    }

    pub fn encode(id: &str) -> String {
        URL_SAFE_NO_PAD.encode(id)
    }

    pub fn id(&self) -> &str {
        &self.0
    }

    /// `rows` were fetched with `limit + 1`; trims the extra row and returns the next cursor.
    pub fn next_page<T>(rows: &mut Vec<T>, limit: u32, id: impl Fn(&T) -> &str) -> Option<String> {
        if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|row| Cursor::encode(id(row)))
        } else {
            None
        }
    }
}

/// The limit and cursor of a list request, checked.
pub fn page(limit: Option<u32>, cursor: Option<&str>) -> Result<(u32, Option<Cursor>), Error> {
    Ok((page_limit(limit)?, cursor.map(Cursor::decode).transpose()?))
}

pub fn page_limit(limit: Option<u32>) -> Result<u32, Error> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        Some(_) => Err(Error::validation(
            "limit",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = uuid::Uuid::now_v7().to_string();
        let cursor = Cursor::decode(&Cursor::encode(&id)).unwrap();
        assert_eq!(cursor.id(), id);
        assert!(Cursor::decode("not a cursor").is_err());
        assert!(Cursor::decode(&Cursor::encode("x' OR 1=1")).is_err());
    }

    #[test]
    fn next_page_trims_the_probe_row() {
        let mut rows = vec!["c".to_owned(), "b".to_owned(), "a".to_owned()];
        let next = Cursor::next_page(&mut rows, 2, |s| s);
        assert_eq!(rows, ["c", "b"]);
        assert_eq!(next, Some(Cursor::encode("b")));
        let mut rows = vec!["a".to_owned()];
        assert_eq!(Cursor::next_page(&mut rows, 2, |s| s), None);
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(page_limit(None).unwrap(), DEFAULT_LIMIT);
        assert!(page_limit(Some(0)).is_err());
        assert!(page_limit(Some(MAX_LIMIT + 1)).is_err());
    }
}
