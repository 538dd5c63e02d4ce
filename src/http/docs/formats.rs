//! The formats of ids, days, times and instants, as the parsers read them (`time::parse_date`:
//! years 1900 to 2200; `time::parse_time`; the 5-minute claim grid of bookings; the date
//! filters of `http::query::DateBound` and of availability ranges), so that a value the document
//! calls valid is accepted and one it calls invalid is refused.

use utoipa::openapi::schema::SchemaFormat;
use utoipa::openapi::KnownFormat;

use super::{string, text_schema};

/// What `ObjectId::parse_str` accepts: 24 hexadecimal digits.
pub const OBJECT_ID_PATTERN: &str = "^[0-9a-fA-F]{24}$";

/// `HH:mm`, 00:00 to 23:59.
pub const TIME_PATTERN: &str = "^([01][0-9]|2[0-3]):[0-5][0-9]$";

/// A booking's start: `HH:mm` on the 5-minute grid, 00:00 to 23:55.
pub const GRID_START_PATTERN: &str = "^([01][0-9]|2[0-3]):[0-5][05]$";

/// A booking's end: `HH:mm` on the 5-minute grid, 00:05 to 24:00.
pub const GRID_END_PATTERN: &str = "^(([01][0-9]|2[0-3]):[0-5][05]|24:00)$";

/// The pieces the patterns below are made of: a day of years 1900 to 2200 that exists
/// (30-day months, February 29 of leap years only), a time of day with optional fractions, an
/// offset.
macro_rules! day {
    () => {
        concat!(
            "((19[0-9]{2}|2[01][0-9]{2}|2200)-((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])",
            "|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)",
            "|(19(0[48]|[2468][048]|[13579][26])|20(0[048]|[2468][048]|[13579][26])",
            "|21(0[48]|[2468][048]|[13579][26]))-02-29)"
        )
    };
}
macro_rules! clock {
    () => {
        "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?"
    };
}
macro_rules! offset {
    () => {
        "([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
    };
}

/// `YYYY-MM-DD`: a day that exists, of years 1900 to 2200 (`time::parse_date`).
pub const DATE_PATTERN: &str = concat!("^", day!(), "$");

/// [`DATE_PATTERN`] unanchored, to build other patterns with.
pub const DAY: &str = day!();

