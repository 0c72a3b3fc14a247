//! The library's shape, checked from its source (ADR 018): the graph of its top-level
//! modules, derived from the `crate::` paths in code (comments left out), has no cycle, nor
//! has the graph of the modules inside each folder, and the kernel imports nothing else of
//! the crate, and the ports know no feature.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules every other may use, which use none of the rest: they stay at the bottom.
const KERNEL: [&str; 7] = [
    "error", "clock", "names", "metrics", "panics", "address", "feature",
];

/// The ports and their adapters in this crate: they know no feature (features own their
/// store keys and documents), only the kernel and the port they adapt.
const PORTS: [(&str, &[&str]); 4] = [
    ("store", &[]),
    ("sqlite_store", &["store"]),
    ("mail", &[]),
    ("sms_gateway", &[]),
];

/// Pairs of top-level modules that reach each other (directly or through others): 45 before
/// issue 31 took the tangle apart, none since.
const STILL_TANGLED: usize = 0;

fn src() -> PathBuf {
    test_support::package_dir().join("src")
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

/// Code without its comments: `//` to the end of a line (doc comments included; a `//`
/// inside a string literal is rare enough here to cut too), and `/* … */`.
fn code_of(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while !rest.is_empty() {
        let line_comment = rest.find("//");
        let block_comment = rest.find("/*");
        match (line_comment, block_comment) {
            (Some(l), b) if b.is_none_or(|b| l < b) => {
                out.push_str(&rest[..l]);
                rest = rest[l..].find('\n').map_or("", |end| &rest[l + end..]);
            }
            (_, Some(b)) => {
                out.push_str(&rest[..b]);
                rest = rest[b..].find("*/").map_or("", |end| &rest[b + end + 2..]);
            }
            (None, None) => {
                out.push_str(rest);
                rest = "";
            }
            (Some(_), None) => unreachable!(),
        }
    }
    out
}

/// The names at `crate::` that are modules, and the names the crate's root re-exports, by
/// the module they come from.
fn root_names(lib: &str) -> (BTreeSet<String>, BTreeMap<String, String>) {
    let mut modules = BTreeSet::new();
    let mut reexports = BTreeMap::new();
    for line in code_of(lib).lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("pub mod ") {
            modules.insert(name.trim_end_matches(';').to_owned());
        } else if let Some(path) = line.strip_prefix("pub use ") {
            let (module, names) = path.split_once("::").unwrap();
            let names = names
                .trim_end_matches(';')
                .trim_matches(|c| c == '{' || c == '}');
            for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                reexports.insert(name.to_owned(), module.to_owned());
            }
        }
    }
    (modules, reexports)
}

