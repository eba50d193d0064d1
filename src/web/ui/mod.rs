//! The browser UI: a few static pages (query and graph, alerts, rules,
//! targets, service discovery, status) that read the Prometheus HTTP API.
//!
//! Everything is embedded in the binary, so the UI works without network
//! access beyond the server itself. The pages are one HTML document served
//! at each page's own URL (so every page can be bookmarked and shared); the
//! script picks the page from the last path segment. All URLs in the
//! document are relative, which keeps the UI working behind a reverse proxy
//! that adds a path prefix.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file under `/static/`.
struct Asset {
    name: &'static str,
    body: &'static [u8],
    content_type: &'static str,
}

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// The files under `/static/`, in the order the page loads the scripts.
const ASSETS: &[Asset] = &[
    Asset { name: "style.css", body: include_bytes!("assets/style.css"), content_type: CSS },
    Asset { name: "favicon.svg", body: include_bytes!("assets/favicon.svg"), content_type: "image/svg+xml" },
    Asset { name: "util.js", body: include_bytes!("assets/util.js"), content_type: JS },
    Asset { name: "graph.js", body: include_bytes!("assets/graph.js"), content_type: JS },
    Asset { name: "query.js", body: include_bytes!("assets/query.js"), content_type: JS },
    Asset { name: "targets.js", body: include_bytes!("assets/targets.js"), content_type: JS },
    Asset { name: "rules.js", body: include_bytes!("assets/rules.js"), content_type: JS },
    Asset { name: "status.js", body: include_bytes!("assets/status.js"), content_type: JS },
    Asset { name: "app.js", body: include_bytes!("assets/app.js"), content_type: JS },
];

const INDEX: &str = include_str!("assets/index.html");

/// The paths that serve the page; `/` and `/query` open the query page, as
/// `/graph` does (the path alerts' generator URLs point at).
pub const PAGES: &[&str] = &["/", "/graph", "/query", "/alerts", "/rules", "/targets", "/service-discovery", "/status"];

/// Scripts and styles only from this server: no inline code, no CDN.
const CSP: &str = "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'";

/// A hash of every asset. The page requests `static/<file>?v=<version>`, so a
/// browser may keep those for good: a new binary with other assets links to
/// other URLs.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut all = Vec::new();
    for a in ASSETS {
        all.extend_from_slice(a.name.as_bytes());
        all.extend_from_slice(a.body);
    }
    all.extend_from_slice(INDEX.as_bytes());
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&all))
});

/// The page with the asset version filled in.
static PAGE: LazyLock<String> = LazyLock::new(|| INDEX.replace("__VERSION__", &VERSION));

/// The UI's routes; they need no server state.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut r = Router::new();
    for p in PAGES {
        r = r.route(p, get(page));
    }
    r.route("/static/{*file}", get(asset))
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        PAGE.as_str(),
    )
        .into_response()
}

async fn asset(Path(file): Path<String>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == file) else {
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "404 page not found\n").into_response();
    };
    let etag = format!("\"{}\"", *VERSION);
    // Versioned URLs never change; others are revalidated with the ETag.
    let versioned = query.as_deref().is_some_and(|q| q.split('&').any(|kv| kv.strip_prefix("v=") == Some(VERSION.as_str())));
    let cache = if versioned { "public, max-age=31536000, immutable" } else { "no-cache" };
    let etag_value = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    let fresh = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let common = [(header::CACHE_CONTROL, HeaderValue::from_static(cache)), (header::ETAG, etag_value)];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(a.content_type)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        a.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests;
