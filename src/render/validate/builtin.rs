//! Built-in kinds (and CustomResourceDefinitions): the object must
//! deserialize into its k8s-openapi type, and every field it sets must
//! survive the round trip through that type — a field the type drops is one
//! the API server would not know.

use k8s_openapi::Resource;
use k8s_openapi::api::{apps, autoscaling, batch, coordination, core, networking, policy, rbac, storage};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Checks one value, returning `path: message` for each problem.
type Checker = fn(&Value) -> Vec<String>;

macro_rules! builtins {
    ($($t:ty),* $(,)?) => {
        &[$((<$t as Resource>::API_VERSION, <$t as Resource>::KIND, check_as::<$t> as Checker)),*]
    };
}

/// The kinds a manifest may hold besides our custom resources.
static BUILTINS: &[(&str, &str, Checker)] = builtins![
    core::v1::Namespace,
    core::v1::ServiceAccount,
    core::v1::Service,
    core::v1::ConfigMap,
    core::v1::Secret,
    core::v1::Pod,
    core::v1::PersistentVolumeClaim,
    core::v1::LimitRange,
    core::v1::ResourceQuota,
    apps::v1::Deployment,
    apps::v1::StatefulSet,
    apps::v1::DaemonSet,
    batch::v1::Job,
    batch::v1::CronJob,
    rbac::v1::ClusterRole,
    rbac::v1::ClusterRoleBinding,
    rbac::v1::Role,
    rbac::v1::RoleBinding,
    policy::v1::PodDisruptionBudget,
    networking::v1::NetworkPolicy,
    networking::v1::Ingress,
    autoscaling::v2::HorizontalPodAutoscaler,
    coordination::v1::Lease,
    storage::v1::StorageClass,
    apiextensions::v1::CustomResourceDefinition,
];

/// The checker of a built-in `apiVersion`/`kind`, if it is one.
pub fn checker(api_version: &str, kind: &str) -> Option<Checker> {
    BUILTINS.iter().find(|(v, k, _)| *v == api_version && *k == kind).map(|(_, _, c)| *c)
}

/// Checks `metadata` of any object as an `ObjectMeta`.
pub fn check_metadata(metadata: &Value) -> Vec<String> {
    check_as::<ObjectMeta>(metadata).into_iter().map(|e| format!("metadata.{e}")).collect()
}

fn check_as<T: DeserializeOwned + Serialize>(value: &Value) -> Vec<String> {
    let typed: T = match serde_path_to_error::deserialize(value) {
        Ok(t) => t,
        Err(e) => return vec![format!("{}: {}", e.path(), e.inner())],
    };
    match serde_json::to_value(&typed) {
        Ok(back) => {
            let mut errors = Vec::new();
            unknown_fields(value, &back, "", &mut errors);
            errors
        }
        Err(e) => vec![format!("(root): cannot be encoded again: {e}")],
    }
}

/// Fields set in `input` that `typed` (its round trip) no longer has.
fn unknown_fields(input: &Value, typed: &Value, path: &str, errors: &mut Vec<String>) {
    match (input, typed) {
        (Value::Object(fields), Value::Object(kept)) => {
            for (key, value) in fields {
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                match kept.get(key) {
                    _ if value.is_null() => {}
                    Some(back) => unknown_fields(value, back, &child, errors),
                    None => errors.push(format!("{child}: unknown field")),
                }
            }
        }
        (Value::Array(items), Value::Array(kept)) => {
            for (i, (item, back)) in items.iter().zip(kept).enumerate() {
                unknown_fields(item, back, &format!("{path}[{i}]"), errors);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(value: Value) -> Vec<String> {
        let (v, k) = (value["apiVersion"].as_str().unwrap_or(""), value["kind"].as_str().unwrap_or(""));
        match checker(v, k) {
            Some(c) => c(&value),
            None => vec!["no checker".into()],
        }
    }

    #[test]
    fn a_valid_deployment_passes() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a", "labels": {"x": "y"}},
            "spec": {"selector": {"matchLabels": {"x": "y"}}, "template": {"metadata": {"labels": {"x": "y"}},
            "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"name": "m", "containerPort": 8080}],
            "resources": {"requests": {"cpu": "50m"}}, "readinessProbe": {"httpGet": {"path": "/", "port": "m"}}}]}}}});
        assert_eq!(check(d), Vec::<String>::new());
    }

    #[test]
    fn unknown_fields_and_wrong_types_name_their_path() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "imagePullPolice": "Always"}]}}}});
        assert_eq!(check(d), vec!["spec.template.spec.containers[0].imagePullPolice: unknown field"]);
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}, "spec": {"selector": {}, "replicas": "two", "template": {}}});
        let e = check(d);
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("spec.replicas: invalid type"), "{e:?}");
    }

    #[test]
    fn metadata_is_checked_as_object_meta() {
        assert_eq!(check_metadata(&json!({"name": "a", "lables": {}})), vec!["metadata.lables: unknown field"]);
        assert!(checker("example.com/v1", "Widget").is_none());
    }
}
