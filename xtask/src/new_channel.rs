//! `cargo xtask new-channel <name> [--path DIR]`: scaffolds a channel crate.
//!
//! The crate (`clarion-<name>`, kind `<name>`) comes from the templates in
//! `xtask/templates/channel/`, where `{{kind}}`, `{{package}}`,
//! `{{crate_name}}` and `{{Type}}` stand for the names derived from `<name>`.
//! It compiles, registers itself, exports its schema and passes the channel
//! conformance suite as written.
//!
//! Inside the workspace (the default `channels/<name>/`, or a `--path` under
//! the workspace root) it becomes a workspace member. Anywhere else it is a
//! standalone package: its own `[workspace]` with the clarion crates as path
//! dependencies and a copy of clarion's `Cargo.lock`, so it builds with the
//! same dependency versions (offline too).
//!
//! Everything is checked before anything is written; the crate is written
//! into a staging directory and renamed into place, so an error leaves
//! nothing half-written.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// One template: where it goes in the new crate, and its text.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../templates/channel/Cargo.toml.tmpl"),
    ),
    (
        "src/lib.rs",
        include_str!("../templates/channel/src/lib.rs.tmpl"),
    ),
    (
        "tests/conformance.rs",
        include_str!("../templates/channel/tests/conformance.rs.tmpl"),
    ),
    (
        "tests/delivery.rs",
        include_str!("../templates/channel/tests/delivery.rs.tmpl"),
    ),
    (
        "examples/schema.rs",
        include_str!("../templates/channel/examples/schema.rs.tmpl"),
    ),
];

const USAGE: &str = "usage: cargo xtask new-channel <name> [--path DIR]";

/// Runs the command with its arguments (after `new-channel`).
pub fn run(args: &[String], root: &Path) -> Result<(), String> {
    let (name, path) = parse_args(args)?;
    let names = Names::new(&name)?;
    let cwd = std::env::current_dir().map_err(|e| format!("no current directory: {e}"))?;
    let dir = match path {
        Some(path) => normalize(&cwd.join(path)),
        None => root.join("channels").join(&name),
    };
    let plan = Plan::new(names, dir, root)?;
    plan.write()?;
    plan.print_next_steps(&cwd);
    Ok(())
}

fn parse_args(args: &[String]) -> Result<(String, Option<PathBuf>), String> {
    let mut name = None;
    let mut path = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--path" => match args.next() {
                Some(dir) => path = Some(PathBuf::from(dir)),
                None => return Err(format!("--path needs a directory\n{USAGE}")),
            },
            flag if flag.starts_with('-') => {
                return Err(format!("unknown option {flag}\n{USAGE}"));
            }
            _ if name.is_some() => return Err(format!("unexpected argument {arg}\n{USAGE}")),
            _ => name = Some(arg.clone()),
        }
    }
    let name = name.ok_or_else(|| format!("which channel? {USAGE}"))?;
    Ok((name, path))
}

/// The names derived from the channel's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The `kind = "…"` value: the name itself, e.g. `pager-duty`.
    pub kind: String,
    /// The package, e.g. `clarion-pager-duty`.
    pub package: String,
    /// The crate as Rust code names it, e.g. `clarion_pager_duty`.
    pub crate_name: String,
    /// The type prefix, e.g. `PagerDuty` (`PagerDutyChannel`).
    pub type_prefix: String,
}

