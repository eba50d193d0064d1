// The status page (build, runtime, flags, configuration, TSDB head
// cardinality) and the service discovery page (every discovered target and
// what relabeling made of it).
"use strict";

(function (H) {
  const h = H.h;

  // A section whose content comes from one API call; a failed call shows
  // its error in that section only.
  async function section(id, title, load, render) {
    const sec = h("section", { id, class: "status-section" }, h("h2", {}, title));
    try {
      sec.append(...[render(await load())].flat(Infinity).filter(Boolean));
    } catch (e) {
      sec.append(H.errorBox(e.message));
    }
    return sec;
  }

  const TSDB_TABLES = [
    ["seriesCountByMetricName", "Top 10 series count by metric names", "Name", "Count", "tsdb-metrics"],
    ["labelValueCountByLabelName", "Top 10 label names with value count", "Name", "Count", "tsdb-label-values"],
    ["memoryInBytesByLabelName", "Top 10 label names with high memory usage", "Name", "Bytes", "tsdb-label-memory"],
    ["seriesCountByLabelValuePair", "Top 10 series count by label value pairs", "Name", "Count", "tsdb-label-pairs"],
  ];

  function tsdb(d) {
    const hs = d.headStats;
    const time = (ms) => ms > 0 && ms < 8.64e15 ? H.formatTime(ms) + " UTC" : "none";
    return [
      h("h3", {}, "Head"),
      H.table(["Series", "Chunks", "Label pairs", "Min time", "Max time"],
        [[String(hs.numSeries), String(hs.chunkCount), String(hs.numLabelPairs), time(hs.minTime), time(hs.maxTime)]],
        { id: "tsdb-head" }),
      TSDB_TABLES.map(([key, title, name, value, id]) => [
        h("h3", {}, title),
        H.table([name, value], (d[key] || []).map((e) => [e.name, String(e.value)]), { id, class: "top10" }),
      ]),
    ];
  }

  H.pages.status = async function (main) {
    const get = (path) => () => H.api(path).then((b) => b.data);
    const copy = h("button", { type: "button", class: "refresh" }, "Copy");
    const sections = await Promise.all([
      section("build", "Build information", get("status/buildinfo"), (d) => H.kvTable(d, { id: "build-info" })),
      section("runtime", "Runtime information", get("status/runtimeinfo"), (d) => H.kvTable(d, { id: "runtime-info" })),
      section("flags", "Command-line flags", get("status/flags"), (d) => H.kvTable(d, { id: "flags-table" })),
      section("config", "Configuration", get("status/config"), (d) => {
        copy.addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText(d.yaml));
        return [copy, h("pre", { id: "config-yaml", class: "config" }, d.yaml)];
      }),
      section("tsdb", "TSDB status", get("status/tsdb"), tsdb),
    ]);
    const toc = h("nav", { class: "toc" }, sections.map((s) => h("a", { href: "#" + s.id }, s.querySelector("h2").textContent)));
    main.append(h("div", { class: "page-head" }, h("h1", {}, "Status"), toc), ...sections);
    if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
  };

  // At most this many targets of one pool are listed (the rest are counted).
  const SD_MAX_ROWS = 2000;

  function sdPool(name, active, dropped) {
    const rows = active.map((t) => ({ d: t.discoveredLabels, t, src: t })).concat(dropped.map((t) => ({ d: t.discoveredLabels, t: null, src: t })));
    const shown = rows.slice(0, SD_MAX_ROWS).map((r) => h("tr", {
      class: r.t ? "sd-target active" : "sd-target dropped", "data-search": H.searchText(r.src),
    },
    h("td", {}, H.labelChips(r.d)),
    h("td", {}, r.t ? H.labelChips(r.t.labels) : H.badge("dropped", "Dropped"))));
    return h("section", { class: "sd-pool", "data-pool": name },
      h("details", { open: rows.length <= 100 },
        h("summary", {}, h("h2", {}, name, " ", h("span", { class: "muted" },
          "(" + active.length + " active / " + dropped.length + " dropped)"))),
        rows.length > SD_MAX_ROWS ? h("div", { class: "warning" }, "Showing " + SD_MAX_ROWS + " of " + rows.length + " targets.") : null,
        H.table(["Discovered labels", "Target labels"], shown, { class: "sd" })));
  }

  H.pages["service-discovery"] = async function (main) {
    const body = await H.api("targets");
    const active = body.data.activeTargets || [];
    const dropped = body.data.droppedTargets || [];
    const pool = (t) => t.scrapePool || (t.discoveredLabels || {}).job || "";
    const a = H.groupBy(active, pool), d = H.groupBy(dropped, pool);
    const names = [...new Set([...a.keys(), ...d.keys()])].sort();
    const list = h("div", { id: "sd-pools" });
    const search = H.searchBox((q) => {
      q = q.toLowerCase();
      list.querySelectorAll("tr.sd-target").forEach((tr) => { tr.hidden = !tr.dataset.search.includes(q); });
    });
    main.append(h("div", { class: "page-head" }, h("h1", {}, "Service discovery"),
      h("span", { class: "muted" }, active.length + " active, " + dropped.length + " dropped"), search,
      H.refreshButton(() => location.reload())), list);
    list.append(...names.map((n) => sdPool(n, a.get(n) || [], d.get(n) || [])));
    if (!names.length) list.append(h("div", { class: "info" }, "Nothing discovered."));
    if (search.value) search.dispatchEvent(new Event("input"));
  };
})(window.H);
