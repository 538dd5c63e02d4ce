//! MongoDB client: the plan's pool and timeouts, `w: majority`, and two read modes.
//!
//! `Db::primary` is for anything that decides something (auth, conflict checks, read-after-
//! write); `Db::analytics` reads with `secondaryPreferred` for dashboards and statistics.

pub mod decode;
pub mod indexes;
pub mod paging;
pub mod scope;

pub use crate::error::{error_code, is_duplicate_key, is_transient, is_unavailable, only_duplicate_keys};
pub use decode::{as_i64, count, facet_counts, facet_first};
pub use paging::{page_of, Cursor, Page, SortOrder, MAX_LIMIT};
pub use scope::OwnerScope;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mongodb::bson::{doc, Bson, Document};
use mongodb::error::Error;
use mongodb::event::cmap::CmapEvent;
use mongodb::event::command::CommandEvent;
use mongodb::event::EventHandler;
use mongodb::options::{
    ClientOptions, DatabaseOptions, ReadPreference, ReadPreferenceOptions, SelectionCriteria, WriteConcern,
};
use mongodb::{Client, Collection, Database};
use secrecy::ExposeSecret;

use crate::config::MongoConfig;
use crate::metrics::Metrics;

/// Handles on the service database.
#[derive(Clone)]
pub struct Db {
    client: Client,
    primary: Database,
    analytics: Database,
}

impl Db {
    /// Builds the client (no I/O beyond resolving a `mongodb+srv` URI).
    pub async fn connect(cfg: &MongoConfig, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        let mut options = ClientOptions::parse(cfg.uri.expose_secret())
            .await
            .map_err(|e| anyhow::anyhow!("mongodb.uri could not be parsed: {}", e.kind))?;
        options.app_name = Some("dhara".into());
        options.max_pool_size = Some(cfg.max_pool_size);
        options.min_pool_size = Some(cfg.min_pool_size);
        options.max_idle_time = Some(Duration::from_secs(cfg.max_idle_seconds));
        options.server_selection_timeout = Some(Duration::from_millis(cfg.server_selection_timeout_ms));
        options.connect_timeout = Some(Duration::from_millis(cfg.connect_timeout_ms));
        options.write_concern = Some(WriteConcern::majority());
        options.retry_writes = Some(true);
        options.command_event_handler = Some(command_metrics(metrics.clone()));
        options.cmap_event_handler = Some(pool_metrics(metrics));
        let client = Client::with_options(options)?;
        Ok(Self::from_client(client, &cfg.database))
    }

    fn from_client(client: Client, name: &str) -> Self {
        let primary = client.database_with_options(
            name,
            DatabaseOptions::builder()
                .selection_criteria(SelectionCriteria::ReadPreference(ReadPreference::Primary))
                .write_concern(WriteConcern::majority())
                .build(),
        );
        let analytics = client.database_with_options(
            name,
            DatabaseOptions::builder()
                .selection_criteria(SelectionCriteria::ReadPreference(
                    ReadPreference::SecondaryPreferred {
                        options: Some(ReadPreferenceOptions::default()),
                    },
                ))
                .build(),
        );
        Self {
            client,
            primary,
            analytics,
        }
    }

    /// This database with its analytics reads on the primary too: for responses that are
    /// cached, which must reflect every write that made the previous one stale (a lagging
    /// secondary would store an old body under the new generation).
    pub fn fresh(&self) -> Db {
        Self {
            client: self.client.clone(),
            primary: self.primary.clone(),
            analytics: self.primary.clone(),
        }
    }

    /// The database, reading from the primary.
    pub fn primary(&self) -> &Database {
        &self.primary
    }

    /// The database, reading from secondaries where a replica set has them.
    pub fn analytics(&self) -> &Database {
        &self.analytics
    }

    /// A typed collection on the primary.
    pub fn collection<T: Send + Sync>(&self, name: &str) -> Collection<T> {
        self.primary.collection(name)
    }

    /// The underlying client (sessions and transactions).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Round trip to the primary within `deadline`.
    pub async fn ping(&self, deadline: Duration) -> anyhow::Result<()> {
        match tokio::time::timeout(deadline, self.primary.run_command(doc! { "ping": 1 })).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(anyhow::anyhow!("{}", e.kind)),
            Err(_) => Err(anyhow::anyhow!("no answer within {} ms", deadline.as_millis())),
        }
    }
}

