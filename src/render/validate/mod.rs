//! Every rendered object is checked before anything is written: our custom
//! resources against their CRD's `openAPIV3Schema` ([`schema`]), built-in
//! kinds against their k8s-openapi types ([`builtin`]). Anything else is an
//! error, so a typo in `apiVersion` or `kind` cannot slip through.

pub mod builtin;
pub mod schema;

use serde_json::Value;

use super::object;

/// The schemas of our custom resources, from the CRDs `hearth crds` writes.
pub struct Validator {
    /// `(apiVersion, kind, openAPIV3Schema)` for every served version.
    custom: Vec<(String, String, Value)>,
}

impl Validator {
    /// Reads the schemas of `hearth::operator::crd::definitions()`.
    pub fn new() -> Result<Validator, String> {
        let mut custom = Vec::new();
        for (file, crd) in crate::operator::crd::definitions() {
            for version in &crd.spec.versions {
                let schema = version.schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()).ok_or(format!("{file}: no schema"))?;
                let schema = serde_json::to_value(schema).map_err(|e| format!("{file}: {e}"))?;
                custom.push((format!("{}/{}", crd.spec.group, version.name), crd.spec.names.kind.clone(), schema));
            }
        }
        Ok(Validator { custom })
    }

    /// Problems of one object, each as `path: message`.
    pub fn check(&self, value: &Value) -> Vec<String> {
        let Some((api_version, kind)) = object::type_of(value) else {
            return vec!["(root): not a Kubernetes object: apiVersion and kind must be strings".into()];
        };
        let mut errors = Vec::new();
        if object::name(value).is_empty() {
            errors.push("metadata.name: required field is missing".to_string());
        }
        if let Some((_, _, schema)) = self.custom.iter().find(|(v, k, _)| v == api_version && k == kind) {
            if let Some(metadata) = value.get("metadata") {
                errors.extend(builtin::check_metadata(metadata));
            }
            // apiVersion and kind are known to match; metadata was checked above.
            let mut rest = value.clone();
            if let Some(fields) = rest.as_object_mut() {
                for key in ["apiVersion", "kind", "metadata"] {
                    fields.remove(key);
                }
            }
            schema::check(&rest, schema, "", &mut errors);
        } else if let Some(check) = builtin::checker(api_version, kind) {
            errors.extend(check(value));
        } else {
            errors.push(format!(
                "(root): unknown apiVersion/kind {api_version}/{kind}: neither a Hearth custom resource nor a built-in kind"
            ));
        }
        errors
    }

    /// Checks all objects; each problem is named `Kind namespace/name: path: message`.
    pub fn check_all<'a>(&self, values: impl IntoIterator<Item = &'a Value>) -> Result<(), Vec<String>> {
        let errors: Vec<String> =
            values.into_iter().flat_map(|v| self.check(v).into_iter().map(move |e| format!("{}: {e}", object::describe(v)))).collect();
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn custom_resources_are_checked_against_their_crd_schema() -> Result<(), String> {
        let v = Validator::new()?;
        let good = json!({"apiVersion": "monitoring.hearth.dev/v1alpha1", "kind": "ServiceMonitor",
            "metadata": {"name": "app", "namespace": "apps"}, "spec": {"selector": {}, "endpoints": [{"port": "web"}]}});
        assert_eq!(v.check(&good), Vec::<String>::new());
        let mut bad = good.clone();
        bad["spec"]["endpoints"][0]["interval"] = json!("30 seconds");
        bad["spec"]["endpoints"][0]["prot"] = json!("web");
        bad["metadata"]["lables"] = json!({});
        assert_eq!(
            v.check_all([&bad]),
            Err(vec![
                "ServiceMonitor apps/app: metadata.lables: unknown field".to_string(),
                "ServiceMonitor apps/app: spec.endpoints[0].interval: \"30 seconds\" does not match the pattern ^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$".to_string(),
                "ServiceMonitor apps/app: spec.endpoints[0].prot: unknown field".to_string(),
            ])
        );
        Ok(())
    }

    #[test]
    fn unknown_kinds_are_errors() -> Result<(), String> {
        let v = Validator::new()?;
        let e = v.check(&json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "a"}}));
        assert_eq!(
            e,
            vec![
                "(root): unknown apiVersion/kind monitoring.coreos.com/v1/ServiceMonitor: neither a Hearth custom resource nor a built-in kind"
            ]
        );
        Ok(())
    }
}
