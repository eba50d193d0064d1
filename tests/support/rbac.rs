//! What an API request needs from RBAC, and whether a list of
//! PolicyRules grants it (the API server's authorizer, for the
//! resource requests the operator makes).

use k8s_openapi::api::rbac::v1::PolicyRule;

/// One permission: `verb` on `resource` (`plural` or `plural/subresource`) of `group`,
/// or, when `resource` starts with `/`, on that non-resource URL (group empty).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    pub verb: String,
    pub group: String,
    pub resource: String,
}

impl Access {
    /// The permission a request needs, from its method, path and query
    /// (`/api/v1/...` or `/apis/GROUP/VERSION/...`, optionally under
    /// `namespaces/NS/`); None for paths that are no resource.
    pub fn of_request(method: &str, path: &str, query: &str) -> Option<Access> {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (group, rest) = match segs.as_slice() {
            ["api", _version, rest @ ..] => ("", rest),
            ["apis", group, _version, rest @ ..] => (*group, rest),
            _ => return None,
        };
        let rest = match rest {
            ["namespaces", _ns, inner @ ..] if !inner.is_empty() => inner,
            other => other,
        };
        let (plural, name, sub) = (rest.first()?, rest.get(1), rest.get(2));
        let resource = match sub {
            Some(s) => format!("{plural}/{s}"),
            None => plural.to_string(),
        };
        let watch = query.split('&').any(|kv| kv == "watch=true" || kv == "watch=1");
        let verb = match (method, name) {
            ("GET", _) if watch => "watch",
            ("GET", None) => "list",
            ("GET", Some(_)) => "get",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", None) => "deletecollection",
            ("DELETE", Some(_)) => "delete",
            _ => return None,
        };
        Some(Access { verb: verb.into(), group: group.into(), resource })
    }
}

/// Whether one of `rules` grants `a` (`*` matches anything, as in RBAC).
pub fn allows(rules: &[PolicyRule], a: &Access) -> bool {
    let has = |list: &[String], want: &str| list.iter().any(|x| x == "*" || x == want);
    if a.resource.starts_with('/') {
        // Non-resource URLs: exact, or a prefix ending in `*`.
        return rules.iter().any(|r| {
            has(&r.verbs, &a.verb)
                && r.non_resource_urls
                    .iter()
                    .flatten()
                    .any(|u| u == &a.resource || u.strip_suffix('*').is_some_and(|prefix| a.resource.starts_with(prefix)))
        });
    }
    rules.iter().any(|r| {
        has(r.api_groups.as_deref().unwrap_or_default(), &a.group)
            && has(r.resources.as_deref().unwrap_or_default(), &a.resource)
            && has(&r.verbs, &a.verb)
            && r.resource_names.as_deref().unwrap_or_default().is_empty()
    })
}

/// Every permission `rules` grant, one Access per group, resource and verb
/// (and per non-resource URL and verb).
pub fn expand(rules: &[PolicyRule]) -> Vec<Access> {
    let mut out = Vec::new();
    for r in rules {
        for group in r.api_groups.iter().flatten() {
            for resource in r.resources.iter().flatten() {
                for verb in &r.verbs {
                    out.push(Access { verb: verb.clone(), group: group.clone(), resource: resource.clone() });
                }
            }
        }
        for url in r.non_resource_urls.iter().flatten() {
            for verb in &r.verbs {
                out.push(Access { verb: verb.clone(), group: String::new(), resource: url.clone() });
            }
        }
    }
    out
}
