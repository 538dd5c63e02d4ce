//! Tolerant decoding of what aggregations produce: numbers of whichever BSON type the server
//! chose, and the first document or the counts of a `$facet` output.

use std::collections::HashMap;

use mongodb::bson::{Bson, Document};
use serde::{Deserialize, Deserializer};

/// Any BSON integer or double as i64 (servers may store small counters as Int32).
pub fn as_i64(b: &Bson) -> Option<i64> {
    match b {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        Bson::Double(d) => Some(*d as i64),
        _ => None,
    }
}

/// The first document of a `$facet` output array.
pub fn facet_first(facets: &Document, facet: &str) -> Document {
    facets
        .get_array(facet)
        .ok()
        .and_then(|a| a.first())
        .and_then(|d| d.as_document())
        .cloned()
        .unwrap_or_default()
}

/// `{_id: key, n: count}` rows of a `$facet` output as a map.
pub fn facet_counts(facets: &Document, facet: &str) -> HashMap<String, i64> {
    facets
        .get_array(facet)
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_document())
        .filter_map(|r| Some((r.get_str("_id").ok()?.to_owned(), r.get("n").and_then(as_i64)?)))
        .collect()
}

/// A count an aggregation produced, whichever numeric type the server chose for it (a serde
/// `deserialize_with`); anything else is a decoding error naming what was found.
pub fn count<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let value = Bson::deserialize(d)?;
    as_i64(&value).ok_or_else(|| serde::de::Error::custom(format!("expected a count, found {value}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[derive(Debug, Deserialize)]
    struct Row {
        #[serde(deserialize_with = "count")]
        n: i64,
    }

    #[test]
    fn a_count_decodes_from_any_numeric_type() {
        for n in [Bson::Int32(3), Bson::Int64(3), Bson::Double(3.0)] {
            let row: Row = mongodb::bson::from_document(doc! { "n": n }).unwrap();
            assert_eq!(row.n, 3);
        }
    }

    #[test]
    fn a_count_that_is_not_a_number_is_an_error() {
        let err = mongodb::bson::from_document::<Row>(doc! { "n": "three" }).unwrap_err();
        assert!(err.to_string().contains("expected a count"), "{err}");
    }

    #[test]
    fn facet_counts_read_keyed_rows() {
        let facets = doc! { "byStatus": [ { "_id": "done", "n": 2_i32 }, { "_id": "open", "n": 1_i64 } ] };
        let counts = facet_counts(&facets, "byStatus");
        assert_eq!((counts["done"], counts["open"]), (2, 1));
        assert!(facet_first(&facets, "missing").is_empty());
    }
}
