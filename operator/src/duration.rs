//! Durations as people write them in manifests: `90s`, `15m`, `12h`, `7d`, `1h30m`.

use jiff::SignedDuration;

/// The pattern the CRD schema enforces, so `kubectl apply` rejects a malformed duration.
pub const PATTERN: &str = r"^([0-9]+(s|m|h|d))+$";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration such as 90s, 15m, 12h, 7d or 1h30m")]
pub struct BadDuration(pub String);

pub fn parse(text: &str) -> Result<SignedDuration, BadDuration> {
    let bad = || BadDuration(text.to_owned());
    let mut total: i64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let value: i64 = number.parse().map_err(|_| bad())?;
        total = value
            .checked_mul(unit)
            .and_then(|seconds| total.checked_add(seconds))
            .ok_or_else(bad)?;
        number.clear();
    }
    if !number.is_empty() || text.is_empty() {
        return Err(bad());
    }
    Ok(SignedDuration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(parse("90s").unwrap(), SignedDuration::from_secs(90));
        assert_eq!(parse("1h30m").unwrap(), SignedDuration::from_mins(90));
        assert_eq!(parse("7d").unwrap(), SignedDuration::from_hours(168));
        for bad in ["", "10", "h", "5w", "1.5h", "-1h", "99999999999999999999d"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
