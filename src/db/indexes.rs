//! Index declarations (`indexes/<collection>.json`, embedded at build time) and their
//! idempotent synchronisation with the database.
//!
//! Missing indexes are created; identical ones are left alone; an index whose stored definition
//! differs from the declaration is reported (and replaced only when asked); indexes the database
//! has but nobody declared are reported and never dropped.

use std::fmt;

use mongodb::bson::{doc, Bson, Document};
use mongodb::Database;
use serde::Deserialize;
use serde_json::{Map, Value};

include!(concat!(env!("OUT_DIR"), "/indexes.rs"));

/// Indexes that earlier versions declared and whose rule is withdrawn: a unique index left in
/// place would keep enforcing it, so sync drops them. `payments.transactionId_1` made
/// transaction ids unique across therapists (one therapist could probe and block another's
/// ids); uniqueness is per therapist now (`therapistId_1_transactionId_1`). The list indexes
/// without the keyset tie-breaker `_id` were replaced by ones that end with it (a page then
/// needs no in-memory sort).
const RETIRED: &[(&str, &str)] = &[
    ("payments", "transactionId_1"),
    ("bookings", "therapistId_1_startsAt_1"),
    ("bookings", "therapistId_1_status_1_startsAt_1"),
    ("clients", "therapistId_1_createdAt_-1"),
    ("clients", "therapistId_1_status_1_createdAt_-1"),
    ("payments", "therapistId_1_paymentDate_-1"),
    ("notifications", "userId_1_createdAt_-1"),
    ("reviews", "therapistId_1_createdAt_-1"),
    ("documents", "ownerId_1"),
];

/// One declared index.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IndexSpec {
    pub name: String,
    pub key: Map<String, Value>,
    #[serde(default)]
    pub unique: bool,
    #[serde(default)]
    pub sparse: bool,
    #[serde(default)]
    pub expire_after_seconds: Option<i64>,
    #[serde(default)]
    pub partial_filter_expression: Option<Map<String, Value>>,
}

/// The indexes of one collection.
#[derive(Debug, Clone)]
pub struct CollectionIndexes {
    pub collection: String,
    pub indexes: Vec<IndexSpec>,
}

/// Parses every embedded declaration; an invalid file is a build-time mistake reported by name.
pub fn declared() -> anyhow::Result<Vec<CollectionIndexes>> {
    DECLARED
        .iter()
        .map(|(collection, json)| {
            let indexes: Vec<IndexSpec> =
                serde_json::from_str(json).map_err(|e| anyhow::anyhow!("indexes/{collection}.json: {e}"))?;
            Ok(CollectionIndexes {
                collection: (*collection).to_owned(),
                indexes,
            })
        })
        .collect()
}

impl IndexSpec {
    fn key_document(&self) -> Document {
        json_map_to_doc(&self.key)
    }

    /// The `createIndexes` entry for this index.
    pub fn to_command_entry(&self) -> Document {
        let mut d = doc! { "name": &self.name, "key": self.key_document() };
        if self.unique {
            d.insert("unique", true);
        }
        if self.sparse {
            d.insert("sparse", true);
        }
        if let Some(secs) = self.expire_after_seconds {
            // The server keeps this as a 32-bit int; send it as one.
            d.insert("expireAfterSeconds", json_to_bson(&Value::from(secs)));
        }
        if let Some(p) = &self.partial_filter_expression {
            d.insert("partialFilterExpression", json_map_to_doc(p));
        }
        d
    }

