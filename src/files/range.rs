//! HTTP download headers: one byte range (RFC 9110 section 14), strong ETags and the
//! `Content-Disposition` file name of RFC 6266 (an ASCII fallback plus the UTF-8 `filename*`).

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAsk {
    /// No usable range: the whole file (also for forms we do not serve, such as several ranges
    /// or another unit, which RFC 9110 lets a server ignore).
    Whole,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// A well-formed range that lies past the end: 416.
    Unsatisfiable,
}

/// Reads a `Range` header value against a file of `size` bytes.
pub fn parse_range(header: Option<&str>, size: u64) -> RangeAsk {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // `bytes=-N`: the last N bytes.
        return match number(last) {
            Some(0) => RangeAsk::Unsatisfiable,
            Some(_) if size == 0 => RangeAsk::Unsatisfiable,
            Some(n) => RangeAsk::Part {
                start: size.saturating_sub(n),
                end: size - 1,
            },
            None => RangeAsk::Whole,
        };
    }
    let Some(start) = number(first) else {
        return RangeAsk::Whole;
    };
    let end = match (last.is_empty(), number(last)) {
        (true, _) => None,
        (false, Some(e)) => Some(e),
        (false, None) => return RangeAsk::Whole,
    };
    if start >= size {
        return RangeAsk::Unsatisfiable;
    }
    match end {
        // An invalid range (last before first) is ignored, as RFC 9110 allows.
        Some(e) if e < start => RangeAsk::Whole,
        Some(e) => RangeAsk::Part {
            start,
            end: e.min(size - 1),
        },
        None => RangeAsk::Part { start, end: size - 1 },
    }
}

/// The strong entity tag of content with this SHA-256 (hex).
pub fn etag(sha256_hex: &str) -> String {
    format!("\"{sha256_hex}\"")
}

/// Whether an `If-None-Match` header matches `etag` (`*`, or one of a list; weak tags compare
/// weakly, as RFC 9110 asks for this header).
pub fn none_match(header: Option<&str>, etag: &str) -> bool {
    let Some(h) = header else { return false };
    h.split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

/// `attachment; filename="..."; filename*=UTF-8''...` for `name` (RFC 6266 and 8187): the
/// quoted form keeps printable ASCII only (others become `_`, quotes and backslashes too), the
/// extended form carries the exact name percent-encoded.
pub fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        // RFC 8187 attr-char: ALPHA / DIGIT / "!#$&+-.^_`|~"
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ranges_are_served_and_others_ignored() {
        use RangeAsk::*;
        assert_eq!(parse_range(None, 100), Whole);
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Part { start: 0, end: 9 });
        assert_eq!(parse_range(Some("bytes=90-"), 100), Part { start: 90, end: 99 });
        assert_eq!(
            parse_range(Some("bytes=90-500"), 100),
            Part { start: 90, end: 99 }
        );
        assert_eq!(parse_range(Some("bytes=-10"), 100), Part { start: 90, end: 99 });
        assert_eq!(parse_range(Some("bytes=-500"), 100), Part { start: 0, end: 99 });
        assert_eq!(parse_range(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=5-2"), 100), Whole);
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Whole);
        assert_eq!(parse_range(Some("items=0-1"), 100), Whole);
        assert_eq!(parse_range(Some("bytes=a-b"), 100), Whole);
        assert_eq!(parse_range(Some("bytes=+1-2"), 100), Whole);
    }

    #[test]
    fn names_are_encoded_for_both_kinds_of_client() {
        assert_eq!(
            content_disposition("Consentimiento José \"v2\".pdf"),
            "attachment; filename=\"Consentimiento Jos_ _v2_.pdf\"; \
             filename*=UTF-8''Consentimiento%20Jos%C3%A9%20%22v2%22.pdf"
        );
        assert!(!content_disposition("a\r\nSet-Cookie: x").contains('\n'));
    }

    #[test]
    fn if_none_match_compares_tags() {
        let tag = etag("abc");
        assert!(none_match(Some("\"abc\""), &tag));
        assert!(none_match(Some("W/\"x\", \"abc\""), &tag));
        assert!(none_match(Some("*"), &tag));
        assert!(!none_match(Some("\"abd\""), &tag));
        assert!(!none_match(None, &tag));
    }
}
