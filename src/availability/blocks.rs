//! Time blocks as the dashboard draws them: input validation, the stored rule, the bare JSON
//! views, and the weekly schedule shown as read-only recurring `availability` blocks.

use chrono::NaiveDate;
use chrono_tz::Tz;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;
use serde::Deserialize;
use validator::Validate;

use super::model::{Block, BlockType, Repeat};
use super::recurrence::{self, BlockRule, MAX_REPEATING_SPAN_DAYS, MAX_SPAN_DAYS};
use crate::error::{ApiError, ApiResult};
use crate::time;
use serde_json::json;

/// Prefix of the ids of blocks derived from the weekly schedule.
pub const SCHEDULE_ID_PREFIX: &str = "schedule-";

/// `POST /blocks` and `PUT /blocks/:id` body, as the dashboard sends it. Fields it sends that
/// mean nothing here (`id`, `therapistId`, `timezone`, `version`...) are ignored; empty strings
/// count as absent. `date` is the older one-day form (`startDate` = `endDate` = `date`).
#[derive(Debug, Clone, Default, Deserialize, Validate, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlockInput {
    #[serde(rename = "type")]
    #[schema(schema_with = super::docs::block_type)]
    pub block_type: Option<String>,
    #[validate(length(max = 200))]
    #[schema(max_length = 200)]
    pub title: Option<String>,
    #[schema(schema_with = super::docs::block_date)]
    pub date: Option<String>,
    #[schema(schema_with = super::docs::block_date)]
    pub start_date: Option<String>,
    #[schema(schema_with = super::docs::block_date)]
    pub end_date: Option<String>,
    #[schema(schema_with = super::docs::block_start)]
    pub start_time: Option<String>,
    #[schema(schema_with = super::docs::block_end)]
    pub end_time: Option<String>,
    #[schema(schema_with = super::docs::block_repeat)]
    pub repeat: Option<String>,
    pub selected_weekdays: Option<Vec<String>>,
    #[schema(schema_with = super::docs::block_monthly_by)]
    pub monthly_by: Option<String>,
    pub duration: Option<String>,
    pub duration_end_date: Option<String>,
    #[validate(length(max = 32))]
    #[schema(max_length = 32)]
    pub color: Option<String>,
    #[validate(length(max = 200))]
    #[schema(max_length = 200)]
    pub location: Option<String>,
    #[validate(length(max = 2000))]
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

