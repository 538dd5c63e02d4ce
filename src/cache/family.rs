//! Cache key families (SPEC section 5) and what each domain event makes stale.
//!
//! A cached response belongs to one family and one owner (a user or a therapist). Its key folds
//! in the owner's generation of that family, so bumping the generation makes every cached page
//! of it unreachable at once, on every instance, without listing keys:
//! `{prefix}cache:{owner}:{family}:g{generation}:{query}`. The owner is a Redis Cluster hash
//! tag (`{...}`): one owner's generations and entries live in one slot, so an event's
//! invalidation is one script call wherever the keys are.

use std::time::Duration;

use mongodb::bson::oid::ObjectId;

use crate::events::Event;

/// What a cached response is a part of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// `GET /api/auth/me` of a user.
    User,
    /// A therapist's booking lists and single bookings.
    Bookings,
    /// A therapist's client pages.
    Clients,
    /// A therapist's dashboard.
    Dashboard,
    /// A therapist's public free slots and schedule.
    Availability,
    /// A user's notifications.
    Notifications,
    /// A therapist's reviews.
    Reviews,
    /// A therapist's own and public profile.
    Profile,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 8] = [
        Family::User,
        Family::Bookings,
        Family::Clients,
        Family::Dashboard,
        Family::Availability,
        Family::Notifications,
        Family::Reviews,
        Family::Profile,
    ];

    /// Its position in `ALL`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Its name in keys, metrics and configuration (`[cache.<name>]`).
    pub fn name(self) -> &'static str {
        match self {
            Family::User => "user",
            Family::Bookings => "bookings",
            Family::Clients => "clients",
            Family::Dashboard => "dashboard",
            Family::Availability => "availability",
            Family::Notifications => "notifications",
            Family::Reviews => "reviews",
            Family::Profile => "profile",
        }
    }

    /// The capacity plan's TTL (SPEC section 5).
    pub fn default_ttl(self) -> Duration {
        let minutes = match self {
            Family::User => 5,
            Family::Bookings => 2,
            Family::Clients => 5,
            Family::Dashboard => 3,
            Family::Availability => 10,
            Family::Notifications => 1,
            Family::Reviews => 10,
            Family::Profile => 10,
        };
        Duration::from_secs(minutes * 60)
    }
}

/// The Redis key holding `owner`'s generation of `family`.
pub fn generation_key(prefix: &str, family: Family, owner: ObjectId) -> String {
    format!("{prefix}cache-gen:{{{owner}}}:{}", family.name())
}

/// The key of one cached response.
pub fn entry_key(prefix: &str, family: Family, owner: ObjectId, generation: u64, query: &str) -> String {
    format!(
        "{prefix}cache:{{{owner}}}:{}:g{generation}:{query}",
        family.name()
    )
}

/// The key of a request's query as the handler understood it: `what` and the JSON of the
/// parsed query. Aliases land on one field and parameters the handler ignores are not in it,
/// so they neither split the cache nor let anyone create entries at will; two queries with
/// one key are answered alike because the parsed query is all the fill reads.
pub fn query_key<T: serde::Serialize>(what: &str, query: &T) -> String {
    match serde_json::to_string(query) {
        Ok(json) => format!("{what}:{json}"),
        // Never one key for two queries: a query that cannot be written is never shared.
        Err(_) => format!("{what}:unkeyed:{}", uuid::Uuid::new_v4().simple()),
    }
}

/// The (family, owner) pairs an event makes stale: what it changed and what embeds it (a
/// client's name is in booking lists, a payment changes a booking's `paymentStatus` and the
/// dashboard, a review changes the public profile's rating...). Notifications written by the
/// event's subscriber are the therapist's.
pub fn stale_after(event: &Event) -> Vec<(Family, ObjectId)> {
    use Family::*;
    let (owner, families): (ObjectId, &[Family]) = match event {
        Event::Booking(e) => (
            e.therapist,
            &[Bookings, Clients, Dashboard, Availability, Notifications],
        ),
        Event::Payment(e) => (e.therapist, &[Bookings, Dashboard, Notifications]),
        Event::Review(e) => (
            e.therapist,
            &[Reviews, Clients, Dashboard, Profile, Notifications],
        ),
        // Client names are embedded in booking and review lists.
        Event::Client(e) => (
            e.therapist,
            &[Clients, Bookings, Reviews, Dashboard, Notifications],
        ),
        // The zone is part of the schedule: it decides what a date filter of a list matches
        // (bookings and reviews).
        Event::Availability(e) => (e.therapist, &[Availability, Dashboard, Bookings, Reviews]),
        Event::Profile(e) => (e.therapist, &[Profile, User, Availability]),
        Event::NotificationsRead(e) => (e.user, &[Notifications]),
    };
    families.iter().map(|f| (*f, owner)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{BookingChange, BookingChanged, ProfileChanged};

    #[test]
    fn keys_fold_in_the_generation_and_the_parsed_query() {
        #[derive(serde::Deserialize, serde::Serialize)]
        struct Q {
            #[serde(alias = "page_size")]
            limit: Option<u32>,
            status: Option<String>,
        }
        let parse = |raw: &str| serde_urlencoded::from_str::<Q>(raw).unwrap();
        let q = query_key("list", &parse("status=upcoming&limit=20&_t=123"));
        assert_eq!(q, r#"list:{"limit":20,"status":"upcoming"}"#);
        assert_eq!(q, query_key("list", &parse("page_size=20&status=upcoming&x=1")));
        assert_ne!(q, query_key("list", &parse("status=upcoming")));
        let owner = ObjectId::new();
        let k1 = entry_key("t:", Family::Bookings, owner, 1, &q);
        let k2 = entry_key("t:", Family::Bookings, owner, 2, &q);
        assert_ne!(k1, k2, "a new generation is a new key");
        assert!(k1.starts_with(&format!("t:cache:{{{owner}}}:bookings:g1:")));
        assert_eq!(
            generation_key("t:", Family::User, owner),
            format!("t:cache-gen:{{{owner}}}:user")
        );
    }

    #[test]
    fn every_family_has_the_plans_ttl_and_a_distinct_name() {
        let mut names: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Family::ALL.len());
        for (i, f) in Family::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
        }
        assert_eq!(Family::User.default_ttl(), Duration::from_secs(300));
        assert_eq!(Family::Notifications.default_ttl(), Duration::from_secs(60));
    }

    #[test]
    fn events_make_stale_what_embeds_their_change() {
        let therapist = ObjectId::new();
        let booked = Event::Booking(BookingChanged {
            therapist,
            client: ObjectId::new(),
            bookings: vec![ObjectId::new()],
            kind: BookingChange::Cancelled,
            by_client: true,
            client_name: None,
            date: "2031-01-01".into(),
            time: "10:00".into(),
            version: 2,
        });
        let stale = stale_after(&booked);
        for f in [
            Family::Bookings,
            Family::Dashboard,
            Family::Availability,
            Family::Clients,
        ] {
            assert!(stale.contains(&(f, therapist)), "{f:?}");
        }
        let profile = stale_after(&Event::Profile(ProfileChanged { therapist }));
        assert!(
            profile.contains(&(Family::User, therapist)),
            "/auth/me embeds the profile"
        );
    }
}
