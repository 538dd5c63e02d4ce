//! Every MongoDB access of `notifications`, on a typed collection.

use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;

use super::model::Notification;
use crate::db::{Cursor, Db, Page};
use crate::error::ApiError;

const NOTIFICATIONS: &str = "notifications";

/// Notifications of every user.
pub struct NotificationStore {
    coll: Collection<Notification>,
}

/// One page of a user's notifications.
pub struct NotificationPage {
    pub items: Vec<Notification>,
    pub total: u64,
    pub unread: u64,
    pub next: Option<String>,
}

impl NotificationStore {
    pub fn new(db: &Db) -> Self {
        Self {
            coll: db.collection(NOTIFICATIONS),
        }
    }

    /// Stores a new notification.
    pub async fn insert(&self, n: &Notification) -> mongodb::error::Result<()> {
        self.coll.insert_one(n).await.map(|_| ())
    }

    /// A page of `user`'s notifications (optionally only read or unread ones) by `createdAt`.
    pub async fn page(
        &self,
        user: ObjectId,
        read: Option<bool>,
        descending: bool,
        page: &Page,
    ) -> Result<NotificationPage, ApiError> {
        let mut filter = doc! { "userId": user };
        if let Some(r) = read {
            filter.insert("isRead", r);
        }
        let total = self.coll.count_documents(filter.clone()).await?;
        let query = match page.cursor.as_ref() {
            Some(c) => doc! { "$and": [filter, c.filter("createdAt", descending)?] },
            None => filter,
        };
        let dir = if descending { -1 } else { 1 };
        let items: Vec<Notification> = self
            .coll
            .find(query)
            .sort(doc! { "createdAt": dir, "_id": dir })
            .skip(page.skip())
            .limit(page.limit as i64 + 1)
            .await?
            .try_collect()
            .await?;
        let (items, next) = page.split(items, |n| {
            Cursor::after(&doc! { "_id": n.id, "createdAt": n.created_at }, "createdAt")
        });
        let unread = self.unread(user).await?;
        Ok(NotificationPage {
            items,
            total,
            unread,
            next,
        })
    }

    /// How many of `user`'s notifications are unread.
    pub async fn unread(&self, user: ObjectId) -> mongodb::error::Result<u64> {
        self.coll
            .count_documents(doc! { "userId": user, "isRead": false })
            .await
    }

    /// How many notifications `user` has.
    pub async fn total(&self, user: ObjectId) -> mongodb::error::Result<u64> {
        self.coll.count_documents(doc! { "userId": user }).await
    }

    /// Marks one of `user`'s notifications read; `None` when it is not theirs.
    pub async fn mark_read(
        &self,
        user: ObjectId,
        id: ObjectId,
    ) -> mongodb::error::Result<Option<Notification>> {
        self.coll
            .find_one_and_update(doc! { "_id": id, "userId": user }, read_now())
            .return_document(ReturnDocument::After)
            .await
    }

    /// Marks every unread notification of `user` read; how many changed.
    pub async fn mark_all_read(&self, user: ObjectId) -> mongodb::error::Result<u64> {
        let r = self
            .coll
            .update_many(doc! { "userId": user, "isRead": false }, read_now())
            .await?;
        Ok(r.modified_count)
    }
}

fn read_now() -> Document {
    doc! { "$set": { "isRead": true, "status": "read", "readAt": DateTime::now() } }
}
