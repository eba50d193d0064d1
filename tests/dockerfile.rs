//! The image build gets every file the compiler reads. No container runtime
//! is available where the tests run, so this is a static check (docs/image.md
//! says so): the build inputs (Cargo.toml, Cargo.lock, everything under
//! src/, the declared benches, and every file the sources embed with
//! `include_str!`/`include_bytes!`/`include!`) must be admitted by
//! `.dockerignore` and be copied by the build stage's COPY lines to the
//! place `cargo build` (run in the stage's WORKDIR) reads them from.

use std::path::{Component, Path, PathBuf};

use regex::Regex;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// `path` with `.` and `..` resolved lexically.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                assert!(out.pop(), "{} leaves its root", path.display());
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `path` relative to the repository, with `/` separators.
fn repo_relative(path: &Path) -> String {
    let path = normalize(path);
    let rel = path.strip_prefix(repo()).unwrap_or_else(|_| panic!("{} is outside the repository", path.display()));
    rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/")
}

/// The files that `source` (a Rust file) embeds, as repository paths.
fn embedded_by(source: &Path, text: &str) -> Vec<String> {
    let call = Regex::new(r#"\binclude(_str|_bytes)?!\s*\(\s*"#).expect("regex");
    let literal = Regex::new(r#"^"((?:[^"\\]|\\.)*)"\s*\)"#).expect("regex");
    let mut out = Vec::new();
    for found in call.find_iter(text) {
        let line_start = text[..found.start()].rfind('\n').map_or(0, |i| i + 1);
        if text[line_start..found.start()].contains("//") {
            continue; // in a comment
        }
        let rest = &text[found.end()..];
        let Some(arg) = literal.captures(rest) else {
            panic!("{}: {}: only a string literal argument can be checked", source.display(), &rest[..rest.len().min(60)]);
        };
        let dir = source.parent().expect("a source file has a directory");
        out.push(repo_relative(&dir.join(&arg[1])));
    }
    out
}

/// What `cargo build --bin hearth` reads from the repository.
fn build_inputs() -> Vec<String> {
    let mut inputs = vec!["Cargo.toml".to_string(), "Cargo.lock".to_string()];
    let mut sources = Vec::new();
    files_under(&repo().join("src"), &mut sources);
    for file in &sources {
        inputs.push(repo_relative(file));
        if file.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            inputs.extend(embedded_by(file, &text));
        }
    }
    // Cargo checks that the declared bench targets exist.
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).expect("Cargo.toml");
    let bench = Regex::new(r#"(?m)^\[\[bench\]\]\s*\nname\s*=\s*"([^"]+)""#).expect("regex");
    for name in bench.captures_iter(&manifest) {
        inputs.push(format!("benches/{}.rs", &name[1]));
    }
    inputs.sort();
    inputs.dedup();
    inputs
}

/// A glob as Docker compiles it (moby/patternmatcher): `*` and `?` stay
/// within a path segment, `**` spans segments.
fn glob_regex(pattern: &str) -> Regex {
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 1;
                if chars.get(i + 1) == Some(&'/') {
                    i += 1;
                    re.push_str("(.*/)?");
                } else {
                    re.push_str(".*");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' | '\\' => panic!("pattern {pattern:?}: character classes and escapes are not handled by this check"),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    Regex::new(&re).expect("glob regex")
}

/// The rules of a `.dockerignore` file, in order.
struct DockerIgnore(Vec<(bool, Regex)>);

impl DockerIgnore {
    fn parse(text: &str) -> Self {
        let mut rules = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let pattern = normalize(Path::new(pattern.trim_start_matches('/')));
            let pattern = pattern.to_string_lossy();
            rules.push((exception, glob_regex(if pattern.is_empty() { "." } else { &pattern })));
        }
        DockerIgnore(rules)
    }

    /// Whether `path` is in the build context: the last rule that matches it
    /// or one of its parent directories decides.
    fn admits(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        let candidates: Vec<String> = (1..=parts.len()).map(|n| parts[..n].join("/")).collect();
        let mut excluded = false;
        for (exception, re) in &self.0 {
            if candidates.iter().any(|c| re.is_match(c)) {
                excluded = !exception;
            }
        }
        !excluded
    }
}

/// A COPY of the build stage: sources in the context, the destination in the image.
struct Copy {
    sources: Vec<String>,
    dest: PathBuf,
    dest_is_dir: bool,
}

/// The build stage: its COPY lines before `cargo build`, and the directory it runs in.
struct BuildStage {
    copies: Vec<Copy>,
    workdir: PathBuf,
}

/// The Dockerfile's instructions, continuation lines joined, comments left out.
fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        if !current.trim().is_empty() {
            out.push(current.trim().to_string());
        }
        current.clear();
    }
    out
}

