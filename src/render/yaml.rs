//! Objects as YAML text (serde-saphyr). Hearth's own CRDs are written
//! exactly as `hearth crds` writes `crds/`, so the manifests hold
//! byte-identical copies of them.

use serde_json::Value;

use super::object;
use super::validate::schema::same;

/// The YAML document of one object.
pub fn to_yaml(value: &Value) -> Result<String, String> {
    if let Some(text) = own_crd(value)? {
        return Ok(text);
    }
    serde_saphyr::to_string(value).map_err(|e| format!("{}: cannot be written as YAML: {e}", object::describe(value)))
}

/// The text of `crds/<name>.yaml` when `value` is that CRD unchanged.
fn own_crd(value: &Value) -> Result<Option<String>, String> {
    if object::type_of(value) != Some(("apiextensions.k8s.io/v1", "CustomResourceDefinition")) {
        return Ok(None);
    }
    for (_, crd) in crate::operator::crd::definitions() {
        if crd.metadata.name.as_deref() == Some(object::name(value)) {
            let ours = serde_json::to_value(&crd).map_err(|e| format!("encoding CRD: {e}"))?;
            if same(&ours, value) {
                return crate::operator::crd::to_yaml(&crd).map(Some);
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_crds_are_written_as_hearth_crds_writes_them() -> Result<(), String> {
        for (_, crd) in crate::operator::crd::definitions() {
            let value = serde_json::to_value(&crd).map_err(|e| e.to_string())?;
            assert_eq!(to_yaml(&value)?, crate::operator::crd::to_yaml(&crd)?);
            let mut changed = value.clone();
            changed["metadata"]["labels"] = serde_json::json!({"a": "b"});
            assert!(!to_yaml(&changed)?.starts_with("# Generated"));
        }
        Ok(())
    }
}
