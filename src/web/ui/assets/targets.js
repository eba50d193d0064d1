// The targets page: active targets grouped by scrape pool, with health, the
// labels after and before relabeling, the last scrape and its error.
"use strict";

(function (H) {
  const h = H.h;

  // Groups items by key(item) into a Map sorted by key.
  H.groupBy = function (items, key) {
    const m = new Map();
    for (const it of items) {
      const k = key(it);
      if (!m.has(k)) m.set(k, []);
      m.get(k).push(it);
    }
    return new Map([...m.entries()].sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  };

  // Text a search matches against: the endpoint and every label.
  H.searchText = (t) => [t.scrapeUrl || "", ...Object.entries(t.labels || t.discoveredLabels || {}).map(([k, v]) => k + "=" + v)]
    .join(" ").toLowerCase();

  function targetRow(t) {
    return h("tr", { class: "target health-" + t.health, "data-url": t.scrapeUrl, "data-search": H.searchText(t) },
      h("td", { class: "endpoint" }, h("a", { href: t.scrapeUrl, rel: "noreferrer" }, t.scrapeUrl)),
      h("td", {}, H.badge("health health-" + t.health, t.health.toUpperCase())),
      h("td", { class: "target-labels" }, H.labelChips(t.labels),
        h("details", { class: "discovered" }, h("summary", {}, "Before relabeling"), H.labelChips(t.discoveredLabels))),
      h("td", { class: "last-scrape" }, H.agoEl(t.lastScrape), h("div", { class: "muted" }, "every " + t.scrapeInterval)),
      h("td", { class: "duration" }, H.formatSeconds(t.lastScrapeDuration)),
      h("td", { class: "last-error" }, t.lastError || ""));
  }

  function poolSection(name, targets) {
    const up = targets.filter((t) => t.health === "up").length;
    const allUp = up === targets.length;
    return h("section", { class: "pool", "data-pool": name },
      h("details", { open: true },
        h("summary", {}, h("h2", {}, name, " ", H.badge(allUp ? "health health-up" : "health health-down", up + "/" + targets.length + " up"))),
        H.table(["Endpoint", "State", "Labels", "Last scrape", "Scrape duration", "Error"], targets.map(targetRow),
          { class: "targets" })));
  }

  H.pages.targets = async function (main) {
    const body = await H.api("targets", { state: "active" });
    const list = h("div", { id: "pools" });
    const unhealthy = h("input", { type: "checkbox", id: "unhealthy-only", checked: H.param("health") === "down" });
    const apply = () => {
      const q = search.value.toLowerCase();
      list.querySelectorAll("section.pool").forEach((sec) => {
        let shown = 0;
        sec.querySelectorAll("tr.target").forEach((tr) => {
          const ok = (!unhealthy.checked || !tr.classList.contains("health-up")) && tr.dataset.search.includes(q);
          tr.hidden = !ok;
          if (ok) shown++;
        });
        sec.hidden = shown === 0;
      });
    };
    const search = H.searchBox(apply);
    unhealthy.addEventListener("change", () => {
      H.setParam("health", unhealthy.checked ? "down" : "");
      apply();
    });
    const targets = body.data.activeTargets;
    const pools = H.groupBy(targets, (t) => t.scrapePool);
    const down = targets.filter((t) => t.health !== "up").length;
    main.append(
      h("div", { class: "page-head" }, h("h1", {}, "Targets"),
        h("span", { class: "muted" }, targets.length + " targets, " + down + " not up"),
        h("label", {}, unhealthy, " Unhealthy only"), search, H.refreshButton(() => location.reload())),
      list);
    list.append(...[...pools.entries()].map(([name, ts]) => poolSection(name, ts)));
    if (!targets.length) list.append(h("div", { class: "info" }, "No targets."));
    apply();
  };
})(window.H);
