//! `hearth render`: evaluates a Jsonnet file (the library in `jsonnet/`
//! is embedded), checks every object it yields, and writes them as YAML —
//! one file per object, or one stream. See docs/jsonnet.md.
//!
//! jrsonnet is used only in [`engine`] and `locate` (places for the
//! errors jrsonnet reports without one).

pub mod engine;
pub mod library;
mod locate;
pub mod object;
pub mod output;
pub mod validate;
pub mod yaml;

use std::path::Path;

pub use engine::EvalOptions;
pub use output::RenderedObject;

/// Why a render produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Evaluation failed; the message has `file:line:column` of each frame.
    #[error("{0}")]
    Jsonnet(String),
    /// The value is not made of Kubernetes objects, or two objects share a file.
    #[error("{0}")]
    Layout(String),
    /// Objects failed validation; one line per problem, naming object and path.
    #[error("{} problem(s) in the rendered objects:\n  {}", .0.len(), .0.join("\n  "))]
    Invalid(Vec<String>),
    /// YAML encoding or writing failed.
    #[error("{0}")]
    Output(String),
}

/// Evaluates `file`, finds its objects and validates them all.
pub fn render(file: &Path, opts: &EvalOptions) -> Result<Vec<RenderedObject>, RenderError> {
    let value = engine::evaluate(file, opts).map_err(RenderError::Jsonnet)?;
    let objects = output::layout(&value).map_err(RenderError::Layout)?;
    validate::Validator::new().map_err(RenderError::Output)?.check_all(objects.iter().map(|o| &o.value)).map_err(RenderError::Invalid)?;
    Ok(objects)
}

/// Each object's file name and YAML text.
pub fn to_texts(objects: &[RenderedObject]) -> Result<Vec<(String, String)>, RenderError> {
    objects.iter().map(|o| Ok((o.file.clone(), yaml::to_yaml(&o.value).map_err(RenderError::Output)?))).collect()
}

/// `hearth render FILE -m DIR`: one file per object in `dir` (and `dir/setup`), stale `*.yaml` removed.
pub fn render_to_dir(file: &Path, opts: &EvalOptions, dir: &Path) -> Result<Vec<String>, RenderError> {
    let texts = to_texts(&render(file, opts)?)?;
    output::write_dir(&texts, dir).map_err(RenderError::Output)?;
    Ok(texts.into_iter().map(|(f, _)| f).collect())
}

/// `hearth render FILE`: one multi-document YAML stream.
pub fn render_to_stream(file: &Path, opts: &EvalOptions) -> Result<String, RenderError> {
    Ok(output::stream(&to_texts(&render(file, opts)?)?))
}