/// Counts every command by collection, operation and outcome.
fn command_metrics(metrics: Arc<Metrics>) -> EventHandler<CommandEvent> {
    let started: Arc<Mutex<HashMap<i32, (String, String)>>> = Arc::default();
    EventHandler::callback(move |event| {
        let (request_id, status) = match event {
            CommandEvent::Started(e) => {
                let collection = collection_of(&e.command);
                if let Ok(mut map) = started.lock() {
                    map.insert(e.request_id, (collection, e.command_name));
                }
                return;
            }
            // A write whose documents failed (duplicate key, validation) still replies `ok: 1`,
            // with `writeErrors`: that is a failed query too.
            CommandEvent::Succeeded(e)
                if e.reply.contains_key("writeErrors") || e.reply.contains_key("writeConcernError") =>
            {
                (e.request_id, "error")
            }
            CommandEvent::Succeeded(e) => (e.request_id, "success"),
            CommandEvent::Failed(e) => (e.request_id, "error"),
            _ => return,
        };
        let entry = started.lock().ok().and_then(|mut map| map.remove(&request_id));
        if let Some((collection, operation)) = entry {
            metrics
                .mongo_queries
                .with_label_values(&[&collection, &operation, status])
                .inc();
        }
    })
}

/// The collection a command targets: the first field's string value, or `collection` for getMore.
fn collection_of(command: &Document) -> String {
    if let Ok(c) = command.get_str("collection") {
        return c.to_owned();
    }
    match command.iter().next() {
        Some((_, Bson::String(name))) => name.clone(),
        _ => "none".to_owned(),
    }
}

/// Tracks open and checked-out pool connections.
fn pool_metrics(metrics: Arc<Metrics>) -> EventHandler<CmapEvent> {
    EventHandler::callback(move |event| match event {
        CmapEvent::ConnectionCheckedOut(_) => metrics.mongo_connections_active.inc(),
        CmapEvent::ConnectionCheckedIn(_) => metrics.mongo_connections_active.dec(),
        CmapEvent::ConnectionCreated(_) => metrics.mongo_connections_open.inc(),
        CmapEvent::ConnectionClosed(_) => metrics.mongo_connections_open.dec(),
        _ => {}
    })
}

/// Runs `body` in a multi-document transaction (majority read and write concern), retrying the
/// whole transaction on `TransientTransactionError` and the commit on
/// `UnknownTransactionCommitResult`, as MongoDB's drivers specify. Any other failure aborts and
/// is returned: nothing of the transaction remains.
pub async fn transaction<T, E, F>(db: &Db, mut body: F) -> Result<T, E>
where
    E: From<Error>,
    F: for<'s> FnMut(
        &'s mut mongodb::ClientSession,
    ) -> futures_util::future::BoxFuture<'s, Result<T, TxError<E>>>,
{
    use mongodb::options::{Acknowledgment, ReadConcern, TransactionOptions};
    let options = TransactionOptions::builder()
        .read_concern(ReadConcern::majority())
        .write_concern(WriteConcern::builder().w(Acknowledgment::Majority).build())
        .build();
    // Like the drivers' `withTransaction`: retry transient failures within a time budget, with
    // jittered exponential backoff so contenders spread out.
    let started = std::time::Instant::now();
    // Under the CRUD request timeout, so an exhausted retry answers 409, not a timeout.
    let budget = std::time::Duration::from_secs(5);
    let mut attempts: u32 = 0;
    let backoff = |attempt: u32| {
        let cap = (10u64 << attempt.min(5)).min(250);
        std::time::Duration::from_millis(1 + rand::random::<u64>() % cap)
    };
    loop {
        attempts += 1;
        let may_retry = started.elapsed() < budget;
        // A fresh session per attempt: nothing of a failed attempt can leak into the next.
        let mut session = db.client().start_session().await?;
        session.start_transaction().with_options(options.clone()).await?;
        let value = match body(&mut session).await {
            Ok(v) => v,
            Err(TxError::Db(e)) if is_transient(&e) && may_retry => {
                tracing::debug!(attempts, error = %e, "transaction body conflicted; retrying");
                let _ = session.abort_transaction().await;
                tokio::time::sleep(backoff(attempts)).await;
                continue;
            }
            Err(e) => {
                let _ = session.abort_transaction().await;
                return Err(e.into_inner());
            }
        };
        let mut commits = 0;
        loop {
            commits += 1;
            match session.commit_transaction().await {
                Ok(()) => return Ok(value),
                Err(e) if e.contains_label("UnknownTransactionCommitResult") && commits < 5 => continue,
                Err(e) if is_transient(&e) && started.elapsed() < budget => {
                    tracing::debug!(attempts, "transaction commit conflicted; retrying");
                    tokio::time::sleep(backoff(attempts)).await;
                    break;
                }
                Err(e) => return Err(E::from(e)),
            }
        }
    }
}

/// An error inside a transaction body: a database error (maybe retryable) or the caller's own.
pub enum TxError<E> {
    Db(Error),
    Other(E),
}

impl<E: From<Error>> TxError<E> {
    fn into_inner(self) -> E {
        match self {
            Self::Db(e) => E::from(e),
            Self::Other(e) => e,
        }
    }
}

impl<E> From<Error> for TxError<E> {
    fn from(e: Error) -> Self {
        Self::Db(e)
    }
}
