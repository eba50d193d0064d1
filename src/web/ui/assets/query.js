// The query page: expression box with history, a table tab (instant query)
// and a graph tab (range query). The state lives in the URL in Prometheus'
// format (g0.expr, g0.tab, g0.range_input, g0.end_input, g0.step_input,
// g0.stacked, g0.moment_input), so a copied link reproduces the view.
"use strict";

(function (H) {
  const h = H.h;
  const HISTORY_KEY = "hearth.history";
  const HISTORY_MAX = 50;
  const RANGES = ["1m", "5m", "15m", "30m", "1h", "2h", "3h", "6h", "12h", "1d", "2d", "1w", "2w", "4w", "8w", "26w", "1y"];
  const TABLE_MAX_ROWS = 10000;

  // The query state from URL parameters (Prometheus 2 names, and the
  // Prometheus 3 ones for links made there).
  function readState(params) {
    const g = (k) => params.get("g0." + k);
    const tab = g("tab");
    const endTime = g("end_time");
    const mode = g("display_mode");
    return {
      expr: g("expr") || "",
      tab: tab === "0" || tab === "graph" ? "graph" : "table",
      range: g("range_input") || "1h",
      end: g("end_input") || (endTime && H.parseTime(endTime) !== null ? H.formatTime(H.parseTime(endTime)) : ""),
      step: g("step_input") || g("res_step") || "",
      stacked: g("stacked") === "1" || mode === "stacked",
      moment: g("moment_input") || "",
    };
  }

  function writeState(st) {
    const p = new URLSearchParams();
    p.set("g0.expr", st.expr);
    p.set("g0.tab", st.tab === "graph" ? "0" : "1");
    p.set("g0.stacked", st.stacked ? "1" : "0");
    p.set("g0.range_input", st.range);
    if (st.end) p.set("g0.end_input", st.end);
    if (st.step) p.set("g0.step_input", st.step);
    if (st.moment) p.set("g0.moment_input", st.moment);
    return "?" + p.toString();
  }

  function loadHistory() {
    try {
      const v = JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]");
      return Array.isArray(v) ? v.filter((e) => typeof e === "string") : [];
    } catch (e) {
      return [];
    }
  }

  function saveHistory(expr) {
    const list = [expr, ...loadHistory().filter((e) => e !== expr)].slice(0, HISTORY_MAX);
    try {
      localStorage.setItem(HISTORY_KEY, JSON.stringify(list));
    } catch (e) { /* storage full or disabled: history is a convenience */ }
  }

  H.pages.graph = async function (main) {
    let st = readState(new URLSearchParams(location.search));
    let seq = 0;
    let lastMatrix = null;

    const expr = h("textarea", {
      id: "expr", class: "expr", rows: 1, spellcheck: "false", autocomplete: "off",
      placeholder: "Expression (press Enter to execute, Shift+Enter for a new line)",
      "aria-label": "Expression",
    });
    const execute = h("button", { id: "execute", type: "button", class: "primary" }, "Execute");
    const metrics = h("select", { id: "metric-picker", "aria-label": "Insert metric" }, h("option", { value: "" }, "Insert metric…"));
    const history = h("details", { id: "history", class: "history" });
    const error = h("div", { id: "query-error", class: "error", role: "alert", hidden: true });
    const info = h("div", { id: "query-info", class: "info" });
    const tabTable = h("button", { id: "tab-table", type: "button", class: "tab", role: "tab" }, "Table");
    const tabGraph = h("button", { id: "tab-graph", type: "button", class: "tab", role: "tab" }, "Graph");

    const moment = h("input", { id: "moment-input", type: "text", placeholder: "now (UTC)", size: 22, "aria-label": "Evaluation time" });
    const tableOut = h("div", { id: "table-result", class: "result" });
    const tablePanel = h("div", { id: "panel-table", class: "panel" },
      h("div", { class: "controls" }, h("label", {}, "Evaluation time ", moment)), tableOut);

    const rangeList = h("datalist", { id: "range-list" }, RANGES.map((r) => h("option", { value: r })));
    const range = h("input", { id: "range-input", type: "text", list: "range-list", size: 6, "aria-label": "Range" });
    const end = h("input", { id: "end-input", type: "text", placeholder: "now (UTC)", size: 22, "aria-label": "End time" });
    const step = h("input", { id: "step-input", type: "text", size: 8, "aria-label": "Resolution step" });
    const stacked = h("input", { id: "stacked", type: "checkbox" });
    const graphWrap = h("div", { id: "graph-wrap", class: "graph-wrap" });
    const shiftRange = (dir) => () => {
      const cur = H.parseDuration(range.value) ?? 3600000;
      const ms = RANGES.map(H.parseDuration);
      const next = dir < 0 ? ms.filter((m) => m < cur).pop() : ms.find((m) => m > cur);
      if (next) {
        range.value = RANGES[ms.indexOf(next)];
        run();
      }
    };
    const shiftEnd = (dir) => () => {
      const r = H.parseDuration(range.value) ?? 3600000;
      const cur = H.parseTime(end.value) ?? Date.now();
      const next = cur + dir * r;
      end.value = next >= Date.now() ? "" : H.formatTime(Math.floor(next / 1000) * 1000);
      run();
    };
    const graphPanel = h("div", { id: "panel-graph", class: "panel" },
      h("div", { class: "controls" },
        h("span", { class: "group" },
          h("button", { type: "button", title: "Shorter range", onclick: shiftRange(-1) }, "−"), range, rangeList,
          h("button", { type: "button", title: "Longer range", onclick: shiftRange(1) }, "+")),
        h("span", { class: "group" },
          h("button", { type: "button", title: "Earlier", onclick: shiftEnd(-1) }, "◀"), end,
          h("button", { type: "button", title: "Later", onclick: shiftEnd(1) }, "▶")),
        h("label", { class: "group" }, "Step ", step),
        h("label", { class: "group" }, stacked, " stacked")),
      graphWrap);

    main.append(h("section", { class: "query" },
      h("div", { class: "expr-row" }, expr, execute),
      h("div", { class: "expr-tools" }, metrics, history),
      error, info,
      h("div", { class: "tabs", role: "tablist" }, tabTable, tabGraph),
      tablePanel, graphPanel));

    function fill() {
      expr.value = st.expr;
      range.value = st.range;
      end.value = st.end;
      step.value = st.step;
      stacked.checked = st.stacked;
      moment.value = st.moment;
      resize();
      showTab();
    }

    function collect() {
      return {
        expr: expr.value.trim(), tab: st.tab, range: range.value.trim(), end: end.value.trim(),
        step: step.value.trim(), stacked: stacked.checked, moment: moment.value.trim(),
      };
    }

    function showTab() {
      tabTable.classList.toggle("active", st.tab === "table");
      tabGraph.classList.toggle("active", st.tab === "graph");
      tabTable.setAttribute("aria-selected", st.tab === "table");
      tabGraph.setAttribute("aria-selected", st.tab === "graph");
      tablePanel.hidden = st.tab !== "table";
      graphPanel.hidden = st.tab !== "graph";
      step.placeholder = "auto (" + H.formatDuration(autoStep(H.parseDuration(range.value) ?? 3600000)) + ")";
    }

    function resize() {
      expr.rows = Math.min(10, Math.max(1, expr.value.split("\n").length));
    }

    function renderHistory() {
      const list = loadHistory();
      H.replace(history, h("summary", {}, "History (" + list.length + ")"),
        h("ul", {}, list.map((e) => h("li", {}, h("button", {
          type: "button", class: "history-item", title: "Use this expression",
          onclick: () => {
            expr.value = e;
            resize();
            history.open = false;
            run();
          },
        }, e)))),
        list.length ? h("button", {
          type: "button", class: "link", onclick: () => {
            localStorage.removeItem(HISTORY_KEY);
            renderHistory();
          },
        }, "Clear history") : null);
    }

    function showError(msg) {
      error.textContent = msg || "";
      error.hidden = !msg;
    }

    // Runs the query of the current tab and records the state in the URL
    // (a new history entry when it changed).
    async function run() {
      st = collect();
      showTab();
      const url = writeState(st);
      if (url !== location.search) history_push(url);
      showError("");
      info.textContent = "";
      if (!st.expr) return;
      saveHistory(st.expr);
      renderHistory();
      const my = ++seq;
      const started = performance.now();
      try {
        const stats = st.tab === "graph" ? await runGraph(my) : await runTable(my);
        if (stats && my === seq) info.textContent = "Load time: " + Math.round(performance.now() - started) + "ms · " + stats;
      } catch (e) {
        if (my !== seq) return;
        showError(e.message);
        const out = st.tab === "graph" ? graphWrap : tableOut;
        out.dataset.state = "error";
      }
    }

    function history_push(search) {
      window.history.pushState(null, "", location.pathname + search);
    }

    function autoStep(rangeMs) {
      return Math.max(Math.floor(rangeMs / 250 / 1000), 1) * 1000;
    }

    async function runGraph(my) {
      graphWrap.dataset.state = "loading";
      const rangeMs = H.parseDuration(st.range);
      if (!rangeMs) throw new Error("invalid range " + JSON.stringify(st.range) + ": use a duration like 1h or 30m");
      const endMs = st.end ? H.parseTime(st.end) : Date.now();
      if (endMs === null) throw new Error("invalid end time " + JSON.stringify(st.end) + ": use YYYY-MM-DD HH:MM:SS (UTC)");
      const stepMs = st.step ? H.parseDuration(st.step) : autoStep(rangeMs);
      if (!stepMs) throw new Error("invalid step " + JSON.stringify(st.step) + ": use seconds or a duration like 15s");
      const startMs = endMs - rangeMs;
      const params = { query: st.expr, start: String(startMs / 1000), end: String(endMs / 1000), step: String(stepMs / 1000) };
      const body = await H.api("query_range", params);
      if (my !== seq) return null;
      if (body.data.resultType !== "matrix") throw new Error("the range query returned a " + body.data.resultType);
      lastMatrix = { result: body.data.result, opts: { startMs, endMs, stepMs, params, expr: st.expr } };
      draw();
      warnings(body);
      const points = body.data.result.reduce((n, s) => n + s.values.length, 0);
      return "Result series: " + body.data.result.length + " · Points: " + points + " · Step: " + H.formatDuration(stepMs);
    }

    function draw() {
      if (!lastMatrix) return;
      H.drawGraph(graphWrap, lastMatrix.result, Object.assign({ stacked: stacked.checked }, lastMatrix.opts));
      graphWrap.dataset.state = "ready";
    }

    async function runTable(my) {
      tableOut.dataset.state = "loading";
      const params = { query: st.expr };
      if (st.moment) {
        const t = H.parseTime(st.moment);
        if (t === null) throw new Error("invalid evaluation time " + JSON.stringify(st.moment) + ": use YYYY-MM-DD HH:MM:SS (UTC)");
        params.time = String(t / 1000);
      } else {
        params.time = String(Date.now() / 1000);
      }
      const body = await H.api("query", params);
      if (my !== seq) return null;
      const n = renderTable(body.data, params.time);
      warnings(body);
      tableOut.dataset.state = "ready";
      return "Result series: " + n;
    }

    function warnings(body) {
      const msgs = (body.warnings || []).map((w) => "Warning: " + w).concat((body.infos || []).map((w) => "Info: " + w));
      if (msgs.length) showError(msgs.join("\n"));
    }

    // Renders an instant result; returns the number of rows.
    function renderTable(data, time) {
      const res = data.result;
      let rows;
      switch (data.resultType) {
        case "vector":
          rows = res.map((s) => [H.labelsText(s.metric), s.value[1]]);
          break;
        case "matrix":
          rows = res.map((s) => [H.labelsText(s.metric), s.values.map(([t, v]) => v + " @" + t).join("\n")]);
          break;
        case "scalar":
          rows = [["scalar", res[1]]];
          break;
        default:
          rows = [["string", res[1]]];
      }
      const shown = rows.slice(0, TABLE_MAX_ROWS).map((r) => h("tr", { class: "sample" },
        h("td", { class: "series-labels" }, r[0]), h("td", { class: "value" }, r[1])));
      H.replace(tableOut,
        h("div", { class: "eval-time" }, "Evaluated at " + H.formatTime(Math.round(parseFloat(time) * 1000)) + " UTC · " +
          data.resultType),
        rows.length > TABLE_MAX_ROWS ? h("div", { class: "warning" }, "Showing " + TABLE_MAX_ROWS + " of " + rows.length + " rows.") : null,
        rows.length ? H.table(["Series", "Value"], shown, { class: "results", "data-time": time })
          : h("div", { class: "info" }, "Empty query result"));
      return rows.length;
    }

    async function loadMetrics() {
      try {
        const body = await H.api("label/__name__/values");
        metrics.append(...body.data.map((n) => h("option", { value: n }, n)));
      } catch (e) { /* the picker stays empty */ }
    }

    expr.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey) {
        ev.preventDefault();
        run();
      }
    });
    expr.addEventListener("input", resize);
    execute.addEventListener("click", run);
    metrics.addEventListener("change", () => {
      const name = metrics.value;
      if (!name) return;
      const [a, b] = [expr.selectionStart, expr.selectionEnd];
      expr.value = expr.value.slice(0, a) + name + expr.value.slice(b);
      expr.focus();
      expr.selectionStart = expr.selectionEnd = a + name.length;
      metrics.value = "";
    });
    for (const [btn, tab] of [[tabTable, "table"], [tabGraph, "graph"]]) {
      btn.addEventListener("click", () => {
        if (st.tab === tab) return;
        st.tab = tab;
        showTab();
        run();
      });
    }
    for (const el of [range, end, step, moment]) {
      el.addEventListener("change", run);
      el.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter") {
          ev.preventDefault();
          run();
        }
      });
    }
    stacked.addEventListener("change", () => {
      st.stacked = stacked.checked;
      window.history.replaceState(null, "", location.pathname + writeState(collect()));
      draw();
    });
    window.addEventListener("popstate", () => {
      st = readState(new URLSearchParams(location.search));
      fill();
      run();
    });

    fill();
    renderHistory();
    loadMetrics();
    if (st.expr) run(); else expr.focus();
  };
})(window.H);