    /// How the stored index `existing` differs from this declaration (empty when equal).
    pub fn differences(&self, existing: &Document) -> Vec<String> {
        let mut diffs = Vec::new();
        let stored_key = existing.get_document("key").cloned().unwrap_or_default();
        if normalize_doc(&stored_key) != normalize_doc(&self.key_document()) {
            diffs.push(format!("key is {stored_key}, declared {}", self.key_document()));
        }
        let flag = |name: &str| existing.get_bool(name).unwrap_or(false);
        if flag("unique") != self.unique {
            diffs.push(format!("unique is {}, declared {}", flag("unique"), self.unique));
        }
        if flag("sparse") != self.sparse {
            diffs.push(format!("sparse is {}, declared {}", flag("sparse"), self.sparse));
        }
        let ttl = existing
            .get("expireAfterSeconds")
            .and_then(as_f64)
            .map(|v| v as i64);
        if ttl != self.expire_after_seconds {
            diffs.push(format!(
                "expireAfterSeconds is {ttl:?}, declared {:?}",
                self.expire_after_seconds
            ));
        }
        let stored_partial = existing
            .get_document("partialFilterExpression")
            .ok()
            .map(normalize_doc);
        let declared_partial = self
            .partial_filter_expression
            .as_ref()
            .map(|p| normalize_doc(&json_map_to_doc(p)));
        if stored_partial != declared_partial {
            diffs.push("partialFilterExpression differs".to_owned());
        }
        diffs
    }
}

/// What a synchronisation found and did.
#[derive(Debug, Default, Clone)]
pub struct SyncReport {
    pub created: Vec<String>,
    pub unchanged: Vec<String>,
    pub replaced: Vec<String>,
    /// `collection.name: differences`, left as they are.
    pub changed: Vec<String>,
    pub undeclared: Vec<String>,
}

impl SyncReport {
    /// True when some stored definition still differs from its declaration.
    pub fn has_drift(&self) -> bool {
        !self.changed.is_empty()
    }
}

impl fmt::Display for SyncReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "indexes: {} created, {} unchanged, {} replaced, {} changed, {} undeclared",
            self.created.len(),
            self.unchanged.len(),
            self.replaced.len(),
            self.changed.len(),
            self.undeclared.len()
        )?;
        for (label, items) in [
            ("created", &self.created),
            ("replaced", &self.replaced),
            (
                "CHANGED (not applied; run `dhara indexes --replace-changed`)",
                &self.changed,
            ),
            ("undeclared (left in place)", &self.undeclared),
        ] {
            for item in items {
                writeln!(f, "  {label}: {item}")?;
            }
        }
        Ok(())
    }
}

/// Brings the database's indexes in line with `declared`.
pub async fn sync(
    db: &Database,
    declared: &[CollectionIndexes],
    replace_changed: bool,
) -> anyhow::Result<SyncReport> {
    let mut report = SyncReport::default();
    for coll in declared {
        let existing = list_indexes(db, &coll.collection).await?;
        let mut to_create = Vec::new();
        for spec in &coll.indexes {
            let qualified = format!("{}.{}", coll.collection, spec.name);
            match existing
                .iter()
                .find(|d| d.get_str("name").ok() == Some(spec.name.as_str()))
            {
                None => to_create.push(spec.to_command_entry()),
                Some(stored) => {
                    let diffs = spec.differences(stored);
                    if diffs.is_empty() {
                        report.unchanged.push(qualified);
                    } else if replace_changed {
                        db.run_command(doc! { "dropIndexes": &coll.collection, "index": &spec.name })
                            .await?;
                        to_create.push(spec.to_command_entry());
                        report.replaced.push(format!("{qualified}: {}", diffs.join("; ")));
                    } else {
                        tracing::warn!(index = %qualified, differences = %diffs.join("; "), "index definition changed");
                        report.changed.push(format!("{qualified}: {}", diffs.join("; ")));
                    }
                }
            }
        }
        for stored in &existing {
            let name = stored.get_str("name").unwrap_or_default();
            if RETIRED.contains(&(coll.collection.as_str(), name)) {
                // An index whose rule we withdrew (it would still enforce it): dropped, always.
                db.run_command(doc! { "dropIndexes": &coll.collection, "index": name })
                    .await?;
                report
                    .replaced
                    .push(format!("{}.{name}: retired, dropped", coll.collection));
                continue;
            }
            if name != "_id_" && !coll.indexes.iter().any(|s| s.name == name) {
                report.undeclared.push(format!("{}.{name}", coll.collection));
            }
        }
        if !to_create.is_empty() {
            let names: Vec<String> = to_create
                .iter()
                .filter_map(|d| d.get_str("name").ok())
                .map(|n| format!("{}.{n}", coll.collection))
                .collect();
            db.run_command(doc! { "createIndexes": &coll.collection, "indexes": to_create })
                .await
                .map_err(|e| anyhow::anyhow!("creating indexes on {}: {}", coll.collection, e.kind))?;
            report.created.extend(
                names
                    .into_iter()
                    .filter(|n| !report.replaced.iter().any(|r| r.starts_with(n))),
            );
        }
    }
    Ok(report)
}

