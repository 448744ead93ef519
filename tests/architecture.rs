//! The rules of ARCHITECTURE.md that a machine can check, read off the source: which modules may
//! use which, no cycles between modules, egui only in the window, a pure planning stage, and
//! comments that cite nothing outside the repository. A failure names the file and the line.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// A source file's module path (`engine::cycle`), its text without its tests (what the module
/// itself depends on), and its lines numbered.
struct Source {
    path: PathBuf,
    module: Vec<String>,
    code: String,
}

fn sources() -> Vec<Source> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    rust_files(&src)
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(&src).unwrap().with_extension("");
            let mut module: Vec<String> = relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module.last().is_some_and(|last| last == "mod") {
                module.pop();
            }
            if module == ["lib"] || module == ["main"] {
                return None;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = match text.find("#[cfg(test)]") {
                Some(at) => text[..at].to_owned(),
                None => text,
            };
            Some(Source { path, module, code })
        })
        .collect()
}

/// The modules a source names: `crate::a::b` and `super::…` paths, resolved to module paths.
fn references(source: &Source, modules: &BTreeSet<Vec<String>>) -> Vec<(usize, Vec<String>)> {
    let mut found = Vec::new();
    for (number, line) in source.code.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        for start in ["crate::", "super::"] {
            let mut rest = code;
            while let Some(at) = rest.find(start) {
                let path: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                rest = &rest[at + start.len()..];
                let mut parts: Vec<&str> =
                    path.split("::").filter(|part| !part.is_empty()).collect();
                let mut base: Vec<String> = Vec::new();
                if parts.first() == Some(&"crate") {
                    parts.remove(0);
                } else {
                    base = source.module.clone();
                    while parts.first() == Some(&"super") {
                        base.pop();
                        parts.remove(0);
                    }
                }
                let full: Vec<String> = base
                    .into_iter()
                    .chain(parts.iter().map(|part| (*part).to_owned()))
                    .collect();
                // The longest known module this path names.
                if let Some(module) = (1..=full.len())
                    .rev()
                    .map(|length| full[..length].to_vec())
                    .find(|prefix| modules.contains(prefix))
                {
                    found.push((number + 1, module));
                }
            }
        }
    }
    found
}

fn module_set(sources: &[Source]) -> BTreeSet<Vec<String>> {
    sources.iter().map(|source| source.module.clone()).collect()
}

/// Edges between modules cut to `depth` path parts, with where each was seen.
fn edges(sources: &[Source], depth: usize) -> BTreeMap<(String, String), String> {
    let modules = module_set(sources);
    let mut edges = BTreeMap::new();
    for source in sources {
        let from = source.module[..depth.min(source.module.len())].join("::");
        for (line, target) in references(source, &modules) {
            let to = target[..depth.min(target.len())].join("::");
            let nested = source.module.starts_with(&target) || target.starts_with(&source.module);
            if from != to && !nested {
                edges
                    .entry((from.clone(), to))
                    .or_insert_with(|| format!("{}:{line}", source.path.display()));
            }
        }
    }
    edges
}

