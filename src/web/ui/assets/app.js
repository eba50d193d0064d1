// Picks the page from the last segment of the URL path and renders it.
"use strict";

(function (H) {
  const ALIASES = { "": "graph", query: "graph" };
  const TITLES = {
    graph: "Query", alerts: "Alerts", rules: "Rules", targets: "Targets", "service-discovery": "Service discovery", status: "Status",
  };

  function start() {
    const last = location.pathname.split("/").pop();
    const page = ALIASES[last] ?? last;
    const main = document.getElementById("main");
    main.textContent = "";
    document.querySelectorAll("header.top nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
    document.title = (TITLES[page] || "Not found") + " · Hearth";
    document.body.dataset.page = page;
    const render = H.pages[page];
    if (!render) {
      main.append(H.errorBox("No such page: " + last));
      main.dataset.state = "error";
      return;
    }
    H.run(main, render);
    setInterval(H.tickAgo, 1000);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})(window.H);
