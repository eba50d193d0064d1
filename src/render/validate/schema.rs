//! A structural-schema validator for our custom resources, over the
//! `openAPIV3Schema` of the CRDs `hearth crds` writes: `type`,
//! `properties`, `required`, `additionalProperties`, `items`, `enum`,
//! `pattern`, `minLength`/`maxLength`, `minimum`/`maximum` (and their
//! exclusive forms), `minItems`/`maxItems`, `minProperties`/`maxProperties`,
//! `nullable`, `x-kubernetes-int-or-string` and
//! `x-kubernetes-preserve-unknown-fields`. CEL rules
//! (`x-kubernetes-validations`) are not evaluated: the API server checks
//! them at apply time.
//!
//! Unlike the API server, which prunes unknown fields, this reports them:
//! in a manifest they are always a mistake.

use serde_json::{Map, Value};

/// Checks `value` at `path` against `schema`, adding one message per problem to `errors`.
pub fn check(value: &Value, schema: &Value, path: &str, errors: &mut Vec<String>) {
    if value.is_null() {
        // The API server drops nulls of non-nullable fields; `required` catches those that matter.
        return;
    }
    let at = |message: String| format!("{}: {message}", if path.is_empty() { "(root)" } else { path });
    if flag(schema, "x-kubernetes-int-or-string") {
        if !(is_integer(value) || value.is_string()) {
            errors.push(at(format!("must be an integer or a string, not {}", type_name(value))));
        }
    } else if let Some(expected) = schema.get("type").and_then(Value::as_str)
        && !has_type(value, expected)
    {
        errors.push(at(format!("must be {}, not {}", article(expected), type_name(value))));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.iter().any(|a| same(a, value))
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        errors.push(at(format!("{value} is not one of {}", list.join(", "))));
    }
    match value {
        Value::String(s) => check_string(s, schema, &at, errors),
        Value::Number(n) => check_number(n.as_f64().unwrap_or(f64::NAN), schema, &at, errors),
        Value::Array(items) => check_array(items, schema, path, &at, errors),
        Value::Object(fields) => check_object(fields, schema, path, &at, errors),
        Value::Bool(_) | Value::Null => {}
    }
}

fn check_string(s: &str, schema: &Value, at: &dyn Fn(String) -> String, errors: &mut Vec<String>) {
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        match regex::Regex::new(pattern) {
            Ok(re) if !re.is_match(s) => errors.push(at(format!("{s:?} does not match the pattern {pattern}"))),
            Ok(_) => {}
            Err(e) => errors.push(at(format!("the schema's pattern {pattern} cannot be compiled: {e}"))),
        }
    }
    let chars = s.chars().count() as f64;
    if let Some(min) = number(schema, "minLength")
        && chars < min
    {
        errors.push(at(format!("{s:?} is shorter than {min} characters")));
    }
    if let Some(max) = number(schema, "maxLength")
        && chars > max
    {
        errors.push(at(format!("{s:?} is longer than {max} characters")));
    }
}

fn check_number(n: f64, schema: &Value, at: &dyn Fn(String) -> String, errors: &mut Vec<String>) {
    if let Some(min) = number(schema, "minimum") {
        let exclusive = flag(schema, "exclusiveMinimum");
        if n < min || (exclusive && n == min) {
            errors.push(at(format!("{n} is less than {}the minimum {min}", if exclusive { "or equal to " } else { "" })));
        }
    }
    if let Some(max) = number(schema, "maximum") {
        let exclusive = flag(schema, "exclusiveMaximum");
        if n > max || (exclusive && n == max) {
            errors.push(at(format!("{n} is greater than {}the maximum {max}", if exclusive { "or equal to " } else { "" })));
        }
    }
}

fn check_array(items: &[Value], schema: &Value, path: &str, at: &dyn Fn(String) -> String, errors: &mut Vec<String>) {
    let len = items.len() as f64;
    if let Some(min) = number(schema, "minItems")
        && len < min
    {
        errors.push(at(format!("has {len} items, fewer than {min}")));
    }
    if let Some(max) = number(schema, "maxItems")
        && len > max
    {
        errors.push(at(format!("has {len} items, more than {max}")));
    }
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            check(item, item_schema, &format!("{path}[{i}]"), errors);
        }
    }
}

