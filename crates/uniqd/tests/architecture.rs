//! The shape of the source tree, checked so that CI keeps it true (issue 15's "done when"):
//! no import cycle between the source files of a crate, and no file under `crates/*/src`
//! longer than [`MAX_LINES`] lines.
//!
//! # What counts as an import
//!
//! The files of one crate are the nodes; file A depends on file B when A names an item of
//! B by a path: in a `use` (public re-exports included) or in code (`crate::build::top_pages(..)`),
//! starting with `crate::`, `super::`, `self::` or the name of a child module. A path is
//! resolved to the deepest module it names, and then, when the item it names is itself
//! imported into that module (a `pub use` facade, `crate::TempDir`), on to the file that
//! imports it from, so a child that reaches a sibling's item through its parent's re-export
//! depends on the sibling, not on the parent. A glob (`use super::*`) depends on the module
//! it names.
//!
//! Not imports: `mod child;` (declaring the tree is not using it); a pure re-export (a
//! `pub use` of a name the file does not otherwise mention: the facade of a `lib.rs` or
//! `mod.rs` passes the item on, it does not use it, and paths through it are followed to the
//! defining file as above); comments and doc links, strings, paths into other crates, and
//! paths that stay inside one file (an inline `mod tests { use super::*; }`). Test modules
//! count like any other code.
//!
//! So a child using its parent's own items (`use super::VERSION` with `VERSION` defined in
//! `mod.rs`) is fine on its own, and a cycle only if the parent also uses the child (a
//! `pub use self::child::X` included): put the shared item in a module of its own, or in
//! the child. Roots are each crate's `src/lib.rs` and `src/main.rs`; every other file must be
//! reached from one through `mod` declarations.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Longest file under `crates/*/src` (team rule: a longer file does more than one job).
const MAX_LINES: usize = 600;

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .expect("crates/uniqd sits two levels below the workspace root")
        .to_path_buf()
}

