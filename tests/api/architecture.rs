//! The code's shape, checked (issue 10): who may import whom between resource folders, handlers
//! kept thin, and MongoDB reached only through stores. The README's "Architecture" section
//! describes the same rules; this test keeps them true.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Resource folders, lowest first: a folder may import only folders listed before it.
const LAYERS: &[&str] = &[
    "auth",
    "profile",
    "availability",
    "clients",
    "bookings",
    "payments",
    "reviews",
    "session_notes",
    "logs",
    "documents",
    "work_locations",
    "notifications",
    "emails",
    "dashboard",
];

/// Shared foundation every folder may import; it imports no resource folder.
const FOUNDATION: &[&str] = &[
    "error",
    "time",
    "money",
    "metrics",
    "config",
    "events",
    "db",
    "cache",
    "ratelimit",
    "mail",
    "telemetry",
    "http",
    "idempotency",
    "files",
    "batch",
];

/// The composition root and tools: they may import anything, nothing imports them (except
/// `app`, whose `AppState` type every handler takes).
const ROOTS: &[&str] = &["app", "lib", "main", "openapi", "ops", "seed", "worker"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/bookings/store.rs` -> `bookings`).
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// Every `crate::<module>` a file's code names (comments excluded).
fn imports(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

fn files() -> Vec<(PathBuf, String)> {
    let mut paths = Vec::new();
    rust_files(&src(), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

#[test]
fn resource_folders_import_only_lower_ones_and_the_foundation() {
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut wrong: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, text) in files() {
        let from = module_of(&path);
        if ROOTS.contains(&from.as_str()) {
            continue;
        }
        for to in imports(&text) {
            if to == from || FOUNDATION.contains(&to.as_str()) || to == "app" {
                continue;
            }
            let ok = match (rank(&from), rank(&to)) {
                (Some(a), Some(b)) => b < a,
                // The foundation imports no resource folder and no root.
                _ => false,
            };
            if !ok {
                wrong
                    .entry(format!("{from} -> {to}"))
                    .or_default()
                    .push(path.strip_prefix(src()).unwrap().display().to_string());
            }
        }
    }
    for files in wrong.values_mut() {
        files.dedup();
    }
    assert!(
        wrong.is_empty(),
        "imports against the layering (README, Architecture): {wrong:#?}"
    );
}

#[test]
fn handlers_stay_thin() {
    // A handler is an `async fn` taking the app state; from its signature to its closing brace.
    let mut long = Vec::new();
    for (path, text) in files() {
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let l = lines[i];
            if l.starts_with("pub async fn ") || l.starts_with("async fn ") {
                let end = (i..lines.len())
                    .find(|&j| lines[j] == "}")
                    .unwrap_or(lines.len() - 1);
                let signature: String = lines[i..end]
                    .iter()
                    .take_while(|s| !s.ends_with('{'))
                    .copied()
                    .collect();
                let is_handler = signature.contains("State(")
                    || lines[i..=end.min(i + 8)]
                        .iter()
                        .any(|s| s.contains("State(state)"));
                if is_handler && end - i + 1 > 50 {
                    long.push(format!(
                        "{}:{} ({} lines)",
                        path.strip_prefix(src()).unwrap().display(),
                        i + 1,
                        end - i + 1
                    ));
                }
                i = end;
            }
            i += 1;
        }
    }
    assert!(long.is_empty(), "handlers over 50 lines: {long:#?}");
}

#[test]
fn only_stores_reach_mongodb_collections() {
    let mut outside = Vec::new();
    for (path, text) in files() {
        let rel = path.strip_prefix(src()).unwrap().display().to_string();
        let allowed = rel.ends_with("store.rs")
            || rel.contains("/store/")
            || rel.starts_with("db/")
            // Stores that are not named store.rs: claims, idempotency keys, invitations...
            || STORE_FILES.contains(&rel.as_str())
            || ROOTS.contains(&module_of(&path).as_str());
        if allowed {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            if line.contains(".collection(") || line.contains(".collection::<") {
                outside.push(format!("{rel}:{}", n + 1));
            }
        }
    }
    assert!(
        outside.is_empty(),
        "collections reached outside a store: {outside:#?}"
    );
}

/// Files that are the store of their collection without being called `store.rs`.
const STORE_FILES: &[&str] = &[
    "bookings/claims/mod.rs",
    "bookings/claims/reap.rs",
    "clients/invitations.rs",
    "idempotency.rs",
];

#[test]
fn files_hold_one_idea() {
    // 400 lines is where a file starts holding two ideas (README, Architecture).
    let long: Vec<String> = files()
        .into_iter()
        .filter(|(_, text)| text.lines().count() > 400)
        .map(|(p, text)| {
            format!(
                "{} ({} lines)",
                p.strip_prefix(src()).unwrap().display(),
                text.lines().count()
            )
        })
        .collect();
    assert!(long.is_empty(), "files over 400 lines: {long:#?}");
}
