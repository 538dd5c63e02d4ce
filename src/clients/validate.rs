//! The checks of a client record's input: trimmed and lower-cased text, phone numbers,
//! reminder hours and tags, each failing with the message the field's 400 shows.

use serde::{Deserialize, Deserializer};
use validator::ValidationError;

/// Trims an optional text; blank is absent.
pub(super) fn trimmed_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty()))
}

/// Trims and lower-cases an optional email; blank is absent.
pub(super) fn email_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(trimmed_opt(d)?.map(|s| s.to_lowercase()))
}

/// 7 to 15 digits, optionally led by `+`, with spaces, dots, dashes and parentheses.
pub fn valid_phone(phone: &str) -> Result<(), ValidationError> {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let allowed = phone
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_digit() || " .-()".contains(c) || (c == '+' && i == 0));
    if allowed && (7..=15).contains(&digits) {
        Ok(())
    } else {
        Err(ValidationError::new("phone")
            .with_message("must be a phone number (7 to 15 digits, optional +)".into()))
    }
}

pub(super) fn valid_reminder_hours(hours: &[u32]) -> Result<(), ValidationError> {
    if hours.iter().all(|h| (1..=168).contains(h)) {
        Ok(())
    } else {
        Err(ValidationError::new("range").with_message("each must be between 1 and 168 hours".into()))
    }
}

pub(super) fn valid_tags(tags: &[String]) -> Result<(), ValidationError> {
    if tags.len() <= 30
        && tags
            .iter()
            .all(|t| !t.trim().is_empty() && t.chars().count() <= 40)
    {
        Ok(())
    } else {
        Err(ValidationError::new("tags").with_message("at most 30 tags of 1 to 40 characters".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_need_7_to_15_digits_and_a_leading_plus_only() {
        assert!(valid_phone("+34 600 123 456").is_ok());
        assert!(valid_phone("(91) 555-12.34").is_ok());
        assert!(valid_phone("12345").is_err());
        assert!(valid_phone("600+123456").is_err());
        assert!(valid_phone("600 abc 456").is_err());
    }

    #[test]
    fn tags_and_reminders_are_bounded() {
        assert!(valid_tags(&["ansiedad".into()]).is_ok());
        assert!(valid_tags(&["  ".into()]).is_err());
        assert!(valid_tags(&vec!["t".to_owned(); 31]).is_err());
        assert!(valid_reminder_hours(&[1, 168]).is_ok());
        assert!(valid_reminder_hours(&[0]).is_err());
    }
}