/// A cycle in the graph, as the modules on it, if there is one.
fn find_cycle(edges: &BTreeMap<(String, String), String>) -> Option<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        next.entry(from).or_default().push(to);
    }
    fn visit<'a>(
        node: &'a str,
        next: &BTreeMap<&'a str, Vec<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|step| *step == node) {
            return Some(path[at..].iter().map(|step| (*step).to_owned()).collect());
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for target in next.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(target, next, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for node in next.keys() {
        if let Some(cycle) = visit(node, &next, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn the_module_graph_has_no_cycles() {
    let sources = sources();
    for depth in [1, 2, 3] {
        let edges = edges(&sources, depth);
        if let Some(cycle) = find_cycle(&edges) {
            let seen: Vec<String> = cycle
                .iter()
                .zip(cycle.iter().cycle().skip(1))
                .map(|(from, to)| {
                    format!("{from} -> {to} ({})", edges[&(from.clone(), to.clone())])
                })
                .collect();
            panic!("a cycle between modules:\n{}", seen.join("\n"));
        }
    }
}

#[test]
fn modules_use_only_what_their_layer_may() {
    // (module, modules it must never use, why)
    let forbidden: &[(&str, &[&str], &str)] = &[
        (
            "engine",
            &["ui", "cli", "runner", "setup"],
            "the engine is below every front end",
        ),
        (
            "store",
            &["engine", "runner", "setup", "ui", "cli"],
            "the store keeps its own words",
        ),
        (
            "directory",
            &["cloud", "engine", "store", "runner", "setup", "ui", "cli"],
            "an adapter",
        ),
        (
            "cloud",
            &[
                "directory",
                "engine",
                "store",
                "runner",
                "setup",
                "ui",
                "cli",
            ],
            "an adapter",
        ),
        (
            "runner",
            &["ui", "cli"],
            "the runner serves both front ends",
        ),
        ("setup", &["ui", "cli"], "setup serves both front ends"),
        ("ui", &["cli"], "the window runs cycles through the runner"),
        (
            "rules",
            &[
                "config",
                "directory",
                "cloud",
                "engine",
                "store",
                "runner",
                "setup",
                "ui",
                "cli",
            ],
            "the sync rules are below the configuration that holds them",
        ),
        ("cli", &["ui"], "the CLI has no window"),
    ];
    let sources = sources();
    let modules = module_set(&sources);
    let mut broken = Vec::new();
    for source in &sources {
        for (module, never, why) in forbidden {
            if source.module[0] != *module {
                continue;
            }
            for (line, target) in references(source, &modules) {
                if never.contains(&target[0].as_str()) {
                    broken.push(format!(
                        "{}:{line}: {module} uses {} ({why})",
                        source.path.display(),
                        target.join("::")
                    ));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn only_the_window_knows_egui_the_window_never_blocks_and_the_planning_stage_does_no_io() {
    let mut broken = Vec::new();
    for source in sources() {
        let in_ui = source.module[0] == "ui";
        let pure = source.module[0] == "rules"
            || (source.module.len() == 2
                && source.module[0] == "engine"
                && [
                    "plan",
                    "attribute_flow",
                    "validation",
                    "addresses",
                    "rule_scope",
                    "rules_preview",
                ]
                .contains(&source.module[1].as_str()));
        for (number, line) in source.code.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            let uses = |name: &str| {
                code.contains(&format!("{name}::")) || code.contains(&format!("use {name}"))
            };
            if !in_ui
                && ["egui", "eframe", "egui_extras", "rfd"]
                    .iter()
                    .any(|name| uses(name))
            {
                broken.push(format!(
                    "{}:{}: egui outside ui",
                    source.path.display(),
                    number + 1
                ));
            }
            if in_ui
                && ["std::thread::spawn", "thread::spawn(", "block_on("]
                    .iter()
                    .any(|name| code.contains(name))
            {
                broken.push(format!(
                    "{}:{}: the window starts a thread or blocks; spawn on main's runtime instead",
                    source.path.display(),
                    number + 1
                ));
            }
            if pure
                && [
                    "tokio",
                    "reqwest",
                    "ldap3",
                    "rusqlite",
                    "postgres::",
                    "std::fs",
                    "std::net",
                    "StateStore",
                ]
                .iter()
                .any(|name| code.contains(name))
            {
                broken.push(format!(
                    "{}:{}: I/O in the pure planning stage",
                    source.path.display(),
                    number + 1
                ));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn comments_cite_the_readme_or_the_architecture_never_an_issue() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut broken = Vec::new();
    for dir in ["src", "tests", "benches"] {
        for path in rust_files(&root.join(dir)) {
            if path.ends_with("architecture.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (number, line) in text.lines().enumerate() {
                let Some((_, comment)) = line.split_once("//") else {
                    continue;
                };
                let cites_issue = comment
                    .match_indices("issue ")
                    .any(|(at, _)| comment[at + 6..].starts_with(|c: char| c.is_ascii_digit()));
                if comment.contains("SPEC") || cites_issue {
                    broken.push(format!(
                        "{}:{}: {}",
                        path.display(),
                        number + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
