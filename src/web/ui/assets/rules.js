// The alerts page (alerting rules by group with their active alerts) and
// the rules page (every rule group: rules, health, errors, timing).
"use strict";

(function (H) {
  const h = H.h;
  const STATES = ["firing", "pending", "inactive"];

  // A link to the query page showing expr in the table tab.
  function queryLink(expr) {
    const p = new URLSearchParams({ "g0.expr": expr, "g0.tab": "1" });
    return h("a", { href: "graph?" + p.toString(), title: "Open in the query page" }, expr);
  }

  function yamlMap(key, obj) {
    const keys = Object.keys(obj || {}).sort();
    return keys.length ? "\n" + key + ":" + keys.map((k) => "\n  " + k + ": " + JSON.stringify(obj[k])).join("") : "";
  }

  // A rule as YAML, with its expression linking to the query page.
  H.ruleDefinition = function (r) {
    const alerting = r.type === "alerting";
    const hold = alerting && r.duration ? "\nfor: " + H.formatDuration(r.duration * 1000) : "";
    const keep = alerting && r.keepFiringFor ? "\nkeep_firing_for: " + H.formatDuration(r.keepFiringFor * 1000) : "";
    return h("pre", { class: "rule-def" },
      (alerting ? "alert: " : "record: ") + r.name + "\nexpr: ", queryLink(r.query),
      hold + keep + yamlMap("labels", r.labels) + (alerting ? yamlMap("annotations", r.annotations) : ""));
  };

  function annotations(a) {
    const keys = Object.keys(a || {}).sort();
    return h("dl", { class: "annotations" }, keys.map((k) => [h("dt", {}, k), h("dd", {}, a[k])]));
  }

  function alertsTable(alerts) {
    return H.table(["Labels", "State", "Active since", "Value", "Annotations"], alerts.map((a) =>
      h("tr", { class: "alert state-" + a.state },
        h("td", {}, H.labelChips(a.labels)),
        h("td", {}, H.badge("state state-" + a.state, a.state.toUpperCase())),
        h("td", { class: "active-since" }, H.formatTime(H.apiTime(a.activeAt) || 0) + " UTC", h("div", { class: "muted" }, H.agoEl(a.activeAt))),
        h("td", { class: "value" }, a.value),
        h("td", {}, annotations(a.annotations)))), { class: "alerts" });
  }

  function alertRule(r) {
    const n = (r.alerts || []).length;
    return h("details", { class: "alert-rule state-" + r.state, "data-name": r.name, "data-state": r.state, open: r.state !== "inactive" },
      h("summary", {}, H.badge("state state-" + r.state, r.state.toUpperCase()), " ", h("b", {}, r.name), " ",
        h("span", { class: "muted" }, "(" + n + " active)")),
      H.ruleDefinition(r),
      n ? alertsTable(r.alerts) : null);
  }

  H.pages.alerts = async function (main) {
    const body = await H.api("rules", { type: "alert" });
    const groups = body.data.groups;
    const counts = { firing: 0, pending: 0, inactive: 0 };
    groups.forEach((g) => g.rules.forEach((r) => { counts[r.state] = (counts[r.state] || 0) + 1; }));
    const hiddenStates = new Set(H.param("hide").split(",").filter(Boolean));
    const list = h("div", { id: "alert-groups" });
    const apply = () => {
      list.querySelectorAll(".alert-rule").forEach((d) => { d.hidden = hiddenStates.has(d.dataset.state); });
      list.querySelectorAll("section.group").forEach((s) => { s.hidden = !s.querySelector(".alert-rule:not([hidden])"); });
    };
    const toggles = STATES.map((s) => {
      const box = h("input", { type: "checkbox", checked: !hiddenStates.has(s), "data-state": s });
      box.addEventListener("change", () => {
        if (box.checked) hiddenStates.delete(s); else hiddenStates.add(s);
        H.setParam("hide", [...hiddenStates].join(","));
        apply();
      });
      return h("label", { class: "state-filter" }, box, " ", H.badge("state state-" + s, s), " ",
        h("span", { class: "count", id: "count-" + s }, String(counts[s])));
    });
    main.append(h("div", { class: "page-head" }, h("h1", {}, "Alerts"), toggles, H.refreshButton(() => location.reload())), list);
    for (const g of groups) {
      if (!g.rules.length) continue;
      list.append(h("section", { class: "group", "data-group": g.name },
        h("h2", {}, g.name, " ", h("span", { class: "muted" }, g.file)), g.rules.map(alertRule)));
    }
    if (!list.children.length) list.append(h("div", { class: "info" }, "No alerting rules."));
    apply();
  };

  function ruleRow(r) {
    const health = r.health === "ok" ? "ok" : r.health === "err" ? "err" : "unknown";
    return h("tr", { class: "rule health-" + health, "data-name": r.name },
      h("td", {}, H.ruleDefinition(r), r.lastError ? h("div", { class: "error rule-error" }, r.lastError) : null),
      h("td", {}, H.badge("health health-" + health, r.health)),
      h("td", {}, H.agoEl(r.lastEvaluation)),
      h("td", {}, H.formatSeconds(r.evaluationTime)));
  }

  H.pages.rules = async function (main) {
    const body = await H.api("rules");
    const groups = body.data.groups;
    main.append(h("div", { class: "page-head" }, h("h1", {}, "Rules"), H.refreshButton(() => location.reload())));
    for (const g of groups) {
      main.append(h("section", { class: "group", "data-group": g.name },
        h("h2", {}, g.name),
        h("div", { class: "muted group-meta" }, g.file + " · every " + H.formatDuration(g.interval * 1000) + " · last evaluation ",
          H.agoEl(g.lastEvaluation), " · took " + H.formatSeconds(g.evaluationTime)),
        H.table(["Rule", "Health", "Last evaluation", "Evaluation time"], g.rules.map(ruleRow), { class: "rules" })));
    }
    if (!groups.length) main.append(h("div", { class: "info" }, "No rule groups. Add rule files with rule_files: in the configuration."));
  };
})(window.H);
