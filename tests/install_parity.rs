//! The two installs without which users could not choose freely: `helm
//! install` of charts/hearth and `kubectl apply --server-side` of
//! manifests/ (rendered from jsonnet/main.jsonnet) must create the same
//! objects with the same content, so the running system is the same.
//!
//! Allowed differences: the Namespace (Helm creates it with
//! `--create-namespace`) and the Grafana dashboard ConfigMaps (the Jsonnet
//! install's addition; docs/helm.md says how Helm users add them).

#[path = "support/chart.rs"]
mod chart;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

type Key = (String, String, String);

fn key(o: &Value) -> Key {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    (s(&o["kind"]), s(&o["metadata"]["namespace"]), s(&o["metadata"]["name"]))
}

fn by_key(objects: Vec<Value>) -> BTreeMap<Key, Value> {
    objects.into_iter().map(|o| (key(&o), o)).collect()
}

fn jsonnet_only(o: &Value) -> bool {
    o["kind"] == "Namespace" || o["metadata"]["labels"]["grafana_dashboard"] == "1"
}

#[test]
fn helm_and_manifests_install_the_same_objects() {
    let helm = by_key(chart::render(&["--include-crds"]).unwrap_or_else(|e| panic!("helm template: {e}")));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let mut manifests = Vec::new();
    for sub in [dir.join("setup"), dir.clone()] {
        for entry in std::fs::read_dir(&sub).unwrap_or_else(|e| panic!("{}: {e}", sub.display())) {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|x| x == "yaml") {
                let text = std::fs::read_to_string(&path).expect("read");
                manifests.push(serde_saphyr::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
            }
        }
    }
    let manifests = by_key(manifests.into_iter().filter(|o| !jsonnet_only(o)).collect());

    let helm_keys: Vec<&Key> = helm.keys().collect();
    let manifest_keys: Vec<&Key> = manifests.keys().collect();
    assert_eq!(helm_keys, manifest_keys, "the two installs create different objects");
    assert!(helm.len() >= 12, "the install is the operator, its RBAC, the CRDs and a Prometheus: {helm_keys:?}");
    for (k, h) in &helm {
        let m = &manifests[k];
        // Everything but Helm's own bookkeeping must be equal.
        for field in ["spec", "rules", "roleRef", "subjects", "data"] {
            assert_eq!(h[field], m[field], "{k:?}: `{field}` differs between Helm and manifests/");
        }
        assert_eq!(h["metadata"]["labels"], m["metadata"]["labels"], "{k:?}: labels differ");
        assert_eq!(h["apiVersion"], m["apiVersion"], "{k:?}");
    }
}