/// A pattern matching `word` in any case (`[Tt][Rr][Uu][Ee]`).
pub fn any_case(word: &str) -> String {
    word.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A value that surrounding spaces aside matches `inner` (unanchored), or is blank (absent).
pub fn blank_or(inner: &str) -> String {
    format!(r"^\s*({inner})?\s*$")
}

/// What `DateBound::parse` reads (list filters): a day, an RFC 3339 instant with `T` (a `+`
/// sent unencoded arrives as a space, and is read as `+`), or nothing (no filter).
pub const DATE_FILTER_PATTERN: &str = concat!(
    "^(",
    day!(),
    "|",
    day!(),
    "[Tt]",
    clock!(),
    "([Zz]|[+ -]([01][0-9]|2[0-3]):[0-5][0-9])",
    ")?$"
);

/// What the availability ranges read: a day, an RFC 3339 instant, or a local date-time
/// (`2026-03-01T09:00:00`), each taken as its day in the therapist's zone.
pub const RANGE_DATE_PATTERN: &str = concat!(
    "^(",
    day!(),
    "|",
    day!(),
    "[Tt ]",
    clock!(),
    offset!(),
    "|",
    day!(),
    "T",
    clock!(),
    ")$"
);

text_schema!(
    /// A stored document's id, as every answer carries it (`id` and `_id`).
    ObjectIdText = "ObjectId",
    string()
        .pattern(Some(OBJECT_ID_PATTERN))
        .description(Some("24 hexadecimal digits"))
);

text_schema!(
    /// A day of the therapist's calendar, `YYYY-MM-DD` (years 1900 to 2200).
    DateText = "Date",
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
        .pattern(Some(DATE_PATTERN))
);

text_schema!(
    /// A local wall-clock time, `HH:mm`.
    TimeText = "Time",
    string().pattern(Some(TIME_PATTERN))
);

text_schema!(
    /// A booking's start time: `HH:mm` on the 5-minute grid.
    GridStart = "GridStart",
    string()
        .pattern(Some(GRID_START_PATTERN))
        .description(Some("`HH:mm` on the 5-minute grid (`10:05` yes, `10:07` no)"))
);

text_schema!(
    /// A booking's end time: `HH:mm` on the 5-minute grid, or `24:00`.
    GridEnd = "GridEnd",
    string()
        .pattern(Some(GRID_END_PATTERN))
        .description(Some("`HH:mm` on the 5-minute grid, or `24:00` (midnight); after the start, at most 12 hours later"))
);

text_schema!(
    /// An instant, RFC 3339 (UTC).
    InstantText = "Instant",
    string().format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
);

text_schema!(
    /// A date filter of a list: a day of the therapist's calendar (`YYYY-MM-DD`) or an RFC 3339
    /// instant (`toISOString()`), read in the therapist's zone; empty: no filter.
    DateOrInstant = "DateOrInstant",
    string().pattern(Some(DATE_FILTER_PATTERN)).description(Some(
        "`YYYY-MM-DD` (a day of the therapist's calendar) or an RFC 3339 instant (read in the therapist's zone); empty: no filter"
    ))
);

text_schema!(
    /// A bound of an availability range: a day, an RFC 3339 instant or a local date-time.
    RangeDate = "RangeDate",
    string().pattern(Some(RANGE_DATE_PATTERN)).description(Some(
        "`YYYY-MM-DD`, an RFC 3339 instant or a local `YYYY-MM-DDTHH:mm:ss`, taken as its day in the therapist's zone"
    ))
);

text_schema!(
    /// A therapist's id, or `current` for the caller.
    TherapistRef = "TherapistRef",
    string().pattern(Some("^([0-9a-fA-F]{24}|current)$"))
);

text_schema!(
    /// A therapist filter of the therapist's own lists: `current`, the caller's id (another
    /// therapist's is a 404) or empty.
    OwnTherapist = "OwnTherapist",
    string().pattern(Some("^([0-9a-fA-F]{24}|current)?$")).description(Some(
        "`current` or the caller's own id (another therapist's id: 404); empty: the caller"
    ))
);

text_schema!(
    /// An optional id filter: 24 hexadecimal digits, or empty for no filter.
    IdFilter = "IdFilter",
    string()
        .pattern(Some("^([0-9a-fA-F]{24})?$"))
        .description(Some("24 hexadecimal digits; empty: no filter"))
);

text_schema!(
    /// `?page=`: 1 to 1,000,000.
    PageNumber = "PageNumber",
    super::integer().minimum(Some(1)).maximum(Some(1_000_000))
);

text_schema!(
    /// `?limit=`: 1 to 1,000,000; more than 100 reads as 100.
    PageLimit = "PageLimit",
    super::integer()
        .minimum(Some(1))
        .maximum(Some(1_000_000))
        .description(Some("Items per page; more than 100 reads as 100"))
);

text_schema!(
    /// `?cursor=`: the `nextCursor` of the previous page (opaque); anything else is a 400.
    Cursor = "Cursor",
    string()
        .pattern(Some("^[A-Za-z0-9_-]*$"))
        .description(Some("The `nextCursor` of the previous page, as it was given (anything else: 400); empty: the first page"))
);

text_schema!(
    /// A count a list clamps (any non-negative 64-bit integer).
    AnyCount = "AnyCount",
    super::integer().minimum(Some(0)).maximum(Some(usize::MAX))
);

text_schema!(
    /// A session length of the free slots: 5 to 720 minutes, a multiple of 5 (default 60).
    SessionMinutes = "SessionMinutes",
    super::integer()
        .minimum(Some(5))
        .maximum(Some(720))
        .multiple_of(Some(5))
);

text_schema!(
    /// A search text: at most 100 characters (surrounding spaces aside); empty: no search.
    SearchText = "SearchText",
    string()
        .max_length(Some(100))
        .description(Some("Literal text, at most 100 characters; empty: no search"))
);

/// An amount written as text, as `money::Cents::parse_major` reads it: digits (at most nine
/// before the point), at most 1,000,000, at most two decimals once trailing zeros go, spaces
/// around; above zero when `positive`.
pub fn amount_text_pattern(positive: bool) -> String {
    let frac = r"(\.[0-9]{0,2}0*)?";
    let mut whole: Vec<String> = (1..=6)
        .map(|k| format!("0{{0,{}}}[1-9][0-9]{{{}}}{frac}", 9 - k, k - 1))
        .collect();
    whole.push(r"0{0,2}1000000(\.0*)?".to_owned());
    // Zero before the point: the fraction decides.
    whole.push(if positive {
        r"0{1,9}\.(0[1-9]|[1-9][0-9]?)0*".to_owned()
    } else {
        format!("0{{1,9}}{frac}")
    });
    format!(r"^\s*({})\s*$", whole.join("|"))
}

/// An amount in major units: a number with at most two decimals, or its text.
fn amount(positive: bool) -> utoipa::openapi::schema::OneOfBuilder {
    amount_or(positive, amount_text_pattern(positive))
}

/// A price of the profile's forms: an amount (0 to 1,000,000), or blank (no price).
pub fn price() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    let text = amount_text_pattern(false);
    let blank_or_text = format!(r"^\s*$|{text}");
    let mut schema = amount_or(false, blank_or_text);
    schema = schema
        .item(utoipa::openapi::schema::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::Null));
    schema
        .description(Some(
            "Major units (a number, or its text); blank or null: no price",
        ))
        .into()
}

