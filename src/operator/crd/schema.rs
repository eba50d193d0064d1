//! Schema overrides that keep the CRDs small: deeply nested Kubernetes
//! types whose full schema would push a CRD past what client-side `kubectl
//! apply` can store are accepted as opaque objects (the API server still
//! checks them where they are used, in the generated StatefulSet).

use schemars::{Schema, SchemaGenerator, json_schema};

/// An object the API server stores as given.
pub fn preserve_unknown_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true })
}

/// A list of such objects.
pub fn preserve_unknown_array(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "array", "items": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } })
}
