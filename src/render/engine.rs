//! Jsonnet evaluation with jrsonnet: imports resolve relative to the
//! importing file, then each `-J` directory, then the library embedded in
//! the binary (so `import 'hearth.libsonnet'` works without a vendor
//! directory); errors name `file:line:column`.

use std::path::{Component, Path, PathBuf};

use jrsonnet_evaluator::analyze::DiagLevel;
use jrsonnet_evaluator::manifest::JsonFormat;
use jrsonnet_evaluator::trace::PathResolver;
use jrsonnet_evaluator::{
    AsPathLike, Error, FileImportResolver, ImportFileNotFound, ImportResolver, ImportSyntaxError, ResolvePathOwned, Result as JResult,
    Source, SourcePath, SourceVirtual, Span, State, StaticAnalysisError,
};
use jrsonnet_gcmodule::Acyclic;

use super::{library, locate};

/// What `hearth render` passes to the evaluator besides the file.
#[derive(Clone, Debug, Default)]
pub struct EvalOptions {
    /// Library directories (`-J`), searched in order after the importing file's directory.
    pub jpaths: Vec<PathBuf>,
    /// External string variables (`--ext-str name=value`), read with `std.extVar`.
    pub ext_strs: Vec<(String, String)>,
}

/// Deep libraries recurse deeply; the evaluator gets a thread with room for that.
const EVAL_STACK_BYTES: usize = 256 << 20;