/// The arguments of an instruction, flags (`--chown=...`) left out; JSON form or words.
fn arguments(rest: &str) -> Vec<String> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let without_flags: Vec<&str> = words.iter().copied().skip_while(|w| w.starts_with("--")).collect();
    let joined = without_flags.join(" ");
    if joined.starts_with('[') {
        serde_json::from_str(&joined).unwrap_or_else(|e| panic!("COPY {joined}: {e}"))
    } else {
        without_flags.iter().map(|s| s.to_string()).collect()
    }
}

/// The stage that runs `cargo build`, read up to that RUN line.
fn build_stage(dockerfile: &str) -> BuildStage {
    let mut stage: Option<BuildStage> = None;
    for instruction in instructions(dockerfile) {
        let (keyword, rest) = instruction.split_once(char::is_whitespace).unwrap_or((&instruction, ""));
        match keyword.to_ascii_uppercase().as_str() {
            "FROM" => stage = Some(BuildStage { copies: Vec::new(), workdir: PathBuf::from("/") }),
            "WORKDIR" => {
                let stage = stage.as_mut().expect("WORKDIR before FROM");
                stage.workdir = normalize(&stage.workdir.join(rest.trim()));
            }
            "COPY" | "ADD" => {
                let stage = stage.as_mut().expect("COPY before FROM");
                if rest.split_whitespace().any(|w| w.starts_with("--from")) {
                    continue; // from another stage, not the context
                }
                let mut args = arguments(rest);
                let dest = args.pop().expect("COPY has a destination");
                let dest_is_dir = dest.ends_with('/') || args.len() > 1;
                stage.copies.push(Copy { sources: args, dest: normalize(&stage.workdir.join(dest)), dest_is_dir });
            }
            "RUN" if rest.contains("cargo build") => return stage.expect("RUN before FROM"),
            _ => {}
        }
    }
    panic!("no stage runs `cargo build`")
}

impl BuildStage {
    /// Where the stage's COPY lines put the context file `path`, if they copy it.
    fn destinations(&self, path: &str, is_dir: impl Fn(&str) -> bool) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for copy in &self.copies {
            for source in &copy.sources {
                let source = normalize(Path::new(source.trim_start_matches('/'))).to_string_lossy().into_owned();
                let candidates: Vec<String> = {
                    let parts: Vec<&str> = path.split('/').collect();
                    (1..=parts.len()).map(|n| parts[..n].join("/")).collect()
                };
                // The source names the context root, the file itself, or one of its directories.
                let matched = if source.is_empty() {
                    Some(String::new())
                } else {
                    let re = glob_regex(&source);
                    candidates.into_iter().find(|c| re.is_match(c))
                };
                let Some(matched) = matched else { continue };
                let dest = if matched == path {
                    if copy.dest_is_dir { copy.dest.join(path.rsplit('/').next().unwrap_or(path)) } else { copy.dest.clone() }
                } else if matched.is_empty() || is_dir(&matched) {
                    // A directory's contents go into the destination.
                    let inside = if matched.is_empty() { path } else { &path[matched.len() + 1..] };
                    copy.dest.join(inside)
                } else {
                    continue;
                };
                out.push(dest);
            }
        }
        out
    }

    /// The build inputs that do not end up where `cargo build` reads them.
    fn missing(&self, inputs: &[String], is_dir: impl Fn(&str) -> bool) -> Vec<String> {
        inputs.iter().filter(|input| !self.destinations(input, &is_dir).contains(&self.workdir.join(input.as_str()))).cloned().collect()
    }
}

fn repo_is_dir(path: &str) -> bool {
    repo().join(path).is_dir()
}