fn present(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// Minutes of the day as `HH:mm`.
pub fn hm(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

impl BlockInput {
    /// This input over a stored block: what the input leaves out keeps its stored value.
    pub fn over(self, block: &Block, rule: &BlockRule) -> BlockInput {
        let mut dates = (self.start_date.clone(), self.end_date.clone());
        if let Some(d) = present(self.date.clone()) {
            dates = (Some(d.clone()), Some(d));
        } else if present(dates.0.clone()).is_some() && present(dates.1.clone()).is_none() {
            dates.1 = dates.0.clone();
        }
        BlockInput {
            block_type: self
                .block_type
                .or_else(|| Some(json!(rule.block_type).as_str().unwrap_or_default().to_owned())),
            title: self.title.or_else(|| block.title.clone()),
            date: None,
            start_date: dates.0.or_else(|| Some(rule.start_date.to_string())),
            end_date: dates.1.or_else(|| Some(rule.end_date.to_string())),
            start_time: self.start_time.or_else(|| Some(hm(rule.start_min))),
            end_time: self.end_time.or_else(|| Some(hm(rule.end_min))),
            repeat: self
                .repeat
                .or_else(|| Some(json!(rule.repeat).as_str().unwrap_or_default().to_owned())),
            selected_weekdays: self
                .selected_weekdays
                .or_else(|| Some(block.selected_weekdays.clone())),
            monthly_by: self.monthly_by.or_else(|| block.monthly_by.clone()),
            duration: self.duration.or_else(|| block.duration.clone()),
            duration_end_date: self.duration_end_date.or_else(|| block.duration_end_date.clone()),
            color: self.color.or_else(|| block.color.clone()),
            location: self.location.or_else(|| block.location.clone()),
            notes: self.notes.or_else(|| block.notes.clone()),
            reason: self.reason.or_else(|| block.reason.clone()),
        }
    }

    /// Validates this input and writes it into `block` (rule, bounds and descriptive fields).
    pub fn apply(self, block: &mut Block, zone: Tz) -> ApiResult<()> {
        let block_type = match present(self.block_type).as_deref() {
            None => BlockType::Unavailable,
            Some("availability") => BlockType::Availability,
            Some("unavailable") => BlockType::Unavailable,
            Some(_) => return Err(ApiError::field("type", "must be availability or unavailable")),
        };
        let date = |field: &'static str, v: Option<String>| -> ApiResult<Option<NaiveDate>> {
            present(v)
                .map(|s| time::parse_date(&s).map_err(|e| ApiError::field(field, e.to_string())))
                .transpose()
        };
        let (start_date, end_date) = match date("date", self.date)? {
            Some(d) => (d, d),
            None => {
                let start = date("startDate", self.start_date)?.ok_or_else(|| {
                    ApiError::field("date", "is required: date, or startDate (and endDate)")
                })?;
                (start, date("endDate", self.end_date)?.unwrap_or(start))
            }
        };
        if end_date < start_date {
            return Err(ApiError::field("endDate", "must not be before startDate"));
        }
        let start_min = grid_minutes(
            "startTime",
            present(self.start_time).as_deref().unwrap_or("00:00"),
        )?;
        let end_min = grid_minutes("endTime", present(self.end_time).as_deref().unwrap_or("24:00"))?;
        if start_min >= 1440 {
            return Err(ApiError::field(
                "startTime",
                "must be a time as HH:mm (00:00 to 23:55)",
            ));
        }
        if end_min <= start_min {
            return Err(ApiError::field("endTime", "must be after startTime"));
        }
        let (repeat, custom_weekdays, by_weekday) = match present(self.repeat).as_deref() {
            None | Some("none") | Some("never") => (Repeat::None, false, false),
            Some("daily") => (Repeat::Daily, false, false),
            Some("weekly") => (Repeat::Weekly, false, false),
            Some("weekly_custom") => (Repeat::Weekly, true, false),
            Some("monthly") => (Repeat::Monthly, false, false),
            Some("monthly_weekday") => (Repeat::Monthly, false, true),
            Some(_) => {
                return Err(ApiError::field(
                    "repeat",
                    "must be none, daily, weekly, monthly (or weekly_custom, monthly_weekday)",
                ))
            }
        };
        let span = (end_date - start_date).num_days();
        let max_span = if repeat == Repeat::None {
            MAX_SPAN_DAYS
        } else {
            MAX_REPEATING_SPAN_DAYS
        };
        if span > max_span {
            return Err(ApiError::field(
                "endDate",
                format!("a block lasts at most {} days", max_span + 1),
            ));
        }
        let mut weekdays = Vec::new();
        if repeat == Repeat::Weekly {
            for (i, name) in self.selected_weekdays.unwrap_or_default().iter().enumerate() {
                let day = recurrence::weekday_of(name.trim()).ok_or_else(|| {
                    ApiError::field(format!("selectedWeekdays[{i}]"), "is not a day of the week")
                })?;
                if !weekdays.contains(&day) {
                    weekdays.push(day);
                }
            }
            if custom_weekdays && weekdays.is_empty() {
                return Err(ApiError::field(
                    "selectedWeekdays",
                    "names at least one day of the week",
                ));
            }
            weekdays.sort_by_key(|d| d.num_days_from_monday());
        }
        let monthly_weekday = match present(self.monthly_by).as_deref() {
            None | Some("dayOfMonth") => by_weekday,
            Some("weekday") => true,
            Some(_) => return Err(ApiError::field("monthlyBy", "must be dayOfMonth or weekday")),
        } && repeat == Repeat::Monthly;
        let (duration, duration_end, until) = if repeat == Repeat::None {
            (None, None, None)
        } else {
            let duration = present(self.duration);
            let end = date("durationEndDate", self.duration_end_date)?;
            let until = recurrence::until_of(start_date, duration.as_deref(), end)
                .map_err(|(f, m)| ApiError::field(f, m))?;
            (duration, end, until)
        };
        let rule = BlockRule {
            block_type,
            start_date,
            end_date,
            start_min,
            end_min,
            repeat,
            weekdays,
            monthly_by_weekday: monthly_weekday,
            until,
        };
        let last = rule.last_date().unwrap_or_else(far_future);
        block.starts_at = DateTime::from_chrono(time::day_bounds(zone, start_date).0);
        block.ends_at = DateTime::from_chrono(time::day_bounds(zone, last).1);
        block.block_type = Some(block_type);
        block.title = present(self.title)
            .or_else(|| present(self.reason.clone()))
            .or_else(|| {
                Some(match block_type {
                    BlockType::Availability => "Disponible".to_owned(),
                    BlockType::Unavailable => "No disponible".to_owned(),
                })
            });
        block.start_date = Some(start_date.to_string());
        block.end_date = Some(end_date.to_string());
        block.start_time = Some(hm(start_min));
        block.end_time = Some(hm(end_min));
        block.repeat = Some(repeat);
        block.selected_weekdays = rule
            .weekdays
            .iter()
            .map(|d| recurrence::weekday_name(*d).to_owned())
            .collect();
        block.monthly_by = monthly_weekday.then(|| "weekday".to_owned());
        block.duration = duration;
        block.duration_end_date = duration_end.map(|d| d.to_string());
        block.until = until.map(|d| d.to_string());
        block.color = present(self.color);
        block.location = present(self.location);
        block.notes = present(self.notes);
        block.reason = present(self.reason);
        Ok(())
    }
}

/// Minutes of an `HH:mm` on the 5-minute grid bookings use (`24:00` allowed).
fn grid_minutes(field: &'static str, v: &str) -> ApiResult<u32> {
    let m = time::minutes_of_day(v).map_err(|e| ApiError::field(field, e.to_string()))?;
    if m % 5 != 0 {
        return Err(ApiError::field(
            field,
            "must be on the 5-minute grid (10:05 yes, 10:07 no)",
        ));
    }
    Ok(m)
}

/// The bound of blocks that repeat indefinitely.
fn far_future() -> NaiveDate {
    NaiveDate::from_ymd_opt(2200, 12, 31).unwrap_or(NaiveDate::MAX)
}

/// A new block of `therapist` from validated input.
pub fn new_block(therapist: ObjectId, input: BlockInput, zone: Tz) -> ApiResult<Block> {
    let mut block = empty(therapist, "block");
    input.apply(&mut block, zone)?;
    Ok(block)
}

/// A new document of `kind` (`block` or `absence`) with nothing set yet.
pub fn empty(therapist: ObjectId, kind: &str) -> Block {
    let now = DateTime::now();
    Block {
        id: ObjectId::new(),
        therapist_id: therapist,
        kind: kind.into(),
        absence_type: None,
        starts_at: now,
        ends_at: now,
        reason: None,
        block_type: None,
        title: None,
        start_date: None,
        end_date: None,
        start_time: None,
        end_time: None,
        repeat: None,
        selected_weekdays: Vec::new(),
        monthly_by: None,
        duration: None,
        duration_end_date: None,
        until: None,
        color: None,
        location: None,
        notes: None,
        created_at: now,
        updated_at: now,
    }
}

/// The 400 for an edit of a block derived from the weekly schedule.
pub fn read_only(id: &str) -> Option<ApiError> {
    id.starts_with(SCHEDULE_ID_PREFIX).then(|| ApiError::BadRequest {
        code: "SCHEDULE_BLOCK_READ_ONLY",
        message: "This block is the weekly schedule: change it with PUT /api/availability/schedule".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn madrid() -> Tz {
        "Europe/Madrid".parse().unwrap()
    }

    fn field_of(input: BlockInput) -> String {
        match new_block(ObjectId::new(), input, madrid()) {
            Err(ApiError::Validation(e)) => e[0].field.clone(),
            other => panic!("{other:?}"),
        }
    }

    fn input(start: &str, st: &str, et: &str) -> BlockInput {
        BlockInput {
            block_type: Some("availability".into()),
            start_date: Some(start.into()),
            start_time: Some(st.into()),
            end_time: Some(et.into()),
            ..Default::default()
        }
    }

    #[test]
    fn input_is_validated_with_the_field_named() {
        let ok = new_block(ObjectId::new(), input("2030-05-06", "10:00", "12:00"), madrid()).unwrap();
        assert_eq!(ok.end_date.as_deref(), Some("2030-05-06"));
        assert_eq!(ok.title.as_deref(), Some("Disponible"));
        assert_eq!(field_of(input("2030-5-6", "10:00", "12:00")), "startDate");
        assert_eq!(field_of(input("2030-05-06", "10:07", "12:00")), "startTime");
        assert_eq!(field_of(input("2030-05-06", "10:00", "09:00")), "endTime");
        assert_eq!(field_of(input("2030-05-06", "24:00", "24:00")), "startTime");
        let mut bad = input("2030-05-06", "10:00", "12:00");
        bad.end_date = Some("2030-05-05".into());
        assert_eq!(field_of(bad), "endDate");
        let mut bad = input("2030-05-06", "10:00", "12:00");
        bad.block_type = Some("busy".into());
        assert_eq!(field_of(bad), "type");
        let mut bad = input("2030-05-06", "10:00", "12:00");
        bad.repeat = Some("yearly".into());
        assert_eq!(field_of(bad), "repeat");
        let mut bad = input("2030-05-06", "10:00", "12:00");
        bad.repeat = Some("weekly".into());
        bad.selected_weekdays = Some(vec!["monday".into(), "funday".into()]);
        assert_eq!(field_of(bad), "selectedWeekdays[1]");
        let mut bad = input("2030-05-06", "10:00", "12:00");
        bad.repeat = Some("weekly".into());
        bad.duration = Some("until_date".into());
        assert_eq!(field_of(bad), "durationEndDate");
    }

    #[test]
    fn the_dashboards_form_reads_back_as_a_rule() {
        let mut form = input("2030-05-06", "10:00", "12:00");
        form.repeat = Some("weekly_custom".into());
        form.selected_weekdays = Some(vec!["wednesday".into(), "monday".into()]);
        form.duration = Some("1_month".into());
        form.duration_end_date = Some(String::new());
        form.notes = Some(String::new());
        let b = new_block(ObjectId::new(), form, madrid()).unwrap();
        assert_eq!(b.until.as_deref(), Some("2030-06-06"));
        assert_eq!(b.notes, None);
        let rule = BlockRule::of(&b, madrid()).unwrap();
        assert_eq!(rule.repeat, Repeat::Weekly);
        assert_eq!(rule.weekdays, [chrono::Weekday::Mon, chrono::Weekday::Wed]);
        // A partial update keeps what it leaves out.
        let change = BlockInput {
            end_time: Some("13:00".into()),
            ..Default::default()
        };
        let mut updated = b.clone();
        change.over(&b, &rule).apply(&mut updated, madrid()).unwrap();
        let after = BlockRule::of(&updated, madrid()).unwrap();
        assert_eq!((after.start_min, after.end_min), (600, 780));
        assert_eq!(after.weekdays, rule.weekdays);
        assert_eq!(after.until, rule.until);
    }
}
