//! Stored files (documents, avatars, banners) in MongoDB GridFS: what a file is (`sniff`),
//! receiving one from a form (`upload`), the bucket and its range reads (`store`), and the
//! download headers (`range`). Resources keep their own records of the files they own.

pub mod docs;
pub mod range;
pub mod serve;
pub mod sniff;
pub mod store;
pub mod upload;

pub use store::FileStore;
