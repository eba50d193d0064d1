//! From the evaluated value to files: which values are objects, what each
//! file is called, and writing them (a directory, or one YAML stream).
//!
//! The value may be an object of objects (nested to any depth; keys are
//! joined with `-` into the file name, as kube-prometheus names its
//! manifests), an array, or one object; `kind: List` items are taken one by
//! one, and `null` is skipped (a disabled component). Objects reached
//! through an array or a List are named `<name>-<kind>`. Namespaces and
//! CustomResourceDefinitions go under `setup/`, to be applied first.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::object;

/// One object and the file it is written to, relative to the output directory.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedObject {
    pub file: String,
    pub value: Value,
}

/// The directory for objects that must exist before the others.
const SETUP: &str = "setup/";

/// Finds the objects in `value`, in a deterministic order: `setup/` first, then by file name.
pub fn layout(value: &Value) -> Result<Vec<RenderedObject>, String> {
    let mut found = Vec::new();
    visit(value, "", false, &mut found)?;
    let mut by_file: BTreeMap<(bool, String), Value> = BTreeMap::new();
    for (name, value) in found {
        let setup_kind = matches!(object::type_of(&value), Some((_, "Namespace" | "CustomResourceDefinition")));
        let base = name.strip_prefix(SETUP).unwrap_or(&name);
        if base.is_empty() || !base.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')) || base.starts_with('.') {
            return Err(format!("{}: {name:?} cannot be a file name (letters, digits, '.', '-', '_' only)", object::describe(&value)));
        }
        let file = if setup_kind || name.starts_with(SETUP) { format!("{SETUP}{base}.yaml") } else { format!("{base}.yaml") };
        let key = (!file.starts_with(SETUP), file);
        if let Some(first) = by_file.get(&key) {
            return Err(format!("{} and {} would both be written to {}", object::describe(first), object::describe(&value), key.1));
        }
        by_file.insert(key, value);
    }
    Ok(by_file.into_iter().map(|((_, file), value)| RenderedObject { file, value }).collect())
}

/// Collects `(name, object)`; `from_list` names objects by their own name and kind.
fn visit(value: &Value, name: &str, from_list: bool, found: &mut Vec<(String, Value)>) -> Result<(), String> {
    let join = |a: &str, b: &str| if a.is_empty() { b.to_string() } else { format!("{a}-{b}") };
    match value {
        Value::Null => Ok(()),
        Value::Object(fields) => match object::type_of(value) {
            Some((_, "List")) => match fields.get("items") {
                Some(Value::Array(items)) => items.iter().try_for_each(|item| visit(item, name, true, found)),
                _ => Err(format!("{}: a List must have an array of items", where_(name))),
            },
            Some((_, kind)) => {
                let own = format!("{}-{}", object::name(value), object::lower_camel(kind));
                found.push((if from_list || name.is_empty() { join(name, &own) } else { name.to_string() }, value.clone()));
                Ok(())
            }
            None if fields.contains_key("apiVersion") || fields.contains_key("kind") => {
                Err(format!("{}: apiVersion and kind must both be strings", where_(name)))
            }
            None => fields.iter().try_for_each(|(key, child)| visit(child, &join(name, key), false, found)),
        },
        Value::Array(items) => items.iter().try_for_each(|item| visit(item, name, true, found)),
        other => Err(format!(
            "{}: expected a Kubernetes object (with apiVersion and kind), an object of them or an array, found {other}",
            where_(name)
        )),
    }
}

fn where_(name: &str) -> String {
    if name.is_empty() { "the top-level value".into() } else { format!("field {name:?}") }
}

/// Writes each object to its file under `dir` and removes the `*.yaml` files of
/// `dir` and `dir/setup` that this render did not write.
pub fn write_dir(objects: &[(String, String)], dir: &Path) -> Result<(), String> {
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    for (file, text) in objects {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&path, text).map_err(|e| io(&path, e))?;
        }
    }
    for sub in [dir.to_path_buf(), dir.join(SETUP)] {
        let Ok(entries) = std::fs::read_dir(&sub) else { continue };
        for entry in entries {
            let path = entry.map_err(|e| io(&sub, e))?.path();
            let Ok(relative) = path.strip_prefix(dir) else { continue };
            let relative = relative.to_string_lossy();
            if path.extension().is_some_and(|e| e == "yaml") && path.is_file() && !objects.iter().any(|(f, _)| *f == relative) {
                std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
            }
        }
    }
    Ok(())
}

/// One multi-document YAML stream.
pub fn stream(texts: &[(String, String)]) -> String {
    texts.iter().map(|(_, text)| format!("---\n{}", text.strip_prefix("---\n").unwrap_or(text))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(kind: &str, name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name}})
    }

    fn files(value: Value) -> Result<Vec<String>, String> {
        Ok(layout(&value)?.into_iter().map(|o| o.file).collect())
    }

    #[test]
    fn nested_keys_become_file_names_and_setup_kinds_go_first() {
        let v = json!({
            "hearth-operator": {"serviceAccount": obj("ServiceAccount", "op"), "disabled": null},
            "0namespace": {"namespace": obj("Namespace", "monitoring")},
            "extra": [obj("ConfigMap", "a"), {"apiVersion": "v1", "kind": "List", "items": [obj("Secret", "b")]}],
        });
        assert_eq!(
            files(v),
            Ok(vec![
                "setup/0namespace-namespace.yaml".to_string(),
                "extra-a-configMap.yaml".into(),
                "extra-b-secret.yaml".into(),
                "hearth-operator-serviceAccount.yaml".into(),
            ])
        );
        assert_eq!(files(json!([obj("ConfigMap", "x")])), Ok(vec!["x-configMap.yaml".to_string()]));
        assert_eq!(files(obj("ConfigMap", "x")), Ok(vec!["x-configMap.yaml".to_string()]));
    }

    #[test]
    fn bad_values_and_clashes_are_errors() {
        assert_eq!(
            files(json!({"a": "text"})),
            Err("field \"a\": expected a Kubernetes object (with apiVersion and kind), an object of them or an array, found \"text\""
                .into())
        );
        assert_eq!(
            files(json!([obj("ConfigMap", "x"), obj("ConfigMap", "x")])),
            Err("ConfigMap x and ConfigMap x would both be written to x-configMap.yaml".into())
        );
        assert!(files(json!({"../a": obj("ConfigMap", "x")})).is_err_and(|e| e.contains("cannot be a file name")));
    }

    #[test]
    fn writing_a_directory_removes_stale_yaml_only() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let d = dir.path();
        std::fs::create_dir_all(d.join("setup")).map_err(|e| e.to_string())?;
        for f in ["old.yaml", "setup/old.yaml", "notes.txt"] {
            std::fs::write(d.join(f), "x").map_err(|e| e.to_string())?;
        }
        write_dir(&[("a.yaml".into(), "a: 1\n".into()), ("setup/b.yaml".into(), "b: 2\n".into())], d)?;
        let mut left: Vec<String> = ["a.yaml", "setup/b.yaml", "notes.txt", "old.yaml", "setup/old.yaml"]
            .into_iter()
            .filter(|f| d.join(f).exists())
            .map(String::from)
            .collect();
        left.sort();
        assert_eq!(left, vec!["a.yaml", "notes.txt", "setup/b.yaml"]);
        assert_eq!(std::fs::read_to_string(d.join("a.yaml")).map_err(|e| e.to_string())?, "a: 1\n");
        Ok(())
    }
}