/// `crates/*/src` of the workspace.
fn source_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(workspace_root().join("crates"))
        .expect("crates/ is readable")
        .map(|entry| entry.expect("a directory entry").path().join("src"))
        .filter(|src| src.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// `text` with comments, string and character literals blanked out (lines kept).
fn strip(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let blank = |out: &mut Vec<u8>, b: u8| out.push(if b == b'\n' { b'\n' } else { b' ' });
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(b"//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                blank(&mut out, bytes[i]);
                i += 1;
            }
        } else if rest.starts_with(b"/*") {
            let mut depth = 0;
            while i < bytes.len() {
                if bytes[i..].starts_with(b"/*") {
                    depth += 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                } else if bytes[i..].starts_with(b"*/") {
                    depth -= 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, bytes[i]);
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(bytes, i) {
            // r"..", r#".."#, br#".."#: ends at a quote followed by as many #.
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let open = bytes[i..].iter().position(|&b| b == b'"').expect("a quote") + 1;
            out.extend(std::iter::repeat_n(b' ', open));
            i += open;
            while i < bytes.len() && !bytes[i..].starts_with(&close) {
                blank(&mut out, bytes[i]);
                i += 1;
            }
            out.extend(std::iter::repeat_n(b' ', close.len().min(bytes.len() - i)));
            i += close.len();
        } else if bytes[i] == b'"' {
            out.push(b' ');
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                let step = if bytes[i] == b'\\' { 2 } else { 1 };
                for &b in &bytes[i..(i + step).min(bytes.len())] {
                    blank(&mut out, b);
                }
                i += step;
            }
            out.push(b' ');
            i += 1;
        } else if bytes[i] == b'\'' {
            // A char literal ('x', '\n', '\u{1F600}', 'é'), else a lifetime or label.
            let end = if rest.get(1) == Some(&b'\\') {
                rest.iter().skip(2).position(|&b| b == b'\'').map(|p| p + 2)
            } else {
                let width = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                (rest.get(1 + width) == Some(&b'\'')).then_some(1 + width)
            };
            match end {
                Some(end) => {
                    out.extend(std::iter::repeat_n(b' ', end + 1));
                    i += end + 1;
                }
                None => {
                    out.push(b'\'');
                    i += 1;
                }
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The number of `#` of a raw string literal starting at `i`.
fn raw_string_start(bytes: &[u8], i: usize) -> Option<usize> {
    if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
        return None;
    }
    let mut j = i;
    if bytes.get(j) == Some(&b'b') {
        j += 1;
    }
    if bytes.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let hashes = bytes[j..].iter().take_while(|&&b| b == b'#').count();
    (bytes.get(j + hashes) == Some(&b'"')).then_some(hashes)
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// A module: its path from the crate root and the file that holds it.
type ModPath = Vec<String>;

/// One source file: which module it is, its stripped text, its inline modules (brace
/// offsets and name) and its `use` items.
struct File {
    path: PathBuf,
    module: ModPath,
    code: String,
    inline: Vec<(usize, usize, String)>,
    uses: Vec<(usize, usize, String)>,
}

impl File {
    /// The module at offset `at`: inside any inline `mod name { .. }` that encloses it.
    fn module_at(&self, at: usize) -> ModPath {
        let mut path = self.module.clone();
        for (open, close, name) in &self.inline {
            if *open < at && at < *close {
                path.push(name.clone());
            }
        }
        path
    }
}

/// One crate's module tree.
#[derive(Default)]
struct Crate {
    files: Vec<File>,
    /// Every module (file or inline) and the index of its file.
    modules: BTreeMap<ModPath, usize>,
    /// [`Crate::imports_of`], memoised; `None` while being computed (a re-export loop).
    imports: std::cell::RefCell<BTreeMap<ModPath, Option<BTreeMap<String, usize>>>>,
}

impl Crate {
    /// Loads the module tree from `root` (a `lib.rs` or `main.rs`).
    fn load(root: &Path) -> Self {
        let mut krate = Self::default();
        krate.add_file(root.to_path_buf(), Vec::new());
        krate
    }

    fn add_file(&mut self, path: PathBuf, module: ModPath) {
        let text = fs::read_to_string(&path).expect("readable source");
        let code = strip(&text);
        let index = self.files.len();
        self.modules.insert(module.clone(), index);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let dir = path.parent().expect("a file has a directory").to_path_buf();
        let child_dir = if matches!(name, "lib.rs" | "main.rs" | "mod.rs") {
            dir
        } else {
            dir.join(path.file_stem().expect("a file name"))
        };
        let mut children = Vec::new();
        let mut inline_mods = Vec::new();
        for (at, name, inline) in mod_items(&code) {
            if inline {
                let open = at + code[at..].find('{').expect("an inline module has a brace");
                inline_mods.push((open, matching_brace(&code, open), name));
            }
        }
        let uses = use_items(&code);
        let file = File {
            path: path.clone(),
            module: module.clone(),
            code: String::new(),
            inline: inline_mods,
            uses,
        };
        for (at, name, inline) in mod_items(&code) {
            let mut child = file.module_at(at);
            child.push(name.clone());
            if inline {
                self.modules.insert(child, index);
            } else {
                let mut file_dir = child_dir.clone();
                // `mod a { mod b; }` looks for `a/b.rs`.
                for segment in &child[module.len()..child.len() - 1] {
                    file_dir = file_dir.join(segment);
                }
                let flat = file_dir.join(format!("{name}.rs"));
                let nested = file_dir.join(&name).join("mod.rs");
                let file = if flat.exists() { flat } else { nested };
                assert!(
                    file.exists(),
                    "{}: `mod {name};` has no file",
                    path.display()
                );
                children.push((file, child));
            }
        }
        self.files.push(File { code, ..file });
        for (file, child) in children {
            self.add_file(file, child);
        }
    }

    /// The file a path names, from module `from` (in the file `from_file`): the file of the
    /// deepest module the path reaches, or that of the item it names when that module
    /// imports it. `None` for a path into another crate.
    fn resolve(&self, from: &[String], from_file: usize, path: &[String]) -> Option<usize> {
        self.resolve_depth(from, from_file, path, 0)
    }

    fn resolve_depth(
        &self,
        from: &[String],
        from_file: usize,
        path: &[String],
        depth: usize,
    ) -> Option<usize> {
        let (mut module, rest): (ModPath, &[String]) = match path.first()?.as_str() {
            "crate" => (Vec::new(), &path[1..]),
            "self" => (from.to_vec(), &path[1..]),
            "super" => {
                let supers = path.iter().take_while(|s| *s == "super").count();
                let keep = from.len().checked_sub(supers)?;
                (from[..keep].to_vec(), &path[supers..])
            }
            first => {
                let mut child = from.to_vec();
                child.push(first.to_owned());
                if !self.modules.contains_key(&child) {
                    return None;
                }
                (child, &path[1..])
            }
        };
        let mut rest = rest.iter();
        let mut item = None;
        for segment in rest.by_ref() {
            let mut child = module.clone();
            child.push(segment.clone());
            if self.modules.contains_key(&child) {
                module = child;
            } else {
                item = Some(segment.clone());
                break;
            }
        }
        let file = self.modules[&module];
        // An item the module imports (a re-export): on to where it comes from.
        if let (Some(item), true) = (item, depth < 8) {
            if let Some(target) = self.imports_of(&module, file, depth).get(&item) {
                return Some(*target).filter(|&t| t != from_file).or(Some(file));
            }
        }
        Some(file)
    }

    /// The names module `module` (in file `file`) imports by `use`, and their files.
    fn imports_of(&self, module: &[String], file: usize, depth: usize) -> BTreeMap<String, usize> {
        if let Some(known) = self.imports.borrow().get(module) {
            return known.clone().unwrap_or_default();
        }
        self.imports.borrow_mut().insert(module.to_vec(), None);
        let mut names = BTreeMap::new();
        for (at, _, tree) in &self.files[file].uses {
            if self.files[file].module_at(*at) != module {
                continue;
            }
            for path in expand(tree) {
                let (path, alias) = split_alias(path);
                let Some(name) = alias.or_else(|| path.last().cloned()) else {
                    continue;
                };
                if let Some(target) = self.resolve_depth(module, file, &path, depth + 1) {
                    names.insert(name, target);
                }
            }
        }
        self.imports
            .borrow_mut()
            .insert(module.to_vec(), Some(names.clone()));
        names
    }

    /// The dependency edges between this crate's files, each with a path that makes it.
    fn edges(&self) -> BTreeMap<(usize, usize), String> {
        let mut edges = BTreeMap::new();
        for (index, file) in self.files.iter().enumerate() {
            let mut add = |at: usize, path: &[String]| {
                let from = file.module_at(at);
                if let Some(target) = self.resolve(&from, index, path) {
                    if target != index {
                        edges
                            .entry((index, target))
                            .or_insert_with(|| path.join("::"));
                    }
                }
            };
            for (at, _, tree) in &file.uses {
                let at = *at;
                let public = file.code[..at].trim_end().ends_with("pub")
                    || file.code[..at].trim_end().ends_with(')');
                for path in expand(tree) {
                    let (path, alias) = split_alias(path);
                    let name = alias.or_else(|| path.last().cloned()).unwrap_or_default();
                    if public && (name == "*" || mentions(&file.code, &name) < 2) {
                        // A pure re-export: a path through it is followed to where the
                        // item is defined; the facade itself does not use it.
                        continue;
                    }
                    let path: Vec<String> = path.into_iter().filter(|s| s != "*").collect();
                    add(at, &path);
                }
            }
            for (at, path) in code_paths(&file.code) {
                if !file
                    .uses
                    .iter()
                    .any(|(start, end, _)| (*start..*end).contains(&at))
                {
                    add(at, &path);
                }
            }
        }
        edges
    }
}

/// `mod name;` and `mod name {` items: (offset, name, inline).
fn mod_items(code: &str) -> Vec<(usize, String, bool)> {
    let mut items = Vec::new();
    for (at, _) in code.match_indices("mod ") {
        if at > 0 && is_ident(code.as_bytes()[at - 1]) {
            continue;
        }
        let rest = &code[at + 4..];
        let name: String = rest
            .trim_start()
            .bytes()
            .take_while(|&b| is_ident(b))
            .map(char::from)
            .collect();
        let after = rest.trim_start()[name.len()..].trim_start();
        if name.is_empty() {
            continue;
        }
        if after.starts_with(';') {
            items.push((at, name, false));
        } else if after.starts_with('{') {
            items.push((at, name, true));
        }
    }
    items
}

/// How often `name` stands in `code` as a whole identifier.
fn mentions(code: &str, name: &str) -> usize {
    let bytes = code.as_bytes();
    code.match_indices(name)
        .filter(|&(at, _)| {
            let end = at + name.len();
            (at == 0 || !is_ident(bytes[at - 1])) && (end == bytes.len() || !is_ident(bytes[end]))
        })
        .count()
}

fn matching_brace(code: &str, open: usize) -> usize {
    let mut depth = 0usize;
    for (i, b) in code.bytes().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    code.len()
}

/// `use` items: (offset, end, the tree after `use` without spaces; `x as y` written `x@y`).
fn use_items(code: &str) -> Vec<(usize, usize, String)> {
    let mut items = Vec::new();
    for (at, _) in code.match_indices("use ") {
        if at > 0 && is_ident(code.as_bytes()[at - 1]) {
            continue;
        }
        let Some(end) = code[at..].find(';') else {
            continue;
        };
        let words: Vec<&str> = code[at + 4..at + end].split_whitespace().collect();
        let tree = words.join(" ").replace(" as ", "@").replace(' ', "");
        items.push((at, at + end, tree));
    }
    items
}

/// A use tree (`a::{b, c::{d, e as f}}`) as its paths (`a::b`, `a::c::d`, `a::c::e as f`).
fn expand(tree: &str) -> Vec<Vec<String>> {
    let tree = tree.trim_start_matches("::");
    let Some(open) = tree.find('{') else {
        return vec![segments(tree)];
    };
    let prefix = segments(tree[..open].trim_end_matches("::"));
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    let mut paths = Vec::new();
    for part in parts.into_iter().filter(|p| !p.is_empty()) {
        for tail in expand(part) {
            let mut path = prefix.clone();
            // `self` in a group names the prefix itself.
            path.extend(tail.into_iter().filter(|s| s != "self"));
            paths.push(path);
        }
    }
    paths
}

fn segments(path: &str) -> Vec<String> {
    path.split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `a::b as c` arrives as `a::b@c` (see [`use_items`]): the path and the alias.
fn split_alias(mut path: Vec<String>) -> (Vec<String>, Option<String>) {
    let Some(last) = path.pop() else {
        return (path, None);
    };
    match last.split_once('@') {
        Some((name, alias)) => {
            path.push(name.to_owned());
            (path, Some(alias.to_owned()))
        }
        None => {
            path.push(last);
            (path, None)
        }
    }
}

/// Paths in code (`crate::x::f()`, `child::f()`): every `a::b..` not preceded by `::`
/// (those that name no module of the crate resolve to nothing).
fn code_paths(code: &str) -> Vec<(usize, Vec<String>)> {
    let bytes = code.as_bytes();
    let mut paths = Vec::new();
    {
        for (sep, _) in code.match_indices("::") {
            let at = bytes[..sep]
                .iter()
                .rposition(|&b| !is_ident(b))
                .map_or(0, |p| p + 1);
            if at == sep || (at > 0 && bytes[at - 1] == b':') {
                continue;
            }
            if !code[sep + 2..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                continue;
            }
            let end = at
                + code[at..]
                    .bytes()
                    .position(|b| !(is_ident(b) || b == b':'))
                    .unwrap_or(code.len() - at);
            paths.push((at, segments(&code[at..end])));
        }
    }
    paths
}

/// The groups of nodes that reach each other through `edges` (each group holds at least
/// one cycle), with the edges inside each group.
fn cycles(n: usize, edges: &BTreeSet<(usize, usize)>) -> Vec<Vec<(usize, usize)>> {
    let reach = |from: usize| {
        let mut seen = BTreeSet::from([from]);
        let mut todo = vec![from];
        while let Some(node) = todo.pop() {
            for &(_, next) in edges.range((node, 0)..(node + 1, 0)) {
                if seen.insert(next) {
                    todo.push(next);
                }
            }
        }
        seen
    };
    let reaches: Vec<BTreeSet<usize>> = (0..n).map(reach).collect();
    let mut grouped = BTreeSet::new();
    let mut groups = Vec::new();
    for a in 0..n {
        if grouped.contains(&a) {
            continue;
        }
        let group: BTreeSet<usize> = (0..n)
            .filter(|&b| b != a && reaches[a].contains(&b) && reaches[b].contains(&a))
            .chain([a])
            .collect();
        if group.len() > 1 {
            grouped.extend(group.iter().copied());
            groups.push(
                edges
                    .iter()
                    .copied()
                    .filter(|(x, y)| group.contains(x) && group.contains(y))
                    .collect(),
            );
        }
    }
    groups
}

#[test]
fn no_import_cycle_between_the_files_of_a_crate() {
    let root = workspace_root();
    let mut problems = Vec::new();
    for src in source_dirs() {
        let mut reached = BTreeSet::new();
        for name in ["lib.rs", "main.rs"] {
            let entry = src.join(name);
            if !entry.exists() {
                continue;
            }
            let krate = Crate::load(&entry);
            let name = |i: usize| {
                krate.files[i]
                    .path
                    .strip_prefix(&root)
                    .unwrap_or(&krate.files[i].path)
                    .display()
                    .to_string()
            };
            let edges = krate.edges();
            let pairs = edges.keys().copied().collect();
            for group in cycles(krate.files.len(), &pairs) {
                let uses: Vec<String> = group
                    .into_iter()
                    .map(|(a, b)| format!("  {} uses {} ({})", name(a), name(b), edges[&(a, b)]))
                    .collect();
                problems.push(format!("import cycle:\n{}", uses.join("\n")));
            }
            reached.extend(krate.files.iter().map(|f| f.path.clone()));
        }
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for file in files.into_iter().filter(|f| !reached.contains(f)) {
            problems.push(format!(
                "{} is not reached by `mod` from lib.rs or main.rs",
                file.display()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_source_file_is_longer_than_the_limit() {
    let mut long = Vec::new();
    for src in source_dirs() {
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for file in files {
            let lines = fs::read_to_string(&file).expect("readable").lines().count();
            if lines > MAX_LINES {
                long.push(format!("{}: {lines} lines", file.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// The checker itself, on small trees: it must see what it is meant to see.
#[test]
fn the_checker_resolves_uses_and_re_exports() {
    assert_eq!(
        expand("crate::{a,b::{c,self},d::*}"),
        vec![
            vec!["crate", "a"],
            vec!["crate", "b", "c"],
            vec!["crate", "b"],
            vec!["crate", "d", "*"],
        ]
    );
    let code = strip("// use crate::x;\nlet s = \"crate::y\"; let c = '{'; use super::z;");
    assert!(!code.contains("crate::x") && !code.contains("crate::y") && !code.contains('{'));
    let at = code.find("use super").expect("kept");
    assert_eq!(use_items(&code), vec![(at, at + 12, "super::z".to_owned())]);
    let (path, alias) = split_alias(expand("a::{b@c}").remove(0));
    assert_eq!(
        (path, alias),
        (vec!["a".to_owned(), "b".to_owned()], Some("c".to_owned()))
    );
    let edges: BTreeSet<(usize, usize)> = [(0, 1), (1, 2), (2, 0), (2, 3)].into_iter().collect();
    assert_eq!(cycles(4, &edges), vec![vec![(0, 1), (1, 2), (2, 0)]]);
    let edges: BTreeSet<(usize, usize)> = [(0, 1), (1, 2), (0, 2)].into_iter().collect();
    assert!(cycles(3, &edges).is_empty());
}