fn check_object(fields: &Map<String, Value>, schema: &Value, path: &str, at: &dyn Fn(String) -> String, errors: &mut Vec<String>) {
    let child = |key: &str| if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
    for required in schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        let nullable = schema.pointer(&format!("/properties/{}/nullable", required.replace('~', "~0").replace('/', "~1")));
        match fields.get(required) {
            None => errors.push(format!("{}: required field is missing", child(required))),
            Some(Value::Null) if nullable != Some(&Value::Bool(true)) => {
                errors.push(format!("{}: required field is null", child(required)))
            }
            Some(_) => {}
        }
    }
    let count = fields.len() as f64;
    if let Some(min) = number(schema, "minProperties")
        && count < min
    {
        errors.push(at(format!("has {count} fields, fewer than {min}")));
    }
    if let Some(max) = number(schema, "maxProperties")
        && count > max
    {
        errors.push(at(format!("has {count} fields, more than {max}")));
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
    for (key, value) in fields {
        match (properties.and_then(|p| p.get(key)), schema.get("additionalProperties")) {
            (Some(field_schema), _) => check(value, field_schema, &child(key), errors),
            (None, Some(Value::Bool(true))) => {}
            (None, Some(extra @ Value::Object(_))) => check(value, extra, &child(key), errors),
            (None, _) if preserve => {}
            (None, _) => errors.push(format!("{}: unknown field", child(key))),
        }
    }
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn number(schema: &Value, key: &str) -> Option<f64> {
    schema.get(key).and_then(Value::as_f64)
}

fn is_integer(value: &Value) -> bool {
    value.as_i64().is_some() || value.as_u64().is_some() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
}

fn has_type(value: &Value, expected: &str) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => is_integer(value),
        "number" => value.is_number(),
        _ => true,
    }
}

/// JSON equality with numbers compared by value (Jsonnet writes `1` where Rust writes `1.0`).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w))),
        _ => a == b,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) if is_integer(value) => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn article(ty: &str) -> String {
    match ty {
        "object" | "array" | "integer" => format!("an {ty}"),
        _ => format!("a {ty}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(value: Value, schema: Value) -> Vec<String> {
        let mut e = Vec::new();
        check(&value, &schema, "spec", &mut e);
        e
    }

    #[test]
    fn reports_type_enum_pattern_and_bounds() {
        let schema = json!({"type": "object", "properties": {
            "n": {"type": "integer", "minimum": 1, "maximum": 3},
            "s": {"type": "string", "enum": ["a", "b"]},
            "p": {"type": "string", "pattern": "^[0-9]+s$"},
            "l": {"type": "array", "maxItems": 1, "items": {"type": "boolean"}}
        }});
        assert_eq!(errors(json!({"n": 2, "s": "a", "p": "5s", "l": [true]}), schema.clone()), Vec::<String>::new());
        assert_eq!(
            errors(json!({"n": 0, "s": "c", "p": "5m", "l": [true, 1]}), schema.clone()),
            vec![
                "spec.l: has 2 items, more than 1",
                "spec.l[1]: must be a boolean, not an integer",
                "spec.n: 0 is less than the minimum 1",
                "spec.p: \"5m\" does not match the pattern ^[0-9]+s$",
                "spec.s: \"c\" is not one of \"a\", \"b\"",
            ]
        );
        assert_eq!(errors(json!({"n": 1.5}), schema), vec!["spec.n: must be an integer, not a number"]);
    }

    #[test]
    fn unknown_fields_are_errors_unless_preserved_or_a_map() {
        let schema = json!({"type": "object", "required": ["a"], "properties": {
            "a": {"type": "string"},
            "m": {"type": "object", "additionalProperties": {"type": "string"}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "n": {"type": "string", "nullable": true}
        }});
        assert_eq!(errors(json!({"a": "x", "m": {"k": "v"}, "free": {"any": [1]}, "n": null}), schema.clone()), Vec::<String>::new());
        assert_eq!(
            errors(json!({"b": 1, "m": {"k": 2}}), schema),
            vec!["spec.a: required field is missing", "spec.b: unknown field", "spec.m.k: must be a string, not an integer"]
        );
    }

    #[test]
    fn int_or_string_accepts_both_and_nothing_else() {
        let schema = json!({"x-kubernetes-int-or-string": true});
        assert!(errors(json!(8080), schema.clone()).is_empty());
        assert!(errors(json!("metrics"), schema.clone()).is_empty());
        assert_eq!(errors(json!(true), schema), vec!["spec: must be an integer or a string, not a boolean"]);
    }
}
