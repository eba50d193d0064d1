//! Places for the errors jrsonnet reports without one.
//!
//! jrsonnet 0.5.0-pre98 raises a missing field (`{a: 1}.b`, `super.b`,
//! `o['b']`), an index out of bounds (`[1][5]`), an operator on the wrong
//! types (`1 + {}`) and an import that resolves nowhere with no line and
//! column: the trace has at most the places of the calls around it. The
//! error does carry what it is about (the field name, the index, the
//! operator, the import path and the importing file), so the source can be
//! searched for the expressions that can raise it. The files are parsed with
//! jrsonnet's own parser: comments and strings are never matched, and the
//! places are the spans jrsonnet itself would have given.
//!
//! Only literals can be found: a field named by a string (`.b`, `['b']`) and
//! an index given as a number (`[5]`, `[-1]`). A key computed at run time
//! (`o[name]`, `a[i + 1]`) is not in the source, so such an error gets no
//! place; and a literal found elsewhere could in principle be a different
//! expression than the computed key that failed, which is why the message
//! says the place was found by searching (see `engine::format_error`).

use std::collections::{HashSet, VecDeque};

use jrsonnet_evaluator::error::ErrorKind;
use jrsonnet_evaluator::{ImportResolver, ResolvePathOwned, Source, SourcePath};
use jrsonnet_ir::visit::{self, Visitor};
use jrsonnet_ir::{BinaryOpType, Expr, ObjBody, UnaryOpType};
use jrsonnet_ir_parser::ParserSettings;

/// The places an error can have been raised at, found by searching the source.
pub struct Places {
    /// What was searched for, e.g. `access to field 'b'`.
    pub sought: String,
    /// The one file searched, when the error names it (an import); otherwise every file evaluated.
    pub within: Option<SourcePath>,
    /// Each match, as source and byte offset, in the order the files were imported.
    pub at: Vec<(Source, u32)>,
}

/// The places in the source that can have raised `error`, or `None` when
/// the error is not one jrsonnet leaves without a place, its subject is not
/// in the source as a literal, or the search cannot be sure to have found
/// every match. `main` is the file being rendered; files are read through
/// `resolver`, exactly as the evaluation read them.
pub fn find(error: &ErrorKind, main: &SourcePath, resolver: &dyn ImportResolver) -> Option<Places> {
    let (sought, wanted) = match error {
        ErrorKind::NoSuchField(name, _) => (format!("access to field '{name}'"), Wanted::Field(name.as_str())),
        // The evaluator gives the index as it truncated it; see [`element`].
        ErrorKind::ArrayBoundsError(index, _) => (format!("index {index}"), Wanted::Element(i64::try_from(*index).ok()?)),
        ErrorKind::StringBoundsError(index, _) => (format!("index {index}"), Wanted::Element(i64::try_from(*index).ok()?)),
        ErrorKind::BinaryOperatorDoesNotOperateOnValues(op, _, _) => (format!("'{op}' operator"), Wanted::Operator(*op)),
        ErrorKind::ImportFileNotFound(from, path) => {
            // The importing file is known: only it is searched.
            let path = match path {
                ResolvePathOwned::Str(path) => path.clone(),
                ResolvePathOwned::Path(path) => path.to_str()?.to_string(),
            };
            if from.is_default() {
                return None; // the file being rendered itself was not found
            }
            let file = load(from, resolver)?;
            let at = search(&file, &Wanted::Import(&path))?;
            return (!at.is_empty()).then(|| Places { sought: format!("import of '{path}'"), within: Some(from.clone()), at });
        }
        _ => return None,
    };
    let mut at = Vec::new();
    for file in evaluated_files(main, resolver) {
        at.extend(search(&file, &wanted)?);
    }
    (!at.is_empty()).then_some(Places { sought, within: None, at })
}