impl Names {
    /// Checks `name`: lowercase ASCII letters and digits in words joined by
    /// single `-`, starting with a letter, at most 40 characters.
    pub fn new(name: &str) -> Result<Names, String> {
        let valid = !name.is_empty()
            && name.len() <= 40
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.split('-').all(|word| {
                !word.is_empty()
                    && word
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if !valid {
            return Err(format!(
                "invalid channel name {name:?}: use lowercase letters and digits, words joined \
                 by single '-', starting with a letter, at most 40 characters \
                 (e.g. \"ntfy\", \"pager-duty\"); it becomes the kind and the crate clarion-<name>"
            ));
        }
        let type_prefix = name
            .split('-')
            .map(|word| word[..1].to_ascii_uppercase() + &word[1..])
            .collect();
        Ok(Names {
            kind: name.to_owned(),
            package: format!("clarion-{name}"),
            crate_name: format!("clarion_{}", name.replace('-', "_")),
            type_prefix,
        })
    }

    /// `template` with its placeholders replaced.
    pub fn render(&self, template: &str) -> String {
        template
            .replace("{{kind}}", &self.kind)
            .replace("{{package}}", &self.package)
            .replace("{{crate_name}}", &self.crate_name)
            .replace("{{Type}}", &self.type_prefix)
    }
}

/// Everything to write, checked.
struct Plan {
    names: Names,
    dir: PathBuf,
    /// The crate's files, rendered, by relative path.
    files: Vec<(&'static str, String)>,
    /// In the workspace: the root manifest with the new member added.
    workspace_manifest: Option<(PathBuf, String)>,
    /// Outside it: clarion's lock file, to copy.
    lock_file: Option<PathBuf>,
}

impl Plan {
    fn new(names: Names, dir: PathBuf, root: &Path) -> Result<Plan, String> {
        if let Some(taken) = clarion::registry::find(&names.kind) {
            return Err(format!(
                "kind {:?} is taken by a stock channel ({}); pick another name",
                names.kind, taken.module
            ));
        }
        if dir.exists() {
            return Err(format!(
                "{} already exists; remove it or choose another name or --path",
                dir.display()
            ));
        }
        if !dir.parent().is_some_and(Path::is_dir) {
            return Err(format!(
                "the parent directory of {} does not exist; create it first",
                dir.display()
            ));
        }

        let root_manifest_path = root.join("Cargo.toml");
        let root_manifest = std::fs::read_to_string(&root_manifest_path)
            .map_err(|e| format!("cannot read {}: {e}", root_manifest_path.display()))?;
        let root_table: toml::Table = toml::from_str(&root_manifest)
            .map_err(|e| format!("cannot parse {}: {e}", root_manifest_path.display()))?;

        let mut files: Vec<(&'static str, String)> = TEMPLATES
            .iter()
            .map(|(path, template)| (*path, names.render(template)))
            .collect();
        for (path, text) in &files {
            if let Some(placeholder) = leftover_placeholder(text) {
                return Err(format!(
                    "template {path} has an unknown placeholder {placeholder}"
                ));
            }
        }

        let (workspace_manifest, lock_file) = match dir.strip_prefix(root) {
            Ok(relative) => {
                let member = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                check_package_is_new(&root_table, root, &names.package)?;
                let updated = add_member(&root_manifest, &member)
                    .map_err(|e| format!("{e}; add \"{member}\" to [workspace] members by hand"))?;
                (Some((root_manifest_path, updated)), None)
            }
            Err(_) => {
                let manifest = files
                    .iter_mut()
                    .find(|(path, _)| *path == "Cargo.toml")
                    .expect("a Cargo.toml template");
                manifest
                    .1
                    .push_str(&standalone_workspace(&manifest.1, &root_table, root)?);
                let lock = root.join("Cargo.lock");
                (None, lock.is_file().then_some(lock))
            }
        };
        Ok(Plan {
            names,
            dir,
            files,
            workspace_manifest,
            lock_file,
        })
    }

    /// Writes the crate into a staging directory, renames it into place,
    /// then updates the workspace manifest (undoing the crate if that fails).
    fn write(&self) -> Result<(), String> {
        let parent = self.dir.parent().expect("checked in Plan::new");
        let file_name = self.dir.file_name().expect("a directory with a name");
        let staging = parent.join(format!(
            ".{}.new-channel-{}",
            file_name.to_string_lossy(),
            std::process::id()
        ));
        let staged = self.stage(&staging);
        if let Err(e) = staged {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
        if let Err(e) = std::fs::rename(&staging, &self.dir) {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(format!("cannot create {}: {e}", self.dir.display()));
        }
        if let Some((path, text)) = &self.workspace_manifest
            && let Err(e) = replace_file(path, text)
        {
            let _ = std::fs::remove_dir_all(&self.dir);
            return Err(format!("cannot update {}: {e}", path.display()));
        }
        Ok(())
    }

    fn stage(&self, staging: &Path) -> Result<(), String> {
        let failed =
            |path: &Path, e: std::io::Error| format!("cannot write {}: {e}", path.display());
        for (relative, text) in &self.files {
            let path = staging.join(relative);
            let dir = path.parent().expect("files live in a directory");
            std::fs::create_dir_all(dir).map_err(|e| failed(dir, e))?;
            std::fs::write(&path, text).map_err(|e| failed(&path, e))?;
        }
        if let Some(lock) = &self.lock_file {
            let path = staging.join("Cargo.lock");
            std::fs::copy(lock, &path).map_err(|e| failed(&path, e))?;
        }
        format_rust(staging, &self.files);
        Ok(())
    }

    fn print_next_steps(&self, cwd: &Path) {
        let Names {
            kind,
            package,
            crate_name,
            type_prefix,
        } = &self.names;
        let shown = self.dir.strip_prefix(cwd).unwrap_or(&self.dir).display();
        println!("Created {shown}: package {package}, kind \"{kind}\".");
        println!(
            "It is a working JSON-lines file channel that passes the channel conformance suite;"
        );
        println!("make it yours:");
        println!();
        let test = if self.workspace_manifest.is_some() {
            println!("  (added to the workspace members in Cargo.toml)");
            println!();
            format!("cargo test -p {package}")
        } else {
            format!("cd {shown} && cargo test")
        };
        println!("  1. {test}");
        println!("     the conformance suite and the delivery tests pass as scaffolded; a file");
        println!("     cannot refuse on cue, so the suite skips its refusal and hang checks");
        println!("     (--nocapture shows them) until your peer supports them (step 3)");
        println!("  2. {shown}/src/lib.rs:");
        println!("     - {type_prefix}Config: your settings; doc comments become the JSON Schema,");
        println!("       secrets go in secrecy::SecretString");
        println!("     - {type_prefix}Channel::from_config: validate, naming the field; no I/O");
        println!("     - deliver: your transport; Retryable when a later try can succeed,");
        println!("       Permanent when it cannot; pass delivery.idempotency_key() along");
        println!("  3. {shown}/tests/conformance.rs: start your real peer on 127.0.0.1,");
        println!("     let it refuse (retryable, permanent) and hang, declare the secrets");
        println!("  4. in the application: add {package} to its Cargo.toml and write");
        println!("         use {crate_name} as _;");
        println!("     once in its binary crate (a crate only listed in Cargo.toml is not linked,");
        println!("     and kind = \"{kind}\" would fail at start-up); its settings then appear in");
        println!("     that binary's clarion_core::config::json_schema() (see examples/schema.rs)");
        println!("  5. configure it:");
        println!("         [channels.{kind}-audit]");
        println!("         kind = \"{kind}\"");
        println!("         path = \"/var/lib/clarion/{kind}.jsonl\"");
    }
}

/// The first `{{word}}` left in `text`, if any.
fn leftover_placeholder(text: &str) -> Option<&str> {
    text.match_indices("{{").find_map(|(at, _)| {
        let end = at + 2 + text[at + 2..].find("}}")?;
        let word = &text[at + 2..end];
        let is_word =
            !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        is_word.then(|| &text[at..end + 2])
    })
}

/// The workspace already has no package of this name.
fn check_package_is_new(
    root_table: &toml::Table,
    root: &Path,
    package: &str,
) -> Result<(), String> {
    let members = root_table
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
        .cloned()
        .unwrap_or_default();
    for member in members.iter().filter_map(|m| m.as_str()) {
        let manifest = root.join(member).join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let name = toml::from_str::<toml::Table>(&text)
            .ok()
            .and_then(|t| t.get("package")?.get("name")?.as_str().map(str::to_owned));
        if name.as_deref() == Some(package) {
            return Err(format!(
                "the workspace already has a package {package} ({member}); pick another name"
            ));
        }
    }
    Ok(())
}

/// `manifest` with `member` added to `[workspace] members`, in the style the
/// list is written in (one line, or one member per line).
pub fn add_member(manifest: &str, member: &str) -> Result<String, String> {
    const KEY: &str = "members = [";
    let start = if manifest.starts_with(KEY) {
        0
    } else {
        manifest
            .find(&format!("\n{KEY}"))
            .map(|at| at + 1)
            .ok_or("no `members = [` line in the root Cargo.toml")?
    };
    let open = start + KEY.len();
    let close = open
        + manifest[open..]
            .find(']')
            .ok_or("the members list in the root Cargo.toml is not closed")?;
    let inner = &manifest[open..close];
    let quoted = format!("\"{member}\"");
    let new_inner = if inner.contains('\n') {
        let items = inner.trim_end();
        let indent: String = inner
            .lines()
            .rfind(|line| line.trim_start().starts_with('"'))
            .map(|line| line.chars().take_while(|c| c.is_whitespace()).collect())
            .unwrap_or_else(|| "    ".into());
        let comma = if items.ends_with(',') || items.trim().is_empty() {
            ""
        } else {
            ","
        };
        format!("{items}{comma}\n{indent}{quoted},\n")
    } else {
        let items = inner.trim_end_matches([' ', ',']);
        if items.trim().is_empty() {
            quoted
        } else {
            format!("{items}, {quoted}")
        }
    };
    let updated = format!("{}{new_inner}{}", &manifest[..open], &manifest[close..]);

    // Whatever the file looked like, the result must say what we meant.
    let parsed: toml::Table = toml::from_str(&updated)
        .map_err(|e| format!("the edited Cargo.toml does not parse: {e}"))?;
    let members = parsed
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
        .ok_or("the edited Cargo.toml has no [workspace] members")?;
    if !members.iter().any(|m| m.as_str() == Some(member)) {
        return Err("the members list of the root Cargo.toml has an unexpected layout".into());
    }
    Ok(updated)
}

/// The `[workspace]` section of a package outside clarion's workspace: the
/// workspace settings the crate inherits, copied from clarion's, with its
/// path dependencies made absolute.
fn standalone_workspace(
    manifest: &str,
    root_table: &toml::Table,
    root: &Path,
) -> Result<String, String> {
    let crate_table: toml::Table = toml::from_str(manifest)
        .map_err(|e| format!("the Cargo.toml template does not parse: {e}"))?;
    let workspace = root_table
        .get("workspace")
        .and_then(|w| w.as_table())
        .ok_or("the root Cargo.toml has no [workspace]")?;
    let inherited = workspace
        .get("dependencies")
        .and_then(|d| d.as_table())
        .ok_or("the root Cargo.toml has no [workspace.dependencies]")?;

    let mut text = format!(
        "\n# Not part of clarion's workspace: this package is its own, with the clarion\n\
         # crates as path dependencies from {} and a copy of its Cargo.lock.\n\
         [workspace]\nresolver = \"3\"\n",
        root.display()
    );
    if let Some(package) = workspace.get("package").and_then(|p| p.as_table()) {
        text.push_str("\n[workspace.package]\n");
        text.push_str(&toml::to_string(package).map_err(|e| e.to_string())?);
    }
    text.push_str("\n[workspace.dependencies]\n");
    let mut needed: Vec<&str> = ["dependencies", "dev-dependencies"]
        .iter()
        .filter_map(|section| crate_table.get(*section)?.as_table())
        .flat_map(|deps| deps.iter())
        .filter(|(_, spec)| spec.get("workspace").and_then(|w| w.as_bool()) == Some(true))
        .map(|(name, _)| name.as_str())
        .collect();
    needed.sort_unstable();
    needed.dedup();
    for name in needed {
        let mut spec = inherited.get(name).cloned().ok_or_else(|| {
            format!("[workspace.dependencies] of the root Cargo.toml has no {name}")
        })?;
        if let Some(path) = spec.get("path").and_then(|p| p.as_str()) {
            let absolute = root.join(path).display().to_string();
            spec.as_table_mut()
                .expect("a dependency with a path is a table")
                .insert("path".into(), toml::Value::String(absolute));
        }
        text.push_str(&format!("{name} = {spec}\n"));
    }
    if let Some(lints) = workspace.get("lints").and_then(|l| l.as_table()) {
        for (tool, table) in lints {
            text.push_str(&format!("\n[workspace.lints.{tool}]\n"));
            text.push_str(&toml::to_string(table).map_err(|e| e.to_string())?);
        }
    }
    Ok(text)
}

/// Formats the generated Rust files (type names of any length can push a
/// line past rustfmt's width). Without rustfmt the files stay as rendered.
fn format_rust(dir: &Path, files: &[(&str, String)]) {
    let rust: Vec<PathBuf> = files
        .iter()
        .filter(|(path, _)| path.ends_with(".rs"))
        .map(|(path, _)| dir.join(path))
        .collect();
    let formatted = Command::new("rustfmt")
        .args(["--edition", "2024"])
        .args(&rust)
        .status();
    if !formatted.is_ok_and(|status| status.success()) {
        eprintln!("note: rustfmt did not run; format the new crate with `cargo fmt`");
    }
}

/// Replaces `path` by way of a temporary file beside it.
fn replace_file(path: &Path, text: &str) -> std::io::Result<()> {
    let temporary = path.with_extension(format!("new-channel-{}", std::process::id()));
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

/// `path` without `.` and `..` components (without touching the file system,
/// since the directory does not exist yet).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_the_channel_name() {
        let names = Names::new("pager-duty2").unwrap();
        assert_eq!(names.kind, "pager-duty2");
        assert_eq!(names.package, "clarion-pager-duty2");
        assert_eq!(names.crate_name, "clarion_pager_duty2");
        assert_eq!(names.type_prefix, "PagerDuty2");
        let rendered =
            names.render("{{package}} {{crate_name}} {{Type}}Channel kind={{kind}} {{x}}");
        assert_eq!(
            rendered,
            "clarion-pager-duty2 clarion_pager_duty2 PagerDuty2Channel kind=pager-duty2 {{x}}"
        );
        assert_eq!(leftover_placeholder(&rendered), Some("{{x}}"));
        assert_eq!(leftover_placeholder("format!(\"{{}}\") {{ x }}"), None);
    }

    #[test]
    fn bad_names_are_refused_with_the_rule() {
        for bad in [
            "",
            "Foo",
            "9lives",
            "foo_bar",
            "foo--bar",
            "-foo",
            "foo-",
            "foo bar",
            "föö",
            "a-name-that-is-much-too-long-for-a-channel-kind",
        ] {
            let error = Names::new(bad).unwrap_err();
            assert!(
                error.starts_with(&format!("invalid channel name {bad:?}: use lowercase")),
                "{error}"
            );
        }
    }

    #[test]
    fn members_are_added_in_the_list_style() {
        let one_line = "[workspace]\nmembers = [\"core\", \"xtask\"]\n\n[package]\nname = \"x\"\n";
        assert_eq!(
            add_member(one_line, "channels/foo").unwrap(),
            "[workspace]\nmembers = [\"core\", \"xtask\", \"channels/foo\"]\n\n[package]\nname = \"x\"\n"
        );
        let per_line = "[workspace]\nmembers = [\n    \"core\",\n    \"xtask\"\n]\n";
        assert_eq!(
            add_member(per_line, "channels/foo").unwrap(),
            "[workspace]\nmembers = [\n    \"core\",\n    \"xtask\",\n    \"channels/foo\",\n]\n"
        );
        let empty = "[workspace]\nmembers = []\n";
        assert_eq!(
            add_member(empty, "channels/foo").unwrap(),
            "[workspace]\nmembers = [\"channels/foo\"]\n"
        );
        let error = add_member("[workspace]\nresolver = \"3\"\n", "channels/foo").unwrap_err();
        assert!(error.contains("no `members = [` line"), "{error}");
    }

    #[test]
    fn paths_are_normalized_without_the_file_system() {
        assert_eq!(
            normalize(Path::new("/repo/xtask/../channels/./foo")),
            PathBuf::from("/repo/channels/foo")
        );
    }
}
