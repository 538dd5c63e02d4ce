//! The OpenAPI 3 document, generated from the handlers' annotations.

use utoipa::OpenApi;

/// Every documented path and schema.
#[derive(OpenApi)]
#[openapi(
    info(title = "Dhara API", description = "Booking and practice backend for therapists"),
    paths(
        crate::ops::health, crate::ops::ready, crate::ops::metrics, crate::ops::openapi,
        crate::auth::register, crate::auth::login, crate::auth::refresh, crate::auth::logout,
        crate::auth::me, crate::auth::change_password, crate::auth::forgot_password,
        crate::auth::reset_password, crate::auth::client_login, crate::auth::client_register,
        crate::clients::account::client_activate, crate::clients::account::verify_email,
        crate::dashboard::clients::list, crate::clients::create, crate::dashboard::clients::get_one, crate::clients::update,
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
        crate::payments::refund, crate::payments::stats::statistics,
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
        crate::ops::Health, crate::ops::Ready, crate::ops::ReadyChecks,
        crate::auth::model::Session, crate::auth::model::UserView, crate::auth::model::Role,
        crate::auth::model::UserType, crate::clients::account::ActivateRequest,
        crate::clients::model::CreateClient, crate::clients::model::UpdateClient, crate::clients::model::ClientView,
        crate::clients::model::EmergencyContact, crate::clients::model::Preferences, crate::clients::model::ClientStatus,
        crate::bookings::model::CreateBooking, crate::bookings::model::UpdateBooking, crate::bookings::model::CancelBooking,
        crate::bookings::model::RescheduleBooking, crate::bookings::model::ClientBook, crate::bookings::model::Recurrence,
        crate::bookings::model::Frequency, crate::bookings::model::BookingStatus, crate::money::Currency,
        crate::availability::model::Schedule, crate::availability::model::WorkingHours,
        crate::payments::model::CreatePayment, crate::payments::model::StatusUpdate, crate::payments::model::RefundRequest,
        crate::payments::model::Method, crate::payments::model::PaymentState,
        crate::reviews::CreateReview, crate::reviews::Respond,
        crate::profile::ProfileInput, crate::profile::Education, crate::profile::Rates, crate::profile::PricingPackage,
        crate::profile::WorkLocation, crate::profile::ExternalLink,
        crate::session_notes::model::NoteInput, crate::session_notes::model::NoteView,
        crate::documents::model::UpdateDocument, crate::documents::model::ShareRequest,
        crate::documents::model::DocumentView, crate::documents::model::Category,
        crate::documents::model::Visibility, crate::documents::model::DocStatus,
    )),
    modifiers(&BearerAuth),
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

/// Declares the Bearer scheme the API uses.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