/// What raises the error, as it appears in the source.
enum Wanted<'a> {
    /// Indexing with this string: `.name`, `['name']`, `super.name`, `self.name`.
    Field(&'a str),
    /// Indexing with this number, as the evaluator reports it (see [`element`]).
    Element(i64),
    /// This binary operator; for `+` also `name+: value` fields, which add
    /// `value` to the inherited field with the same operation.
    Operator(BinaryOpType),
    /// `import`, `importstr` or `importbin` of this path.
    Import(&'a str),
}

/// A parsed file.
struct File {
    source: Source,
    ast: Expr,
}

/// `path` read through `resolver` and parsed, as the evaluator does it.
fn load(path: &SourcePath, resolver: &dyn ImportResolver) -> Option<File> {
    let code = String::from_utf8(resolver.load_file_contents(path).ok()?).ok()?;
    let source = Source::new(path.clone(), code.as_str().into());
    let ast = jrsonnet_ir_parser::parse(&code, &ParserSettings { source: source.clone() }).ok()?;
    Some(File { source, ast })
}

/// `main` and every file it imports (`import`, not `importstr`: those are
/// not code), directly or through other files, each once, in the order met.
///
/// This is every file the evaluation can have run: Jsonnet import paths are
/// literals, so what a file can import is in its source. The innermost file
/// of the trace is not enough: a function defined in one file can be called
/// from another that does not import it. A file that cannot be read or parsed
/// is left out: had the evaluation run it, the error would have been that.
fn evaluated_files(main: &SourcePath, resolver: &dyn ImportResolver) -> Vec<File> {
    let mut seen = HashSet::from([main.clone()]);
    let mut queue = VecDeque::from([main.clone()]);
    let mut files = Vec::new();
    while let Some(path) = queue.pop_front() {
        let Some(file) = load(&path, resolver) else { continue };
        let mut imports = Imports(Vec::new());
        imports.visit_expr(&file.ast);
        for import in imports.0 {
            if let Ok(resolved) = resolver.resolve_from(&path, &import.as_str())
                && seen.insert(resolved.clone())
            {
                queue.push_back(resolved);
            }
        }
        files.push(file);
    }
    files
}

/// Paths of the code imports (`import 'x'`) of a file.
struct Imports(Vec<String>);

impl Visitor for Imports {
    fn visit_import(&mut self, as_expression: bool, path: jrsonnet_ir::IStr) {
        if as_expression {
            self.0.push(path.to_string());
        }
    }
}

/// The places in `file` that can raise what is `wanted`; `None` when the
/// operators in it cannot all be told apart (see [`operator_offsets`]).
fn search(file: &File, wanted: &Wanted<'_>) -> Option<Vec<(Source, u32)>> {
    let mut search = Search { wanted, offsets: Vec::new(), operators: 0 };
    search.visit_expr(&file.ast);
    let mut offsets = search.offsets;
    if let Wanted::Operator(op) = wanted
        && search.operators > 0
    {
        offsets.extend(operator_offsets(file.source.code(), *op, search.operators)?);
    }
    offsets.sort_unstable();
    Some(offsets.into_iter().map(|offset| (file.source.clone(), offset)).collect())
}

/// Walks an AST collecting the offsets of what is wanted. Binary operators
/// have no span in jrsonnet's AST, so they are only counted here.
struct Search<'a> {
    wanted: &'a Wanted<'a>,
    offsets: Vec<u32>,
    operators: usize,
}

impl Visitor for Search<'_> {
    fn visit_expr(&mut self, e: &Expr) {
        match (self.wanted, e) {
            (Wanted::Field(name), Expr::Index { parts, .. }) => {
                // The span of a part is its key (`b` of `.b`, `'b'` of `['b']`), where jrsonnet puts field access frames.
                self.offsets.extend(parts.iter().filter(|p| matches!(&p.value, Expr::Str(s) if s.as_str() == *name)).map(|p| p.span.1));
            }
            (Wanted::Element(index), Expr::Index { parts, .. }) => {
                self.offsets.extend(parts.iter().filter(|p| number(&p.value).and_then(element) == Some(*index)).map(|p| p.span.1));
            }
            (Wanted::Import(path), Expr::Import(kind, value)) => {
                if matches!(&**value, Expr::Str(s) if s.as_str() == *path) {
                    // The keyword, where jrsonnet puts the frame of an import that fails inside.
                    self.offsets.push(kind.span.1);
                }
            }
            (Wanted::Operator(op), Expr::BinaryOp(binary)) if binary.op == *op => self.operators += 1,
            (Wanted::Operator(BinaryOpType::Add), Expr::Obj(body) | Expr::ObjExtend(_, body)) => {
                let fields = match body {
                    ObjBody::MemberList(members) => members.fields.iter().collect::<Vec<_>>(),
                    ObjBody::ObjComp(comp) => vec![&*comp.field],
                };
                self.offsets.extend(fields.into_iter().filter(|f| f.plus).map(|f| f.name.span.1));
            }
            _ => {}
        }
        visit::visit_expr(self, e);
    }
}

/// The value of a number literal, with its sign (`5`, `-1`).
fn number(e: &Expr) -> Option<f64> {
    match e {
        Expr::Num(n) => Some(n.get()),
        Expr::UnaryOp(UnaryOpType::Minus, inner) => number(inner).map(|n| -n),
        Expr::UnaryOp(UnaryOpType::Plus, inner) => number(inner),
        _ => None,
    }
}

/// The index an out-of-bounds error reports for the literal index `n`, as
/// jrsonnet computes it: a negative index truncated toward zero, a
/// non-negative one only if whole (otherwise the error is a fractional index).
fn element(n: f64) -> Option<i64> {
    if n < 0.0 {
        Some(n as i64)
    } else if n.fract() > f64::EPSILON {
        None
    } else {
        Some(i64::from(n as u32))
    }
}

