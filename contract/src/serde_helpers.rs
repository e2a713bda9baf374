//! Serde helpers for fields whose absence and explicit `null` mean different things.

/// `Option<Option<T>>`: absent → `None`, `null` → `Some(None)`, value → `Some(Some(v))`.
/// Use with `#[serde(default, with = "double_option", skip_serializing_if = "Option::is_none")]`.
pub mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        value: &Option<Option<T>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(inner) => inner.serialize(serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}

/// An optional field that may be absent but not `null`: `null` is an error naming the field.
/// Use with `#[serde(default, deserialize_with = "non_null::deserialize")]`.
pub mod non_null {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        T::deserialize(deserializer).map(Some)
    }
}

/// Timestamps in requests: RFC 3339 exactly (`2030-01-31T00:00:00Z`, `…+02:00`), not the wider
/// ISO 8601 and Temporal forms jiff also reads (`+25:00`, `+02`, `[Europe/Berlin]`).
/// Use with `deserialize_with = "rfc3339::deserialize"` (or `rfc3339::option::…`,
/// `rfc3339::double_option::…`).
pub mod rfc3339 {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, de};

    /// Parses an RFC 3339 date-time.
    pub fn parse(text: &str) -> Result<Timestamp, String> {
        if !has_rfc3339_shape(text.as_bytes()) {
            return Err(format!(
                "`{text}` is not an RFC 3339 date-time such as 2030-01-31T00:00:00Z"
            ));
        }
        text.parse::<Timestamp>().map_err(|err| err.to_string())
    }

    /// `YYYY-MM-DD(T|t| )HH:MM:SS[.fraction](Z|z|±HH:MM)`, with an offset of at most ±23:59.
    fn has_rfc3339_shape(b: &[u8]) -> bool {
        let digits = |from: usize, to: usize| {
            b.get(from..to)
                .is_some_and(|part| part.iter().all(u8::is_ascii_digit))
        };
        let number = |at: usize| u32::from(b[at] - b'0') * 10 + u32::from(b[at + 1] - b'0');
        let date_time = b.len() > 19
            && digits(0, 4)
            && b[4] == b'-'
            && digits(5, 7)
            && b[7] == b'-'
            && digits(8, 10)
            && matches!(b[10], b'T' | b't' | b' ')
            && digits(11, 13)
            && b[13] == b':'
            && digits(14, 16)
            && b[16] == b':'
            && digits(17, 19);
        if !date_time {
            return false;
        }
        let mut at = 19;
        if b[at] == b'.' {
            let start = at + 1;
            at = start;
            while b.get(at).is_some_and(u8::is_ascii_digit) {
                at += 1;
            }
            if at == start {
                return false;
            }
        }
        match &b[at..] {
            [b'Z' | b'z'] => true,
            [b'+' | b'-', _, _, b':', _, _] => {
                digits(at + 1, at + 3)
                    && digits(at + 4, at + 6)
                    && number(at + 1) <= 23
                    && number(at + 4) <= 59
            }
            _ => false,
        }
    }

    struct Strict(Timestamp);

    impl<'de> Deserialize<'de> for Strict {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Strict, D::Error> {
            let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
            parse(&text).map(Strict).map_err(de::Error::custom)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        Strict::deserialize(deserializer).map(|strict| strict.0)
    }

    pub mod option {
        use super::Strict;
        use jiff::Timestamp;
        use serde::{Deserialize, Deserializer};

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Timestamp>, D::Error> {
            Option::<Strict>::deserialize(deserializer).map(|at| at.map(|strict| strict.0))
        }
    }

    /// For `Option<Option<Timestamp>>` fields whose `null` means something (see `double_option`).
    pub mod double_option {
        use super::Strict;
        use jiff::Timestamp;
        use serde::{Deserialize, Deserializer};

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Option<Timestamp>>, D::Error> {
            Option::<Strict>::deserialize(deserializer).map(|at| Some(at.map(|strict| strict.0)))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::parse;

        #[test]
        fn rfc3339_date_times_parse() {
            for text in [
                "2030-01-31T00:00:00Z",
                "2030-01-31t00:00:00z",
                "2030-01-31 00:00:00Z",
                "2030-01-31T00:00:00.123456789+23:59",
                "2030-01-31T00:00:00-05:30",
            ] {
                assert!(parse(text).is_ok(), "{text}");
            }
            assert_eq!(
                parse("2030-01-01T01:00:00+01:00").unwrap(),
                parse("2030-01-01T00:00:00Z").unwrap()
            );
        }

        #[test]
        fn other_forms_are_refused() {
            for text in [
                "2027-01-01T00:00:00+25:00",
                "2027-01-01T00:00:00+24:00",
                "2027-01-01T00:00:00+23:60",
                "2027-01-01T00:00:00+02",
                "2027-01-01T00:00:00+0200",
                "2027-01-01T00:00:00+02:00:30",
                "2027-01-01T00:00:00Z[Europe/Berlin]",
                "2027-01-01T00:00:00",
                "2027-01-01T00:00:00.Z",
                "2027-01-01",
                "2027-02-30T00:00:00Z",
                "",
            ] {
                assert!(parse(text).is_err(), "{text}");
            }
        }
    }
}
