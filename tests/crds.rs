//! The CRD manifests in crds/ and charts/hearth/crds/ are generated from the
//! Rust types by `hearth crds`; this fails when they drift, and checks what
//! `kubectl apply` needs.

use std::path::Path;

use hearth::operator::crd::{definitions, to_yaml};

#[test]
fn crds_directory_matches_the_types() {
    assert_directory_matches_the_types("crds");
}

/// The chart installs its own copy (Helm only installs CRDs from the
/// chart's crds/), which must be the same bytes.
#[test]
fn chart_crds_directory_matches_the_types() {
    assert_directory_matches_the_types("charts/hearth/crds");
}

/// `rel` (from the repository root) holds exactly the files `hearth crds`
/// writes, with exactly its content.
fn assert_directory_matches_the_types(rel: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    let defs = definitions();
    for (file, crd) in &defs {
        let want = to_yaml(crd).expect("encode");
        let have = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        assert!(have == want, "{rel}/{file} is out of date with src/operator/crd/: run `cargo run -- crds`");
        // Client-side apply keeps the whole object in an annotation (256 KiB).
        assert!(want.len() < 256 * 1024, "{rel}/{file} is {} bytes", want.len());
    }
    let mut on_disk: Vec<String> =
        std::fs::read_dir(&dir).expect(rel).map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect();
    on_disk.sort();
    let mut generated: Vec<String> = defs.iter().map(|(f, _)| f.clone()).collect();
    generated.sort();
    assert_eq!(on_disk, generated, "{rel}/ holds files `hearth crds` does not write");
}

#[test]
fn crds_have_the_expected_names_scope_and_columns() {
    let defs = definitions();
    let names: Vec<&str> = defs.iter().map(|(_, c)| c.metadata.name.as_deref().unwrap_or("")).collect();
    assert_eq!(names, ["prometheuses.monitoring.hearth.dev", "servicemonitors.monitoring.hearth.dev", "alertrules.monitoring.hearth.dev"]);
    for (_, crd) in &defs {
        assert_eq!(crd.spec.scope, "Namespaced");
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, "v1alpha1");
        assert!(v.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some(), "status subresource");
        assert!(v.additional_printer_columns.as_ref().is_some_and(|c| c.len() >= 3), "printer columns");
        for c in v.additional_printer_columns.iter().flatten() {
            assert!(!c.json_path.contains("length()"), "kubectl JSONPath has no functions: {}", c.json_path);
        }
        let schema = serde_json::to_string(&v.schema).expect("schema json");
        assert!(schema.contains("x-kubernetes-validations"), "{} has CEL rules", crd.metadata.name.as_deref().unwrap_or(""));
    }
}

/// An Alertmanager entry is a Service or a URL: only `url` may stand alone,
/// and the CEL rule rejects an entry that mixes them or has neither (the
/// operator checks the same, tests/operator_preview.rs).
#[test]
fn alertmanager_entries_take_a_url_or_a_service() {
    let defs = definitions();
    let (_, crd) = defs.iter().find(|(_, c)| c.spec.names.kind == "Prometheus").expect("Prometheus CRD");
    let schema = serde_json::to_value(&crd.spec.versions[0].schema).expect("schema json");
    let entry = &schema["openAPIV3Schema"]["properties"]["spec"]["properties"]["alerting"]["properties"]["alertmanagers"]["items"];
    assert_eq!(entry["properties"]["url"]["type"], "string", "{entry}");
    assert!(entry.get("required").is_none(), "no field is required on its own: {}", entry["required"]);
    let rules: Vec<&str> =
        entry["x-kubernetes-validations"].as_array().expect("CEL rules").iter().filter_map(|r| r["rule"].as_str()).collect();
    assert_eq!(
        rules,
        [
            "has(self.url) ? !has(self.name) && !has(self.namespace) && !has(self.port) && !has(self.scheme) && !has(self.pathPrefix) : has(self.name) && has(self.port)",
            "!(has(self.basicAuth) && has(self.authorization))"
        ]
    );
}