#[test]
fn every_file_the_build_reads_is_in_the_context_and_copied() {
    let inputs = build_inputs();
    // The embedded Jsonnet library and CRDs (src/render/library.rs) are found.
    for expected in [
        "jsonnet/hearth.libsonnet",
        "jsonnet/lib/meta.libsonnet",
        "crds/prometheuses.monitoring.hearth.dev.yaml",
        "src/web/ui/assets/app.js",
    ] {
        assert!(inputs.iter().any(|i| i == expected), "{expected} not among the build inputs: {inputs:?}");
    }
    for input in &inputs {
        assert!(repo().join(input).is_file(), "{input} is read by the build but does not exist");
    }

    let ignore = DockerIgnore::parse(&std::fs::read_to_string(repo().join(".dockerignore")).expect(".dockerignore"));
    let excluded: Vec<&String> = inputs.iter().filter(|i| !ignore.admits(i)).collect();
    assert!(excluded.is_empty(), ".dockerignore leaves out files the build reads: {excluded:?}");

    let stage = build_stage(&std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile"));
    let missing = stage.missing(&inputs, repo_is_dir);
    assert!(missing.is_empty(), "the Dockerfile's build stage does not copy these to {}: {missing:?}", stage.workdir.display());
}

#[test]
fn dockerignore_rules_decide_in_order_and_cover_directories() {
    // The rules before the embedded files were admitted: the library is left out.
    let old = DockerIgnore::parse("*\n!Cargo.toml\n!Cargo.lock\n!src\n!benches\n");
    assert!(old.admits("src/render/library.rs"));
    assert!(old.admits("Cargo.toml"));
    assert!(!old.admits("jsonnet/hearth.libsonnet"));
    assert!(!old.admits("crds/prometheuses.monitoring.hearth.dev.yaml"));

    let rules = DockerIgnore::parse("# comment\n/docs\n**/*.tmp\n!keep.tmp\njsonnet/examples\n");
    assert!(!rules.admits("docs/image.md"), "a directory rule covers its files");
    assert!(!rules.admits("src/a/b.tmp"), "** spans directories");
    assert!(!rules.admits("b.tmp"), "**/ also matches at the top");
    assert!(rules.admits("keep.tmp"), "a later exception wins");
    assert!(rules.admits("jsonnet/lib/meta.libsonnet"));
    assert!(!rules.admits("jsonnet/examples/full.jsonnet"));
    assert!(rules.admits("src/docs/x.rs"), "patterns are anchored at the context root");
}

#[test]
fn selective_copies_must_put_each_file_where_cargo_reads_it() {
    let is_dir = |p: &str| ["src", "jsonnet", "jsonnet/lib", "crds"].contains(&p);
    let inputs: Vec<String> =
        ["Cargo.toml", "Cargo.lock", "src/main.rs", "jsonnet/lib/meta.libsonnet", "crds/a.yaml"].iter().map(|s| s.to_string()).collect();

    let everything = build_stage("FROM rust AS builder\nWORKDIR /src\nCOPY . .\nRUN cargo build --release\n");
    assert!(everything.missing(&inputs, is_dir).is_empty());

    let selective = build_stage(
        "FROM rust AS builder\nWORKDIR /src\nCOPY Cargo.toml Cargo.lock ./\nCOPY src ./src\n\
         COPY --chown=1:1 jsonnet/lib /src/jsonnet/lib\nRUN cargo build --release\nCOPY crds crds\n",
    );
    assert_eq!(selective.missing(&inputs, is_dir), vec!["crds/a.yaml"], "a COPY after the build does not count");

    let misplaced = build_stage("FROM rust\nWORKDIR /src\nCOPY . .\nCOPY --from=other / /\nWORKDIR /src/sub\nRUN cargo build\n");
    assert_eq!(misplaced.missing(&inputs, is_dir).len(), inputs.len(), "cargo runs in /src/sub, the files are in /src");

    let glob = build_stage("FROM rust\nWORKDIR /w\nCOPY [\"Cargo.*\", \"./\"]\nCOPY src/ src/\nRUN \\\n  cargo build\n");
    assert_eq!(glob.missing(&inputs, is_dir), vec!["jsonnet/lib/meta.libsonnet", "crds/a.yaml"]);
}

#[test]
fn include_macros_are_found_outside_comments() {
    let source = repo().join("src/render/library.rs");
    let text = "// include_str!(\"no.txt\")\nconst A: &str = include_str!(\"../../jsonnet/x.libsonnet\");\nconst B: &[u8] = include_bytes! ( \"assets/y.css\" );\n";
    assert_eq!(embedded_by(&source, text), vec!["jsonnet/x.libsonnet", "src/render/assets/y.css"]);
}
