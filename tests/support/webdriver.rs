//! A small W3C WebDriver client for tests/ui.rs: starts `chromedriver` on a
//! free loopback port, opens a headless Chromium session through it and
//! speaks the protocol over HTTP with reqwest. The session is closed and
//! chromedriver (with the browser it started) stopped by PID on drop, also
//! when the test panics.
//!
//! Included with `#[path]` rather than from support/mod.rs, so the other
//! tests that share `support` do not compile it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::procs::{Proc, free_ports, wait_for};

/// Where Debian's `chromium` and `chromium-driver` packages put the binaries.
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The key under which WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// What is missing for a browser test, or `None` when both binaries exist.
pub fn missing_binaries() -> Option<String> {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER].into_iter().filter(|p| !Path::new(p).exists()).collect();
    (!missing.is_empty()).then(|| missing.join(" and "))
}

/// A reference to an element of the current page.
#[derive(Clone, Debug)]
pub struct El(String);

impl El {
    /// The element as a script argument for [`Browser::exec`].
    pub fn arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.0 })
    }
}

pub struct Browser {
    base: String,
    session: String,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
    // Dropped after the session is deleted: chromedriver, then its profile directory.
    _driver: Proc,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session; logs go to `dir`.
    pub fn start(dir: &Path) -> Result<Browser, String> {
        let port = free_ports(1)[0];
        let mut cmd = Command::new(CHROMEDRIVER);
        cmd.arg(format!("--port={port}")).arg(format!("--log-path={}", dir.join("chromedriver-verbose.log").display()));
        let driver = Proc::spawn("chromedriver", cmd, &dir.join("chromedriver.log"));
        let base = format!("http://127.0.0.1:{port}");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| format!("tokio runtime: {e}"))?;
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().map_err(|e| e.to_string())?;
        let status_url = format!("{base}/status");
        wait_for("chromedriver to listen", Duration::from_secs(30), || {
            driver.check_alive()?;
            let v = rt.block_on(send(http.get(&status_url), None)).map(|(_, v)| v)?;
            if v["value"]["ready"] == true { Ok(()) } else { Err(format!("not ready: {v}")) }
        });
        let profile = tempfile::tempdir().map_err(|e| format!("profile dir: {e}"))?;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--window-size=1280,900", format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        }}});
        let (_, v) = rt.block_on(send(http.post(format!("{base}/session")), Some(caps))).map_err(|e| format!("POST /session: {e}"))?;
        let session = v["value"]["sessionId"].as_str().ok_or_else(|| format!("POST /session: no session: {v}"))?.to_string();
        Ok(Browser { base, session, http, rt, _driver: driver, _profile: profile })
    }

    /// One WebDriver command on the session; the answer's `value`.
    pub fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let (status, v) =
            self.rt.block_on(send(self.http.request(method.clone(), &url), body)).map_err(|e| format!("{method} {path}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{method} {path}: HTTP {status}: {} {}", v["value"]["error"], v["value"]["message"]));
        }
        Ok(v["value"].clone())
    }

    pub fn goto(&self, url: &str) -> Result<(), String> {
        self.cmd("POST", "/url", Some(json!({ "url": url }))).map(drop)
    }

    pub fn current_url(&self) -> Result<String, String> {
        self.cmd("GET", "/url", None)?.as_str().map(str::to_string).ok_or_else(|| "no URL".to_string())
    }

    /// The first element matching a CSS selector.
    pub fn find(&self, css: &str) -> Result<El, String> {
        let v = self.cmd("POST", "/element", Some(json!({"using": "css selector", "value": css})))?;
        v[ELEMENT_KEY].as_str().map(|id| El(id.to_string())).ok_or_else(|| format!("{css}: no element reference in {v}"))
    }

    pub fn click(&self, el: &El) -> Result<(), String> {
        self.cmd("POST", &format!("/element/{}/click", el.0), Some(json!({}))).map(drop)
    }

    /// Types `text` into the element (WebDriver key codes such as
    /// [`ENTER`] included).
    pub fn send_keys(&self, el: &El, text: &str) -> Result<(), String> {
        self.cmd("POST", &format!("/element/{}/value", el.0), Some(json!({ "text": text }))).map(drop)
    }

    pub fn clear(&self, el: &El) -> Result<(), String> {
        self.cmd("POST", &format!("/element/{}/clear", el.0), Some(json!({}))).map(drop)
    }

    /// The element's rendered text.
    pub fn text(&self, el: &El) -> Result<String, String> {
        Ok(self.cmd("GET", &format!("/element/{}/text", el.0), None)?.as_str().unwrap_or_default().to_string())
    }

    /// The element's computed value of a CSS property.
    pub fn css(&self, el: &El, property: &str) -> Result<String, String> {
        Ok(self.cmd("GET", &format!("/element/{}/css/{property}", el.0), None)?.as_str().unwrap_or_default().to_string())
    }

    /// Runs a script in the page (its body, with `arguments`); returns what it returns.
    pub fn exec(&self, script: &str, args: Vec<Value>) -> Result<Value, String> {
        self.cmd("POST", "/execute/sync", Some(json!({ "script": script, "args": args })))
    }

    /// Opens a new tab and switches to it.
    pub fn new_tab(&self) -> Result<(), String> {
        let v = self.cmd("POST", "/window/new", Some(json!({"type": "tab"})))?;
        let handle = v["handle"].as_str().ok_or_else(|| format!("no window handle: {v}"))?;
        self.cmd("POST", "/window", Some(json!({ "handle": handle }))).map(drop)
    }

    /// Polls `f` with this browser until it returns `Ok`, for at most
    /// `timeout`; panics with the last error and the page's text otherwise.
    pub fn wait<T>(&self, what: &str, timeout: Duration, mut f: impl FnMut(&Browser) -> Result<T, String>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            match f(self) {
                Ok(v) => return v,
                Err(e) if Instant::now() >= deadline => {
                    let page = self.exec("return document.body ? document.body.innerText : ''", vec![]).unwrap_or_default();
                    let url = self.current_url().unwrap_or_default();
                    panic!("timed out after {timeout:?} waiting for {what}: {e}\nat {url}; page text:\n{}", page.as_str().unwrap_or(""))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

/// Sends a request with an optional JSON body; the status and the JSON answer.
async fn send(req: reqwest::RequestBuilder, body: Option<Value>) -> Result<(reqwest::StatusCode, Value), String> {
    let req = match body {
        Some(b) => req.header("Content-Type", "application/json").body(b.to_string()),
        None => req,
    };
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    let v = serde_json::from_slice(&bytes).map_err(|e| format!("HTTP {status}, not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))?;
    Ok((status, v))
}

/// The Enter key, for [`Browser::send_keys`].
pub const ENTER: &str = "\u{E007}";

impl Drop for Browser {
    fn drop(&mut self) {
        // Closing the session ends the browser; chromedriver is stopped by
        // the `Proc` guard right after (signalling its process group).
        let url = format!("{}/session/{}", self.base, self.session);
        let http = self.http.clone();
        let _ = self.rt.block_on(async move { tokio::time::timeout(Duration::from_secs(15), http.delete(url).send()).await });
    }
}