/// Evaluates `file` and returns its value as JSON (object fields sorted, as Jsonnet manifests them).
pub fn evaluate(file: &Path, opts: &EvalOptions) -> Result<serde_json::Value, String> {
    let file = std::path::absolute(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let opts = opts.clone();
    let worker = std::thread::Builder::new()
        .name("jsonnet".into())
        .stack_size(EVAL_STACK_BYTES)
        .spawn(move || evaluate_here(&file, &opts))
        .map_err(|e| format!("starting the Jsonnet evaluator: {e}"))?;
    worker.join().map_err(|_| "the Jsonnet evaluator crashed".to_string())?
}

fn evaluate_here(file: &Path, opts: &EvalOptions) -> Result<serde_json::Value, String> {
    let cwd = std::env::current_dir().ok();
    let context = jrsonnet_stdlib::ContextInitializer::new(PathResolver::new_cwd_fallback());
    for (name, value) in &opts.ext_strs {
        context.add_ext_str(name.as_str().into(), value.as_str().into());
    }
    let mut builder = State::builder();
    builder.import_resolver(Resolver { jpaths: opts.jpaths.clone(), files: FileImportResolver::default() });
    builder.context_initializer(context);
    let state = builder.build();
    let _entered = state.try_enter().ok_or("a Jsonnet evaluation is already running on this thread")?;
    // The main file as the evaluation names it, to search for errors that come without a place.
    let main = state.resolve_from_default(&file).ok();
    let show = |e: Error| format_error(&e, cwd.as_deref(), main.as_ref().map(|main| (main, state.import_resolver())));
    let value = state.import(file).map_err(show)?;
    let json = value.manifest(JsonFormat::minify()).map_err(show)?;
    serde_json::from_str(&json).map_err(|e| format!("{}: the evaluated value is not JSON: {e}", file.display()))
}

/// Names of embedded files start with this, so that errors show where they come from.
const EMBEDDED: &str = "<embedded>/";

/// The resolver: real files through jrsonnet's own [`FileImportResolver`], library files from memory.
#[derive(Acyclic)]
struct Resolver {
    jpaths: Vec<PathBuf>,
    files: FileImportResolver,
}

impl Resolver {
    /// `candidate` as a source path if it is a file.
    fn real_file(&self, candidate: &Path) -> JResult<Option<SourcePath>> {
        if !candidate.is_file() {
            return Ok(None);
        }
        // From the default location an absolute path resolves to itself.
        let absolute = std::path::absolute(candidate).unwrap_or_else(|_| candidate.to_path_buf());
        self.files.resolve_from(&SourcePath::default(), &ResolvePathOwned::Path(absolute)).map(Some)
    }
}

impl ImportResolver for Resolver {
    fn resolve_from(&self, from: &SourcePath, path: &dyn AsPathLike) -> JResult<SourcePath> {
        let resolve_path = path.as_path();
        let wanted: &Path = resolve_path.as_ref();
        if let Some(importer) = embedded_name(from) {
            let dir = importer.rsplit_once('/').map_or("", |(dir, _)| dir);
            if let Some(found) = embedded(dir, wanted) {
                return Ok(found);
            }
        } else {
            let dir = match from.path().and_then(Path::parent) {
                Some(dir) => dir.to_path_buf(),
                None => std::env::current_dir().unwrap_or_default(),
            };
            if let Some(found) = self.real_file(&dir.join(wanted))? {
                return Ok(found);
            }
        }
        for dir in &self.jpaths {
            if let Some(found) = self.real_file(&dir.join(wanted))? {
                return Ok(found);
            }
        }
        embedded(library::ROOT, wanted).ok_or_else(|| ImportFileNotFound(from.clone(), path.as_path().to_owned()).into())
    }

    fn load_file_contents(&self, resolved: &SourcePath) -> JResult<Vec<u8>> {
        match embedded_name(resolved) {
            Some(name) => library::file(name)
                .map(|text| text.as_bytes().to_vec())
                .ok_or_else(|| ImportFileNotFound(resolved.clone(), ResolvePathOwned::Str(name.to_string())).into()),
            None => self.files.load_file_contents(resolved),
        }
    }
}

/// The library name of an embedded source (`jsonnet/hearth.libsonnet`).
fn embedded_name(path: &SourcePath) -> Option<&str> {
    path.downcast_ref::<SourceVirtual>().and_then(|v| v.0.strip_prefix(EMBEDDED))
}

/// `relative` from the embedded directory `dir`, if the library has that file.
fn embedded(dir: &str, relative: &Path) -> Option<SourcePath> {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in relative.components() {
        match part {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    let name = parts.join("/");
    library::file(&name)?;
    Some(SourcePath::new(SourceVirtual(format!("{EMBEDDED}{name}").into())))
}

/// The error with every location it carries, one per line, as `file:line:column`.
///
/// An error jrsonnet raises without a place of its own (see [`locate`]) gets
/// the places found by searching the files of `main` (read with its resolver)
/// first, worded so that it is clear they were found by search: `(the only
/// access to field 'b' in the evaluated files)`, or `at one of ...` when
/// several expressions could have raised it.
fn format_error(error: &Error, cwd: Option<&Path>, main: Option<(&SourcePath, &dyn ImportResolver)>) -> String {
    let mut lines = Vec::new();
    match error.error() {
        ImportSyntaxError { path, error } => {
            lines.push(format!("syntax error: {error}"));
            lines.push(format!("    at {}", location(path, error.location.1, cwd)));
        }
        StaticAnalysisError(diagnostics) => {
            // Warnings (style hints such as "local could be hoisted") are left out.
            let errors: Vec<_> = diagnostics.iter().filter(|d| matches!(d.level, DiagLevel::Error)).collect();
            lines.push(format!("static analysis error: {}", errors.iter().map(|d| d.message.as_str()).collect::<Vec<_>>().join("; ")));
            for d in errors {
                if let Some(span) = &d.span {
                    lines.push(format!("    at {}: {}", span_location(span, cwd), d.message));
                }
            }
        }
        other => {
            lines.push(other.to_string());
            if let Some(found) = main.and_then(|(main, resolver)| locate::find(other, main, resolver)) {
                lines.push(places(&found, cwd));
            }
        }
    }
    for frame in &error.trace().0 {
        let line = match &frame.location {
            Some(span) => {
                let at = format!("    at {}", span_location(span, cwd));
                // A syntax error's own location comes again as the frame "parse imported".
                if lines.last() == Some(&at) {
                    continue;
                }
                format!("{at} ({})", frame.desc)
            }
            None => format!("    in {}", frame.desc),
        };
        if lines.last() != Some(&line) {
            lines.push(line);
        }
    }
    lines.join("\n")
}

/// The line for places found by [`locate::find`].
fn places(found: &locate::Places, cwd: Option<&Path>) -> String {
    let within = match &found.within {
        Some(file) => file_name(file, cwd),
        None => "the evaluated files".to_string(),
    };
    match found.at.as_slice() {
        [(source, offset)] => format!("    at {} (the only {} in {within})", location(source, *offset, cwd), found.sought),
        many => {
            let at: Vec<String> = many.iter().map(|(source, offset)| location(source, *offset, cwd)).collect();
            format!("    at one of {} (each {} in {within})", at.join(", "), found.sought)
        }
    }
}

fn span_location(span: &Span, cwd: Option<&Path>) -> String {
    location(&span.0, span.1, cwd)
}

/// `file:line:column` of a byte offset in a source.
fn location(source: &Source, offset: u32, cwd: Option<&Path>) -> String {
    let offset = offset.min(u32::try_from(source.code().len()).unwrap_or(u32::MAX));
    let [at] = source.map_source_locations(&[offset]);
    format!("{}:{}:{}", file_name(source.source_path(), cwd), at.line, at.column)
}

/// A file as errors name it: relative to `cwd` if under it, embedded files as `<embedded>/...`.
fn file_name(path: &SourcePath, cwd: Option<&Path>) -> String {
    match path.path() {
        Some(p) => cwd.and_then(|cwd| p.strip_prefix(cwd).ok()).unwrap_or(p).display().to_string(),
        None => match path.downcast_ref::<SourceVirtual>() {
            Some(v) => v.0.to_string(),
            None => path.to_string(),
        },
    }
}
