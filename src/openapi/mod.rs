//! The OpenAPI 3.1 document, generated from the handlers' annotations (`#[utoipa::path]`, the
//! shared vocabulary in `http::docs`) and completed by `finish` with what every route of a
//! given shape answers; served at `/api/openapi.json`, and as a reference at `/api/docs` where
//! `http.api_docs` allows.

pub mod finish;

use utoipa::OpenApi;

use finish::Finish;

/// Every documented path and schema.
#[derive(OpenApi)]
#[openapi(
    info(title = "Dhara API", description = "Booking and practice backend for therapists",
        license(name = "Proprietary")),
    paths(
        crate::ops::health, crate::ops::ready, crate::ops::metrics, crate::ops::openapi,
        crate::auth::register, crate::auth::login, crate::auth::refresh, crate::auth::logout,
        crate::auth::me, crate::auth::change_password, crate::auth::forgot_password,
        crate::auth::reset_password, crate::auth::client_login, crate::auth::client_register,
        crate::clients::account::client_activate, crate::clients::account::verify_email,
        crate::dashboard::clients::list, crate::clients::create, crate::dashboard::clients::get_one, crate::dashboard::clients::update,
        crate::dashboard::clients::remove, crate::clients::stats, crate::clients::tags,
        crate::bookings::list, crate::bookings::create, crate::bookings::get_one, crate::bookings::update,
        crate::bookings::cancel, crate::bookings::reschedule, crate::bookings::complete, crate::bookings::no_show,
        crate::bookings::upcoming, crate::bookings::statistics, crate::bookings::check_availability,
        crate::bookings::client_list, crate::bookings::client_book, crate::bookings::client_cancel,
        crate::emails::booking_emails,
        crate::availability::get_schedule, crate::availability::put_schedule, crate::availability::create_block,
        crate::availability::update_block, crate::availability::delete_block, crate::availability::list_blocks,
        crate::availability::list_absences, crate::availability::create_absence, crate::availability::update_absence,
        crate::availability::delete_absence, crate::bookings::slots_range, crate::bookings::slots_for_date,
        crate::bookings::check_slot, crate::bookings::occupancy, crate::bookings::calendar_events,
        crate::payments::list, crate::payments::create, crate::payments::get_one, crate::payments::update_status,
        crate::payments::refund, crate::payments::stats::statistics, crate::payments::providers,
        crate::notifications::list, crate::notifications::counts, crate::notifications::mark_read,
        crate::notifications::mark_all_read,
        crate::reviews::list, crate::reviews::statistics, crate::reviews::create, crate::reviews::respond,
        crate::profile::get_profile, crate::profile::put_profile, crate::profile::user_profile,
        crate::reviews::public_profile, crate::dashboard::dashboard,
        crate::session_notes::list, crate::session_notes::create, crate::session_notes::get_one,
        crate::session_notes::update, crate::session_notes::remove, crate::logs::ingest,
        crate::work_locations::list, crate::work_locations::external_calendar_status,
        crate::documents::upload, crate::documents::list, crate::documents::statistics, crate::documents::usage,
        crate::documents::get_one, crate::documents::update, crate::documents::remove, crate::documents::download,
        crate::documents::share, crate::documents::unshare, crate::documents::client::client_list,
        crate::documents::client::client_get, crate::documents::client::client_download,
        crate::profile::media::upload_avatar, crate::profile::media::remove_avatar,
        crate::profile::media::upload_banner, crate::profile::media::remove_banner, crate::profile::media::serve,
    ),
    components(schemas(
        crate::http::docs::ErrorBody, crate::http::docs::ObjectIdText, crate::http::docs::DateText,
        crate::http::docs::TimeText, crate::http::docs::InstantText, crate::http::docs::DateOrInstant,
        crate::http::docs::TherapistRef, crate::clients::model::Tag, crate::clients::model::ReminderHour,
        // Formats of parameters (`IntoParams` refers to them without registering them).
        crate::http::docs::GridStart, crate::http::docs::GridEnd, crate::http::docs::RangeDate,
        crate::http::docs::OwnTherapist, crate::http::docs::IdFilter, crate::http::docs::PageNumber,
        crate::http::docs::PageLimit, crate::http::docs::Cursor, crate::http::docs::AnyCount,
        crate::http::docs::SessionMinutes, crate::http::docs::SearchText, crate::http::docs::Amount,
        crate::http::docs::PositiveAmount, crate::http::docs::Title, crate::http::docs::Printable2000,
        crate::http::docs::ShortTag, crate::http::docs::WebLink, crate::http::docs::LongWebLink,
        crate::http::docs::OptionalEmail, crate::profile::docs::ItemId, crate::profile::docs::YearText,
        crate::profile::docs::MonthOrDate, crate::profile::docs::EmailOrEmpty, crate::profile::docs::ShortTexts, crate::profile::docs::Specialties, crate::profile::docs::Languages, crate::session_notes::model::NoteTag, crate::session_notes::model::NewNote,
        crate::work_locations::LocationOwner, crate::documents::docs::TagList, crate::documents::docs::FamilyList,
        // Enums of query parameters (`IntoParams` refers to them without registering them).
        crate::bookings::query::BookingSort, crate::clients::query::ClientSort, crate::payments::stats::Group,
        crate::payments::stats::Period, crate::session_notes::model::NoteSort, crate::notifications::model::NotificationSort,
        crate::payments::model::PaymentSort, crate::notifications::model::ReadState, crate::reviews::model::ReviewStatus,
        crate::db::SortOrder, crate::work_locations::StatusFilter,
        crate::documents::model::DocSort, crate::documents::model::GroupBy, crate::documents::model::Category,
        crate::documents::model::Visibility,
    )),
    modifiers(&Finish),
    tags(
        (name = "operations", description = "Probes, metrics and this document"),
        (name = "auth", description = "Accounts, sign-in and sessions"),
        (name = "clients", description = "A therapist's client records"),
        (name = "bookings", description = "Calendar, booking rules and the booking site"),
        (name = "availability", description = "Working hours, blocks, absences and free slots"),
        (name = "payments", description = "Payments, refunds and revenue"),
        (name = "notifications", description = "What happened in the practice"),
        (name = "reviews", description = "Clients' reviews and the therapist's answers"),
        (name = "profile", description = "The therapist's practice profile"),
        (name = "dashboard", description = "The day and month at a glance"),
        (name = "session-notes", description = "A therapist's private clinical notes"),
        (name = "documents", description = "Files in GridFS: upload, share, download in ranges"),
    )
)]
pub struct ApiDoc;