/// The `openAPIV3Schema` of the CRD named `name`, as JSON.
fn schema_of(name: &str) -> serde_json::Value {
    let (_, crd) = definitions().into_iter().find(|(_, c)| c.metadata.name.as_deref() == Some(name)).expect(name);
    let v = &crd.spec.versions[0];
    serde_json::to_value(v.schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()).expect("schema")).expect("json")
}

/// The schema at `path` (property names; `[]` steps into array items).
fn at<'a>(schema: &'a serde_json::Value, path: &[&str]) -> &'a serde_json::Value {
    path.iter().fold(schema, |s, p| if *p == "[]" { &s["items"] } else { &s["properties"][p] })
}

fn rules(schema: &serde_json::Value) -> Vec<String> {
    schema["x-kubernetes-validations"].as_array().into_iter().flatten().filter_map(|r| r["rule"].as_str().map(String::from)).collect()
}

/// The CEL rules the API server enforces (checked against a real
/// kube-apiserver 1.33: they compile, fit the cost budget thanks to the
/// `maxItems` bounds, and reject what they should), where they belong.
#[test]
fn crds_state_the_exclusive_and_required_fields() {
    let unique = "self.all(g, self.exists_one(h, h.name == g.name))";
    let hashmod = "!has(self.action) || self.action.lowerAscii() != 'hashmod' || (has(self.modulus) && self.modulus > 0)";
    let one_auth = "!(has(self.basicAuth) && has(self.authorization))";

    let ar = schema_of("alertrules.monitoring.hearth.dev");
    let groups = at(&ar, &["spec", "groups"]);
    assert_eq!(rules(groups), [unique]);
    // exists_one inside all is quadratic: the API server accepts it only with bounds.
    assert_eq!(groups["maxItems"], 256);
    assert_eq!(at(groups, &["[]", "name"])["maxLength"], 253);

    let p = schema_of("prometheuses.monitoring.hearth.dev");
    assert!(rules(at(&p, &["spec", "alerting", "alertmanagers", "[]"])).contains(&one_auth.to_string()));
    // Without a bound the url-or-Service rule exceeds the cost budget (by 1.15x on kube-apiserver 1.33).
    assert_eq!(at(&p, &["spec", "alerting", "alertmanagers"])["maxItems"], 100);
    assert_eq!(rules(at(&p, &["spec", "remoteWrite", "[]"])), [one_auth]);
    assert_eq!(rules(at(&p, &["spec", "remoteWrite", "[]", "writeRelabelConfigs", "[]"])), [hashmod]);
    assert_eq!(at(&p, &["spec", "remoteWrite"])["maxItems"], 100);
    assert_eq!(at(&p, &["spec", "remoteWrite", "[]", "writeRelabelConfigs"])["maxItems"], 1000);

    let sm = schema_of("servicemonitors.monitoring.hearth.dev");
    let endpoint = at(&sm, &["spec", "endpoints", "[]"]);
    assert!(rules(endpoint).iter().any(|r| r.contains("has(self.bearerTokenSecret)")), "{:?}", rules(endpoint));
    // The pod's own token file is one more credential kind; caFile excludes
    // the ca Secret; both are absolute paths in the server pod.
    assert!(
        rules(endpoint).contains(
            &"(has(self.basicAuth) ? 1 : 0) + (has(self.authorization) ? 1 : 0) + (has(self.bearerTokenSecret) ? 1 : 0) + (has(self.bearerTokenFile) ? 1 : 0) <= 1"
                .to_string()
        ),
        "{:?}",
        rules(endpoint)
    );
    let absolute = ["self.startsWith('/')".to_string()];
    assert_eq!(rules(at(endpoint, &["bearerTokenFile"])), absolute);
    assert_eq!(rules(at(endpoint, &["tlsConfig"])), ["!(has(self.ca) && has(self.caFile))"]);
    assert_eq!(rules(at(endpoint, &["tlsConfig", "caFile"])), absolute);
    assert_eq!(at(&sm, &["spec", "endpoints"])["maxItems"], 100);
    for list in ["relabelings", "metricRelabelings"] {
        assert_eq!(rules(at(endpoint, &[list, "[]"])), [hashmod], "{list}");
        assert_eq!(at(endpoint, &[list])["maxItems"], 1000, "{list}");
        assert_eq!(at(endpoint, &[list, "[]", "action"])["maxLength"], 16, "{list}");
    }
}
