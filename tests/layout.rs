//! The layout the docs describe, checked on the sources: arrows go down
//! only (the entry uses the edge, the edge the app, the app the Twilio
//! side), and no two modules of `src/` import each other, even through
//! others.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// The module a source file is, by its path under `src/`: `http::server`,
/// `answer`, `twilio::params`; a `mod.rs` is its folder.
fn module_of(path: &Path) -> String {
    let relative = path
        .strip_prefix(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))
        .expect("under src/");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|last| last == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// Every source file's module and the crate modules its code (not its
/// tests, not its docs) names with `crate::`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let mut found = BTreeMap::new();
    let mut folders = vec![Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")).to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            let text = fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let mut named = BTreeSet::new();
            for line in code
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
            {
                for (at, _) in line.match_indices("crate::") {
                    let rest = &line[at + "crate::".len()..];
                    let path: Vec<&str> = rest
                        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                        .next()
                        .unwrap_or_default()
                        .split("::")
                        .filter(|part| !part.is_empty())
                        .collect();
                    // `crate::twilio::params::Value` is the module
                    // `twilio::params`; `crate::logging::Escaped`, `logging`.
                    let module = match path.as_slice() {
                        ["twilio" | "http" | "check", inner, ..]
                            if inner.starts_with(char::is_lowercase) =>
                        {
                            format!("{}::{inner}", path[0])
                        }
                        [first, ..] => (*first).to_owned(),
                        [] => continue,
                    };
                    named.insert(module);
                }
            }
            found.insert(module_of(&path), named);
        }
    }
    found
}

/// The layer of a module: 0 the entry, 1 the edge, 2 the app, 3 the Twilio
/// side; `check` is a client beside the server, over the app's
/// configuration; `logging` is used by all and uses none.
fn layer(module: &str) -> Option<u8> {
    let top = module.split("::").next().unwrap_or_default();
    match top {
        "main" | "lib" | "cli" | "signals" => Some(0),
        "check" => Some(1),
        "http" => Some(1),
        "twilio" => Some(3),
        "logging" => None,
        _ => Some(2),
    }
}

#[test]
fn arrows_go_down_only() {
    let mut wrong = Vec::new();
    for (module, named) in imports() {
        let Some(from) = layer(&module) else {
            assert!(named.is_empty(), "logging uses {named:?}");
            continue;
        };
        for target in named {
            let same_part = module.split("::").next() == target.split("::").next();
            if let Some(to) = layer(&target) {
                if to < from || (to == from && from == 1 && !same_part) {
                    wrong.push(format!("{module} -> {target}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "arrows that go up or across: {wrong:#?}");
}

#[test]
fn no_module_imports_itself_through_others() {
    let graph = imports();
    // Depth-first search for a cycle, over whole top-level modules and the
    // modules of src/twilio, src/http and src/check.
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|seen| seen == module) {
            let mut cycle = path[at..].to_vec();
            cycle.push(module.to_owned());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for next in graph.get(module).into_iter().flatten() {
            if next != module {
                if let Some(cycle) = visit(next, graph, path, done) {
                    return Some(cycle);
                }
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(cycle) = visit(module, &graph, &mut Vec::new(), &mut done) {
            panic!("an import circle: {}", cycle.join(" -> "));
        }
    }
    // The check itself can see a circle.
    let circle: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]
    .into();
    assert!(visit("a", &circle, &mut Vec::new(), &mut BTreeSet::new()).is_some());
}
