//! Embeds every `indexes/<collection>.json` and every `templates/email/<lang>/<kind>.<ext>` into
//! the binary, so index declarations and email templates always travel with the code that
//! relies on them (they stay files: edited as JSON and Jinja, not as Rust strings).

use std::fmt::Write;
use std::path::{Path, PathBuf};

fn files_under(dir: &Path, ext: &[&str], out: &mut Vec<PathBuf>) {
    println!("cargo:rerun-if-changed={}", dir.display());
    for entry in std::fs::read_dir(dir).expect("folder").filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, ext, out);
        } else if path
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| ext.contains(&x))
        {
            out.push(path);
        }
    }
}

/// `pub static {name}: &[(&str, &str)]` of (path relative to `root`, minus `strip_ext`, content).
fn embed(name: &str, root: &Path, ext: &[&str], strip_ext: bool) -> String {
    let mut files = Vec::new();
    files_under(root, ext, &mut files);
    files.sort();
    let mut out = format!("pub static {name}: &[(&str, &str)] = &[\n");
    for path in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let rel = path.strip_prefix(root).expect("under root");
        let rel = if strip_ext {
            rel.with_extension("")
        } else {
            rel.to_path_buf()
        };
        let key = rel.to_str().expect("utf-8 file name").replace('\\', "/");
        writeln!(
            out,
            "    ({key:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .expect("write");
    }
    out.push_str("];\n");
    out
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let indexes = format!(
        "/// (collection, JSON) for each file in indexes/.\n{}",
        embed("DECLARED", &root.join("indexes"), &["json"], true)
    );
    std::fs::write(out_dir.join("indexes.rs"), indexes).expect("write indexes.rs");
    let templates = format!(
        "/// (`<lang>/<kind>.<txt|html>`, template) for each file in templates/email/.\n{}",
        embed(
            "TEMPLATES",
            &root.join("templates/email"),
            &["txt", "html"],
            false
        )
    );
    std::fs::write(out_dir.join("email_templates.rs"), templates).expect("write email_templates.rs");
}
