// Shared helpers: DOM building (text only, never HTML strings), API calls,
// time and duration formatting. Everything hangs off the global `H`.
"use strict";
window.H = {};

(function (H) {
  // Page renderers by name, each an async function(main); app.js picks one.
  H.pages = {};
  const SVG_NS = "http://www.w3.org/2000/svg";

  function build(el, attrs, children) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (k === "text") el.textContent = v;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  // h("div", {class: "x", onclick: f}, "text", child, [more]) builds an element.
  H.h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
  // The same for SVG elements.
  H.s = (tag, attrs, ...children) => build(document.createElementNS(SVG_NS, tag), attrs, children);

  // GET api/v1/<path>: resolves to the whole answer ({data, warnings, infos}),
  // rejects with an Error whose message is the API's "errorType: error".
  H.api = async function (path, params) {
    // Relative to the page (so a path prefix is kept), without the user and
    // password of a page opened as user:pass@host in its URL (fetch refuses
    // those; the browser sends the credentials it already has).
    const url = new URL("api/v1/" + path, document.baseURI);
    url.username = url.password = "";
    if (params) url.search = new URLSearchParams(params).toString();
    let resp;
    try {
      resp = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    } catch (e) {
      throw new Error("cannot reach the server: " + e.message);
    }
    const text = await resp.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch (e) {
      throw new Error("HTTP " + resp.status + ": " + text.slice(0, 300));
    }
    if (body.status !== "success") {
      throw new Error((body.errorType ? body.errorType + ": " : "") + (body.error || "HTTP " + resp.status));
    }
    return body;
  };

  const UNITS = [["y", 31536000000], ["w", 604800000], ["d", 86400000], ["h", 3600000], ["m", 60000], ["s", 1000], ["ms", 1]];

  // A Prometheus duration ("1h30m", "5m", "1w", "250ms") or plain seconds
  // ("15", "0.5") in milliseconds; null if it is neither.
  H.parseDuration = function (s) {
    s = (s || "").trim();
    if (s === "") return null;
    if (/^\d+(\.\d+)?$/.test(s)) return Math.round(parseFloat(s) * 1000);
    const re = /(\d+)(ms|y|w|d|h|m|s)/y;
    let ms = 0, m;
    while ((m = re.exec(s)) !== null) {
      ms += parseInt(m[1], 10) * UNITS.find((u) => u[0] === m[2])[1];
      if (re.lastIndex === s.length) return ms;
    }
    return null;
  };

  // Milliseconds as a Prometheus duration: 5400000 -> "1h30m".
  H.formatDuration = function (ms) {
    if (ms === 0) return "0s";
    let out = "";
    for (const [u, n] of UNITS) {
      if (ms >= n) {
        out += Math.floor(ms / n) + u;
        ms %= n;
      }
    }
    return out;
  };

  const pad = (n, w) => String(n).padStart(w || 2, "0");

  // Milliseconds since the epoch as "YYYY-MM-DD HH:MM:SS" in UTC (with
  // ".mmm" when there are milliseconds).
  H.formatTime = function (ms) {
    const d = new Date(ms);
    const s = d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds());
    return d.getUTCMilliseconds() ? s + "." + pad(d.getUTCMilliseconds(), 3) : s;
  };

  // "YYYY-MM-DD HH:MM(:SS(.mmm))" (UTC), RFC 3339, or unix seconds, in
  // milliseconds; null if it is none of these.
  H.parseTime = function (s) {
    s = (s || "").trim();
    if (s === "") return null;
    if (/^\d+(\.\d+)?$/.test(s)) return Math.round(parseFloat(s) * 1000);
    const m = /^(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,3}))?)?(Z|[+-]\d\d:\d\d)?$/.exec(s);
    if (!m) return null;
    let ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0), +(m[7] || "0").padEnd(3, "0"));
    if (m[8] && m[8] !== "Z") {
      const sign = m[8][0] === "-" ? -1 : 1;
      ms -= sign * (parseInt(m[8].slice(1, 3), 10) * 60 + parseInt(m[8].slice(4), 10)) * 60000;
    }
    return isNaN(ms) ? null : ms;
  };

  // An API timestamp (RFC 3339) in milliseconds; null for Go's zero time.
  H.apiTime = function (s) {
    const ms = Date.parse(s);
    return isNaN(ms) || ms <= 0 ? null : ms;
  };

  // Seconds as a short human duration: "850µs", "12.3ms", "4.56s", "3m 5s".
  H.formatSeconds = function (s) {
    if (s < 0.001) return (s * 1e6).toFixed(0) + "µs";
    if (s < 1) return (s * 1000).toFixed(1) + "ms";
    if (s < 60) return s.toFixed(2) + "s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + "m " + Math.floor(s % 60) + "s";
    const h = Math.floor(m / 60);
    if (h < 48) return h + "h " + (m % 60) + "m";
    return Math.floor(h / 24) + "d " + (h % 24) + "h";
  };

  // "3.2s ago" for an API timestamp; "never" for the zero time.
  H.ago = function (iso) {
    const ms = H.apiTime(iso);
    if (ms === null) return "never";
    const s = Math.max(0, (Date.now() - ms) / 1000);
    return (s < 60 ? s.toFixed(1) + "s" : H.formatSeconds(s)) + " ago";
  };

  // A span saying how long ago an API timestamp was, kept current by tickAgo.
  H.agoEl = function (iso) {
    return H.h("span", { class: "ago", "data-time": iso, title: iso }, H.ago(iso));
  };

  // Refreshes every "… ago" on the page.
  H.tickAgo = function () {
    document.querySelectorAll("span.ago[data-time]").forEach((el) => { el.textContent = H.ago(el.dataset.time); });
  };

  // A label set as PromQL writes it: name{a="1", b="2"}.
  H.labelsText = function (metric) {
    const name = metric.__name__ || "";
    const rest = Object.keys(metric).filter((k) => k !== "__name__").sort()
      .map((k) => k + "=" + JSON.stringify(metric[k]));
    return rest.length || !name ? name + "{" + rest.join(", ") + "}" : name;
  };

  // Labels as a row of "name=value" chips.
  H.labelChips = function (labels) {
    return H.h("span", { class: "labels" },
      Object.keys(labels || {}).sort().map((k) => H.h("span", { class: "label" }, H.h("b", {}, k), "=", labels[k])));
  };

  // A table: head is a list of column titles, rows a list of cell lists
  // (each cell a string or a node); attrs apply to the <table>.
  H.table = function (head, rows, attrs) {
    return H.h("table", attrs || {},
      H.h("thead", {}, H.h("tr", {}, head.map((c) => H.h("th", {}, c)))),
      H.h("tbody", {}, rows.map((r) => r instanceof Node ? r : H.h("tr", {}, r.map((c) => H.h("td", {}, c))))));
  };

  // A two-column table of name/value pairs.
  H.kvTable = function (obj, attrs) {
    return H.table(["Name", "Value"], Object.keys(obj).map((k) => [k, String(obj[k])]), attrs);
  };

  // A badge for a health or state: up/down/unknown, ok/err, firing/pending/inactive.
  H.badge = function (kind, text) {
    return H.h("span", { class: "badge " + kind }, text);
  };

  // Replaces the children of `el`.
  H.replace = function (el, ...children) {
    el.textContent = "";
    for (const c of children.flat()) if (c) el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  };

  // An error box.
  H.errorBox = function (msg, attrs) {
    return H.h("div", Object.assign({ class: "error", role: "alert" }, attrs || {}), msg);
  };

  // Runs an async page renderer into `main`, marking it data-state=ready or error.
  H.run = async function (main, render) {
    main.dataset.state = "loading";
    try {
      await render(main);
      main.dataset.state = "ready";
    } catch (e) {
      main.appendChild(H.errorBox(e.message));
      main.dataset.state = "error";
    }
  };

  // A page's own URL parameter (filters), so a filtered view can be shared.
  H.param = (name) => new URLSearchParams(location.search).get(name) || "";

  // Sets (or with "" removes) a URL parameter without a new history entry.
  H.setParam = function (name, value) {
    const p = new URLSearchParams(location.search);
    if (value) p.set(name, value); else p.delete(name);
    const q = p.toString();
    window.history.replaceState(null, "", location.pathname + (q ? "?" + q : ""));
  };

  // A search box that calls onfilter(text) as the user types; its text is
  // kept in the URL parameter "search".
  H.searchBox = function (onfilter) {
    const box = H.h("input", { type: "search", class: "search", placeholder: "Filter by endpoint or labels", value: H.param("search") });
    box.addEventListener("input", () => {
      H.setParam("search", box.value);
      onfilter(box.value);
    });
    return box;
  };

  // A "Refresh" button that re-renders the page.
  H.refreshButton = function (onclick) {
    return H.h("button", { type: "button", class: "refresh", onclick }, "Refresh");
  };
})(window.H);