/// The document as served at `/api/openapi.json`: built and serialized once, the first time it
/// is asked for, on a blocking thread (it takes a moment). Not at start-up: building it takes
/// about 30 MB for a moment (utoipa collects nested schemas over and over), which would set
/// every instance's peak memory; an instance that serves it pays that once. The tests build it
/// (`tests/api/openapi.rs`), so a document that cannot be built fails CI; here a failed build
/// answers a 500 and the next request tries again.
pub async fn document_bytes() -> anyhow::Result<axum::body::Bytes> {
    static DOCUMENT: tokio::sync::OnceCell<axum::body::Bytes> = tokio::sync::OnceCell::const_new();
    DOCUMENT
        .get_or_try_init(|| async {
            let built = tokio::task::spawn_blocking(|| serde_json::to_vec(&ApiDoc::openapi())).await?;
            Ok(built?.into())
        })
        .await
        .cloned()
}

/// The document as pretty JSON (`dhara openapi`).
pub fn document_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
}

/// The human-readable reference (Swagger UI, its assets served from the binary) of the
/// document at `/api/openapi.json`, at `/api/docs`.
pub fn reference<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    let config = utoipa_swagger_ui::Config::new(["/api/openapi.json"])
        // Swagger UI would otherwise send the document to an outside validator for its badge.
        .validator_url("none")
        .try_it_out_enabled(true);
    utoipa_swagger_ui::SwaggerUi::new("/api/docs")
        .config(config)
        .into()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde::de::DeserializeOwned;
    use utoipa::openapi::path::ParameterIn;
    use utoipa::IntoParams;

    use super::*;
    use crate::http::extract::ApiQuery;

    /// The names `ApiQuery<Q>` documents and the names serde reads for `Q`, which must agree.
    fn names_of<Q: IntoParams + DeserializeOwned>() -> (BTreeSet<String>, BTreeSet<String>) {
        let documented = ApiQuery::<Q>::into_params(|| Some(ParameterIn::Query))
            .into_iter()
            .map(|p| p.name)
            .collect();
        let read = crate::http::names::fields::<Q>()
            .expect("a derived query struct")
            .iter()
            .map(|n| n.to_string())
            .collect();
        (documented, read)
    }

    macro_rules! same_names {
        ($($query:ty),+ $(,)?) => {$(
            let (documented, read) = names_of::<$query>();
            assert_eq!(documented, read, "{}", stringify!($query));
        )+};
    }

    #[test]
    fn every_query_documents_exactly_the_names_serde_reads() {
        same_names!(
            crate::bookings::query::BookingListQuery,
            crate::bookings::query::ClientBookingQuery,
            crate::bookings::query::LimitQuery,
            crate::bookings::query::RangeQuery,
            crate::bookings::query::CheckQuery,
            crate::bookings::query::DurationQuery,
            crate::availability::model::DateRange,
            crate::availability::model::SlotRange,
            crate::clients::query::ClientListQuery,
            crate::payments::model::PaymentQuery,
            crate::payments::stats::PeriodQuery,
            crate::reviews::model::ReviewQuery,
            crate::notifications::model::NotificationQuery,
            crate::session_notes::model::NoteListQuery,
            crate::documents::model::DocListQuery,
            crate::documents::model::ClientDocQuery,
            crate::documents::model::StatsQuery,
            crate::work_locations::LocationsQuery,
        );
    }

    #[test]
    fn aliases_name_a_parameter_of_their_operation_and_refs_resolve() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let params = op["parameters"].as_array().cloned().unwrap_or_default();
                let names: BTreeSet<&str> = params.iter().filter_map(|p| p["name"].as_str()).collect();
                for p in &params {
                    for ext in [crate::http::docs::ALIAS_OF, crate::http::docs::NOT_BEFORE] {
                        if let Some(target) = p.get(ext).and_then(|t| t.as_str()) {
                            assert!(names.contains(target), "{method} {path}: {ext} {target}");
                        }
                    }
                }
            }
        }
        let text = doc.to_string();
        for piece in text.split("\"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap();
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "unregistered schema {name}"
            );
        }
    }
}