/// Top-level module → the top-level modules its code names.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = src();
    let (modules, reexports) = root_names(&std::fs::read_to_string(root.join("lib.rs")).unwrap());
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for file in files {
        let relative = file.strip_prefix(&root).unwrap();
        let first = relative.components().next().unwrap();
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if module == "lib" {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        for (at, _) in code.match_indices("crate::") {
            let name: String = code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let target = if modules.contains(&name) {
                Some(name)
            } else {
                reexports.get(&name).cloned()
            };
            if let Some(target) = target.filter(|t| *t != module) {
                graph.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    graph
}

/// Inside `folder`: each module → the modules of the same folder its code names
/// (`super::x`, `crate::folder::x`), its tests (from `#[cfg(test)]` on) left out.
fn folder_graph(folder: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let name = folder.file_name().unwrap().to_string_lossy().into_owned();
    let modules: BTreeSet<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|m| m != "mod")
        .collect();
    let mut graph = BTreeMap::new();
    for module in &modules {
        let source = std::fs::read_to_string(folder.join(format!("{module}.rs"))).unwrap();
        let code = code_of(source.split("#[cfg(test)]").next().unwrap_or_default());
        let mut uses = BTreeSet::new();
        for prefix in ["super::".to_owned(), format!("crate::{name}::")] {
            for (at, _) in code.match_indices(&prefix) {
                let used: String = code[at + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if modules.contains(&used) && used != *module {
                    uses.insert(used);
                }
            }
        }
        graph.insert(module.clone(), uses);
    }
    graph
}

/// The pairs of `graph`'s nodes that reach each other.
fn tangled_pairs(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<(String, String)> {
    let reach: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|m| (m, reachable(graph, m))).collect();
    graph
        .keys()
        .flat_map(|a| graph.keys().map(move |b| (a, b)))
        .filter(|(a, b)| a < b && reach[a].contains(*b) && reach[b].contains(*a))
        .map(|(a, b)| (a.clone(), b.clone()))
        .collect()
}

fn reachable(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_owned()];
    while let Some(next) = stack.pop() {
        for to in graph.get(&next).into_iter().flatten() {
            if seen.insert(to.clone()) {
                stack.push(to.clone());
            }
        }
    }
    seen
}

#[test]
fn the_module_graph_has_no_new_cycle_and_the_kernel_imports_nothing_else() {
    let graph = module_graph();
    assert!(graph.len() > 10, "the modules were not found: {graph:?}");
    let tangled = tangled_pairs(&graph);
    let edges: Vec<String> = graph
        .iter()
        .map(|(m, to)| {
            format!(
                "{m} -> {}",
                to.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    assert_eq!(
        tangled.len(),
        STILL_TANGLED,
        "pairs of modules that reach each other: {tangled:?}\n{}",
        edges.join("\n")
    );
    for kernel in KERNEL.iter().filter(|k| graph.contains_key(**k)) {
        let outside: Vec<&String> = graph[*kernel]
            .iter()
            .filter(|t| !KERNEL.contains(&t.as_str()))
            .collect();
        assert!(
            outside.is_empty(),
            "the kernel module {kernel} uses {outside:?}"
        );
    }
}

#[test]
fn the_ports_know_no_feature() {
    let graph = module_graph();
    for (port, adapts) in PORTS {
        let uses = graph
            .get(port)
            .unwrap_or_else(|| panic!("no module {port}"));
        let features: Vec<&String> = uses
            .iter()
            .filter(|t| !KERNEL.contains(&t.as_str()) && !adapts.contains(&t.as_str()))
            .collect();
        assert!(features.is_empty(), "the port {port} uses {features:?}");
    }
}

#[test]
fn no_folder_has_a_cycle_among_its_modules() {
    let mut folders = 0;
    for entry in std::fs::read_dir(src()).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_dir() {
            continue;
        }
        folders += 1;
        let graph = folder_graph(&path);
        let tangled = tangled_pairs(&graph);
        assert!(
            tangled.is_empty(),
            "{}: {tangled:?}\n{graph:?}",
            path.display()
        );
    }
    assert!(folders >= 4, "the folders were not found");
}

#[test]
fn comments_and_doc_links_are_not_dependencies() {
    let code = code_of(
        "use crate::a; // crate::b\n/// [`crate::c`]\nfn f() { crate::d::g(); /* crate::e */ }\n",
    );
    assert!(code.contains("crate::a") && code.contains("crate::d"));
    for left_out in ["crate::b", "crate::c", "crate::e"] {
        assert!(!code.contains(left_out), "{code}");
    }
}

/// A handler crate is its row of the profile table and what it serves (ADR 018): its
/// `main.rs` stays short and within rustfmt's width, so that no field is mapped there.
#[test]
fn every_handler_main_is_short() {
    let functions = test_support::workspace_root().join("functions");
    let mut handlers = 0;
    for entry in std::fs::read_dir(&functions).unwrap() {
        let main = entry.unwrap().path().join("src/main.rs");
        let Ok(source) = std::fs::read_to_string(&main) else {
            continue;
        };
        handlers += 1;
        let lines = source.lines().count();
        assert!(lines <= 30, "{}: {lines} lines", main.display());
        for (n, line) in source.lines().enumerate() {
            assert!(
                line.chars().count() <= 100,
                "{}:{}: longer than 100",
                main.display(),
                n + 1
            );
        }
    }
    assert!(handlers >= 9, "only {handlers} handlers found");
}