/// A number with at most two decimals or a text matching `text`.
fn amount_or(positive: bool, text: String) -> utoipa::openapi::schema::OneOfBuilder {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    let number = ObjectBuilder::new()
        .schema_type(Type::Number)
        .maximum(Some(1_000_000))
        .multiple_of(Some(0.01));
    let number = if positive {
        number.exclusive_minimum(Some(0))
    } else {
        number.minimum(Some(0))
    };
    OneOfBuilder::new()
        .item(number)
        .item(string().pattern(Some(text)))
}

text_schema!(
    /// An amount in major units (`80`, `80.5`): 0 to 1,000,000 with at most two decimals, as a
    /// number or as its decimal text.
    Amount = "Amount",
    amount(false).description(Some("Major units, 0 to 1000000, at most two decimals (a number, or its text)"))
);

text_schema!(
    /// A payment's or refund's amount: above 0, at most 1,000,000, at most two decimals.
    PositiveAmount = "PositiveAmount",
    amount(true).description(Some("Major units, above 0 up to 1000000, at most two decimals (a number, or its text)"))
);

/// Characters `char::is_control` refuses in stored text, tab and line feed aside.
macro_rules! controls {
    () => {
        r"\u0000-\u0008\u000B-\u001F\u007F-\u009F"
    };
}

/// Text without control characters (tab and line feed aside).
pub const PRINTABLE_PATTERN: &str = concat!("^[^", controls!(), "]*$");

text_schema!(
    /// A title: up to 200 characters, not blank, without control characters.
    Title = "Title",
    string()
        .max_length(Some(200))
        .pattern(Some(concat!("^[^", controls!(), r"]*[^\s", controls!(), "][^", controls!(), "]*$")))
);

text_schema!(
    /// A description: up to 2000 characters without control characters.
    Printable2000 = "Printable2000",
    string().max_length(Some(2000)).pattern(Some(PRINTABLE_PATTERN))
);

text_schema!(
    /// A document's tag: up to 40 characters without control characters.
    ShortTag = "ShortTag",
    string().max_length(Some(40)).pattern(Some(PRINTABLE_PATTERN))
);

/// Every IANA time zone name `time::parse_zone` knows.
pub fn time_zone() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    let names: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect();
    string()
        .enum_values(Some(names))
        .description(Some("An IANA time zone (`Europe/Madrid`)"))
        .into()
}

text_schema!(
    /// A public link: `https://` (also `http://` in development), at most 500 characters.
    WebLink = "WebLink",
    string()
        .format(Some(SchemaFormat::Custom("uri".into())))
        .pattern(Some("^[Hh][Tt][Tt][Pp][Ss]://"))
        .max_length(Some(500))
);

text_schema!(
    /// A public link of at most 1000 characters: `https://` (also `http://` in development).
    LongWebLink = "LongWebLink",
    string()
        .format(Some(SchemaFormat::Custom("uri".into())))
        .pattern(Some("^[Hh][Tt][Tt][Pp][Ss]://"))
        .max_length(Some(1000))
);

text_schema!(
    /// An optional email address (trimmed, lower-cased); blank: none.
    OptionalEmail = "OptionalEmail",
    utoipa::openapi::schema::OneOfBuilder::new()
        .item(
            string()
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
                .max_length(Some(254)),
        )
        .item(string().pattern(Some(r"^\s*$")))
);
