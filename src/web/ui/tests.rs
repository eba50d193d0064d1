use super::*;

/// Serves the UI routes on a free loopback port; the server lives as long as the runtime.
async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, routes::<()>()).await });
    format!("http://{addr}")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().expect("client")
}

fn header(r: &reqwest::Response, name: header::HeaderName) -> &str {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test(flavor = "current_thread")]
async fn every_page_path_serves_the_page_with_a_strict_csp() {
    let base = serve().await;
    for p in PAGES {
        let r = client().get(format!("{base}{p}")).send().await.expect("get");
        assert_eq!(r.status(), 200, "{p}");
        assert_eq!(header(&r, header::CONTENT_TYPE), "text/html; charset=utf-8", "{p}");
        assert!(header(&r, header::CONTENT_SECURITY_POLICY).starts_with("default-src 'self'"), "{p}");
        assert_eq!(header(&r, header::CACHE_CONTROL), "no-cache", "{p}");
        let body = r.text().await.expect("body");
        assert!(body.contains("<main id=\"main\""), "{p}: {body:.200}");
        assert!(!body.contains("__VERSION__"), "version placeholder left in the page");
        assert!(body.contains(&format!("static/app.js?v={}", *VERSION)));
    }
    let r = client().get(format!("{base}/nope")).send().await.expect("get");
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "current_thread")]
async fn assets_have_their_content_types_and_cache_headers() {
    let base = serve().await;
    for (file, want) in
        [("style.css", "text/css; charset=utf-8"), ("app.js", "text/javascript; charset=utf-8"), ("favicon.svg", "image/svg+xml")]
    {
        let r = client().get(format!("{base}/static/{file}?v={}", *VERSION)).send().await.expect("get");
        assert_eq!(r.status(), 200, "{file}");
        assert_eq!(header(&r, header::CONTENT_TYPE), want, "{file}");
        assert_eq!(header(&r, header::CACHE_CONTROL), "public, max-age=31536000, immutable", "{file}");
        assert_eq!(header(&r, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        let etag = header(&r, header::ETAG).to_string();
        let body = r.bytes().await.expect("body");
        let asset = ASSETS.iter().find(|a| a.name == file).expect("asset");
        assert_eq!(&body[..], asset.body, "{file}");

        // Without the current version the browser must revalidate, and the ETag answers 304.
        let r = client().get(format!("{base}/static/{file}?v=old")).send().await.expect("get");
        assert_eq!(header(&r, header::CACHE_CONTROL), "no-cache");
        let r = client().get(format!("{base}/static/{file}")).header(header::IF_NONE_MATCH, &etag).send().await.expect("get");
        assert_eq!(r.status(), 304, "{file}");
        assert!(r.bytes().await.expect("body").is_empty());
    }
}

#[tokio::test(flavor = "current_thread")]
async fn unknown_static_paths_are_not_found() {
    let base = serve().await;
    for p in ["/static/nope.js", "/static/", "/static/js/app.js", "/static/..%2Fmod.rs", "/static/index.html"] {
        let r = client().get(format!("{base}{p}")).send().await.expect("get");
        assert_eq!(r.status(), 404, "{p}");
    }
}

#[test]
fn the_page_loads_every_asset_and_nothing_else() {
    let referenced: Vec<&str> = INDEX.split("static/").skip(1).filter_map(|s| s.split('?').next()).collect();
    let mut want: Vec<&str> = ASSETS.iter().map(|a| a.name).collect();
    let mut got = referenced.clone();
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, want);
    // Scripts run in the order of ASSETS: helpers first, the router (app.js) last.
    let scripts: Vec<&str> = referenced.iter().copied().filter(|n| n.ends_with(".js")).collect();
    let ordered: Vec<&str> = ASSETS.iter().map(|a| a.name).filter(|n| n.ends_with(".js")).collect();
    assert_eq!(scripts, ordered);
    assert_eq!(scripts.last(), Some(&"app.js"));
}

#[test]
fn no_inline_code_or_external_resources() {
    // The CSP (default-src 'self') would block inline code, and the UI
    // must work with no network beyond this server.
    assert!(!INDEX.contains(" style="), "inline style in index.html");
    let handler = regex::Regex::new(r"\son[a-z]+\s*=").expect("regex");
    assert!(!handler.is_match(INDEX), "inline event handler in index.html");
    for part in INDEX.split("<script").skip(1) {
        assert!(part.trim_start().starts_with("defer src=\"static/"), "inline or foreign script: {part:.80}");
    }
    for a in ASSETS {
        let text = std::str::from_utf8(a.body).expect("assets are text");
        for bad in ["http://", "https://", "@import", "innerHTML", "eval(", "new Function"] {
            // The SVG namespace URI is a name, not a resource.
            let hits = text.matches(bad).count() - text.matches("http://www.w3.org/2000/svg").count() * usize::from(bad == "http://");
            assert_eq!(hits, 0, "{} contains {bad:?}", a.name);
        }
    }
}

#[test]
fn every_url_is_relative() {
    // Absolute paths would break the UI behind a reverse proxy's path prefix.
    for bad in ["href=\"/", "src=\"/", "action=\"/"] {
        assert!(!INDEX.contains(bad), "index.html has an absolute URL ({bad})");
    }
    for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
        let text = std::str::from_utf8(a.body).expect("assets are text");
        for bad in ["\"/api", "'/api", "`/api", "\"/static", "href: \"/"] {
            assert!(!text.contains(bad), "{} has an absolute URL ({bad})", a.name);
        }
    }
}

#[test]
fn the_ui_stays_small() {
    let total: usize = ASSETS.iter().map(|a| a.body.len()).sum::<usize>() + INDEX.len();
    assert!(total < 100 * 1024, "UI assets are {total} bytes, over 100 KiB");
}
