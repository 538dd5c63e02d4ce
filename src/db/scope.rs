//! `OwnerScope`: every query of a therapist's documents goes through it.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Document};

/// Restricts queries to one therapist's documents (field `therapistId`).
#[derive(Debug, Clone, Copy)]
pub struct OwnerScope {
    pub therapist_id: ObjectId,
}

impl OwnerScope {
    /// The scope of `therapist`'s documents.
    pub fn of(therapist: ObjectId) -> Self {
        Self {
            therapist_id: therapist,
        }
    }

    /// `filter` with the owner condition added (overriding any `therapistId` it had).
    pub fn filter(&self, mut filter: Document) -> Document {
        filter.insert("therapistId", self.therapist_id);
        filter
    }

    /// The filter of one document by id, within the scope.
    pub fn by_id(&self, id: ObjectId) -> Document {
        doc! { "_id": id, "therapistId": self.therapist_id }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_always_pins_the_owner() {
        let me = ObjectId::new();
        let scope = OwnerScope::of(me);
        let f = scope.filter(doc! { "therapistId": ObjectId::new(), "status": "upcoming" });
        assert_eq!(f.get_object_id("therapistId").ok(), Some(me));
        let id = ObjectId::new();
        assert_eq!(scope.by_id(id), doc! { "_id": id, "therapistId": me });
    }
}
