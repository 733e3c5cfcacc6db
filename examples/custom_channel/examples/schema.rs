//! Prints the JSON Schema of a clarion configuration file, as a binary that
//! links this channel sees it: `cargo run -p clarion-ntfy --example schema`.
//! The schema lists the channels linked into the binary that exports it, so
//! `cargo xtask schema` in the clarion repository does not list `ntfy`.

// The link line: without it, `ntfy` is missing from the schema, and
// `kind = "ntfy"` fails at start-up.
use clarion_ntfy as _;

fn main() {
    let schema = clarion_core::config::json_schema();
    let text = serde_json::to_string_pretty(&schema).expect("a schema is JSON");
    println!("{text}");
}