/// For operators whose symbol is also something else, an operator with the
/// same precedence and associativity, written in its place to tell them apart
/// (see [`operator_offsets`]): `+` and `-` are also unary, `+` also marks
/// `name+:` fields, and `in` is also part of `for x in`.
fn stand_in(op: BinaryOpType) -> Option<&'static str> {
    match op {
        BinaryOpType::Add => Some("-"),
        BinaryOpType::Sub => Some("+"),
        BinaryOpType::In => Some("<"),
        _ => None,
    }
}

/// Byte offsets of the `count` binary `op` operators in `code`, or `None`
/// if they cannot all be found.
///
/// jrsonnet's AST has no span for a binary operator, and an operand may have
/// none either (`1 + {}`), so the operator tokens come from jrsonnet's lexer
/// (which skips comments and strings). A token whose symbol is only ever this
/// operator is one. Any other (see [`stand_in`]) is one exactly when writing
/// an operator of the same precedence in its place leaves the file with one
/// `op` fewer: the parse tree keeps its shape and only that node changes,
/// whereas a unary `-` stays unary and `+:` or `for x in` stop parsing. The
/// result is checked against the parser's count, so a mistake here gives no
/// place rather than a wrong one.
fn operator_offsets(code: &str, op: BinaryOpType, count: usize) -> Option<Vec<u32>> {
    let symbol = op.to_string();
    let tokens = jrsonnet_lexer::lex(code).into_iter().filter(|l| l.text == symbol).map(|l| (l.range.0, l.range.1));
    let offsets: Vec<u32> = match stand_in(op) {
        None => tokens.map(|(start, _)| start).collect(),
        Some(other) => tokens
            .filter(|&(start, end)| {
                let before = code.get(..start as usize);
                let after = code.get(end as usize..);
                let replaced = before.zip(after).map(|(before, after)| format!("{before}{other}{after}"));
                replaced.and_then(|replaced| count_operators(&replaced, op)).is_some_and(|n| n + 1 == count)
            })
            .map(|(start, _)| start)
            .collect(),
    };
    (offsets.len() == count).then_some(offsets)
}

/// How many binary `op` operators `code` has, if it parses.
fn count_operators(code: &str, op: BinaryOpType) -> Option<usize> {
    struct Count(BinaryOpType, usize);
    impl Visitor for Count {
        fn visit_expr(&mut self, e: &Expr) {
            if matches!(e, Expr::BinaryOp(b) if b.op == self.0) {
                self.1 += 1;
            }
            visit::visit_expr(self, e);
        }
    }
    let source = Source::new_virtual("<operators>".into(), code.into());
    let ast = jrsonnet_ir_parser::parse(code, &ParserSettings { source }).ok()?;
    let mut count = Count(op, 0);
    count.visit_expr(&ast);
    Some(count.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text at each offset `operator_offsets` finds, with what follows up to the line's end.
    fn operators(code: &str, op: BinaryOpType) -> Option<Vec<&str>> {
        let count = count_operators(code, op)?;
        let offsets = operator_offsets(code, op, count)?;
        Some(offsets.into_iter().map(|o| code[o as usize..].lines().next().unwrap_or_default()).collect())
    }

    #[test]
    fn binary_operators_are_told_from_unary_ones_fields_and_comprehensions() {
        let code = "// 1 + 2 in a comment\n{ a+: -1 + 'x+y', b: +2 - -3, c: [x for x in [1] if 'k' in {}], d: 4 * 5 }";
        assert_eq!(operators(code, BinaryOpType::Add), Some(vec!["+ 'x+y', b: +2 - -3, c: [x for x in [1] if 'k' in {}], d: 4 * 5 }"]));
        assert_eq!(operators(code, BinaryOpType::Sub), Some(vec!["- -3, c: [x for x in [1] if 'k' in {}], d: 4 * 5 }"]));
        assert_eq!(operators(code, BinaryOpType::In), Some(vec!["in {}], d: 4 * 5 }"]));
        assert_eq!(operators(code, BinaryOpType::Mul), Some(vec!["* 5 }"]));
        assert_eq!(operators(code, BinaryOpType::Div), Some(vec![]));
    }

    #[test]
    fn function_bodies_starting_with_a_sign_are_not_operators() {
        // After `)` a `-` is usually binary, but not after a function's parameters.
        let code = "local f = function(x) -x, g(y) = (y) - 1;\nf(1) - g(2)";
        assert_eq!(operators(code, BinaryOpType::Sub).map(|o| o.len()), Some(2));
        assert_eq!(operators(code, BinaryOpType::Sub).map(|o| o[1].to_string()), Some("- g(2)".to_string()));
    }

    #[test]
    fn out_of_bounds_indexes_are_matched_as_jrsonnet_reports_them() {
        assert_eq!(element(5.0), Some(5));
        assert_eq!(element(-1.0), Some(-1));
        assert_eq!(element(-1.5), Some(-1));
        assert_eq!(element(1.5), None);
    }
}