/// The stored index documents of a collection (none when it does not exist yet).
pub async fn list_indexes(db: &Database, collection: &str) -> anyhow::Result<Vec<Document>> {
    let reply = match db.run_command(doc! { "listIndexes": collection }).await {
        Ok(reply) => reply,
        Err(e) if super::error_code(&e) == Some(26) => return Ok(Vec::new()),
        Err(e) => return Err(anyhow::anyhow!("listing indexes of {collection}: {}", e.kind)),
    };
    let cursor = reply.get_document("cursor")?;
    let batch = cursor.get_array("firstBatch")?;
    // Index lists are tiny: a first batch always holds them all (101 documents).
    Ok(batch.iter().filter_map(|b| b.as_document().cloned()).collect())
}

fn json_map_to_doc(map: &Map<String, Value>) -> Document {
    map.iter().map(|(k, v)| (k.clone(), json_to_bson(v))).collect()
}

fn json_to_bson(v: &Value) -> Bson {
    match v {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i32::try_from(i).map(Bson::Int32).unwrap_or(Bson::Int64(i)),
            None => Bson::Double(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(a) => Bson::Array(a.iter().map(json_to_bson).collect()),
        Value::Object(o) => Bson::Document(json_map_to_doc(o)),
    }
}

fn as_f64(b: &Bson) -> Option<f64> {
    match b {
        Bson::Int32(i) => Some(f64::from(*i)),
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(d) => Some(*d),
        _ => None,
    }
}

/// Numbers compare by value whatever their BSON width; field order is kept (it matters).
fn normalize_doc(d: &Document) -> Vec<(String, Bson)> {
    d.iter().map(|(k, v)| (k.clone(), normalize(v))).collect()
}

fn normalize(v: &Bson) -> Bson {
    match v {
        Bson::Document(d) => Bson::Array(
            normalize_doc(d)
                .into_iter()
                .map(|(k, v)| Bson::Array(vec![Bson::String(k), v]))
                .collect(),
        ),
        Bson::Array(a) => Bson::Array(a.iter().map(normalize).collect()),
        other => as_f64(other).map(Bson::Double).unwrap_or_else(|| other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declaration_parses_with_unique_names() {
        let all = declared().expect("valid index files");
        assert!(all.iter().any(|c| c.collection == "bookings"));
        for coll in &all {
            let mut names: Vec<_> = coll.indexes.iter().map(|i| &i.name).collect();
            names.sort();
            names.dedup();
            assert_eq!(
                names.len(),
                coll.indexes.len(),
                "duplicate name in {}",
                coll.collection
            );
        }
    }

    #[test]
    fn differences_ignore_number_width_but_not_order_or_options() {
        let spec: IndexSpec =
            serde_json::from_str(r#"{"name":"a_1_b_-1","key":{"a":1,"b":-1},"unique":true}"#).unwrap();
        let same = doc! { "name": "a_1_b_-1", "key": { "a": 1.0, "b": -1_i64 }, "unique": true, "v": 2 };
        assert!(spec.differences(&same).is_empty());
        let reordered = doc! { "name": "a_1_b_-1", "key": { "b": -1, "a": 1 }, "unique": true };
        assert_eq!(spec.differences(&reordered).len(), 1);
        let not_unique = doc! { "name": "a_1_b_-1", "key": { "a": 1, "b": -1 } };
        assert!(spec.differences(&not_unique)[0].contains("unique"));
    }
}
