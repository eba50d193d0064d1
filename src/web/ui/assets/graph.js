// The time-series graph: an SVG with time and value axes, one path per
// series, optional stacking, a legend and a hover tooltip.
//
// Each series' <path class="series"> carries data-series (its labels as
// JSON) and data-points (the [time, "value"] pairs exactly as the API
// returned them), so what is plotted can be read back from the page.
"use strict";

(function (H) {
  const PALETTE = ["#1f77b4", "#e6550d", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"];
  const HEIGHT = 340;
  const M = { l: 64, r: 14, t: 10, b: 26 };
  // At most this many series are drawn; the rest are counted in a note.
  const MAX_SERIES = 1000;

  // A distinct color for series number i.
  H.color = (i) => i < PALETTE.length ? PALETTE[i] : "hsl(" + Math.round((i * 137.508) % 360) + ",65%,42%)";

  // An API sample value as a number ("+Inf", "-Inf" and "NaN" included).
  H.sampleValue = function (s) {
    if (s === "+Inf" || s === "Inf") return Infinity;
    if (s === "-Inf") return -Infinity;
    return parseFloat(s);
  };

  // About n round tick values covering [lo, hi].
  function niceTicks(lo, hi, n) {
    const raw = (hi - lo) / n;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / mag;
    const step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
    const first = Math.floor(lo / step) * step;
    const ticks = [];
    for (let v = first; v <= hi + step * 0.5; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return ticks;
  }

  const SI = [[1e18, "E"], [1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  const SI_SMALL = [[1e-3, "m"], [1e-6, "µ"], [1e-9, "n"], [1e-12, "p"]];

  // A tick label: 1500 -> "1.5k", 0.002 -> "2m".
  function tickLabel(v) {
    const a = Math.abs(v);
    if (a === 0) return "0";
    const trim = (x) => String(parseFloat(x.toPrecision(4)));
    for (const [n, s] of SI) if (a >= n) return trim(v / n) + s;
    if (a >= 1) return trim(v);
    for (const [n, s] of SI_SMALL) if (a >= n) return trim(v / n) + s;
    return v.toExponential(2);
  }

  const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
    172800, 604800, 1209600, 2592000].map((s) => s * 1000);

  // Time ticks (ms) for [start, end] at least ~90 px apart, aligned in UTC.
  function timeTicks(start, end, width) {
    const want = Math.max(2, Math.floor(width / 90));
    const step = TIME_STEPS.find((s) => (end - start) / s <= want) || TIME_STEPS[TIME_STEPS.length - 1];
    const ticks = [];
    for (let t = Math.ceil(start / step) * step; t <= end; t += step) ticks.push(t);
    return { ticks, step };
  }

  function timeLabel(t, step, span) {
    const s = H.formatTime(t - (t % 1000)); // "YYYY-MM-DD HH:MM:SS"
    if (step >= 86400000) return s.slice(5, 10);
    const clock = step < 60000 ? s.slice(11, 19) : s.slice(11, 16);
    return span > 86400000 ? s.slice(5, 10) + " " + clock : clock;
  }

  // Works out each series' points, their stacked base when stacking, and
  // the value range.
  function prepare(result, opts) {
    const base = new Map();
    let lo = Infinity, hi = -Infinity;
    const series = result.slice(0, MAX_SERIES).map((r, i) => {
      const pts = r.values.map(([t, v]) => {
        const ms = Math.round(t * 1000), val = H.sampleValue(v);
        let y0 = null, y1 = val;
        if (opts.stacked && isFinite(val)) {
          const k = Math.round((ms - opts.startMs) / opts.stepMs);
          y0 = base.get(k) || 0;
          y1 = y0 + val;
          base.set(k, y1);
        }
        if (isFinite(y1)) {
          lo = Math.min(lo, y1, y0 === null ? y1 : y0);
          hi = Math.max(hi, y1, y0 === null ? y1 : y0);
        }
        return { t: ms, raw: v, y0, y1 };
      });
      return { i, metric: r.metric, values: r.values, pts, color: H.color(i) };
    });
    if (lo === Infinity) [lo, hi] = [0, 1];
    if (lo === hi) {
      const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
      [lo, hi] = [lo - pad, hi + pad];
    }
    return { series, lo, hi };
  }

  // Splits points into runs without gaps: a gap is a missing step or a
  // value that is not finite.
  function segments(pts, stepMs) {
    const out = [];
    let cur = null, prev = null;
    for (const p of pts) {
      if (!isFinite(p.y1)) {
        prev = null;
        continue;
      }
      if (prev === null || p.t - prev.t > stepMs * 1.5) out.push(cur = []);
      cur.push(p);
      prev = p;
    }
    return out;
  }

  // Draws `result` (a matrix) into `wrap`. opts: startMs, endMs, stepMs,
  // stacked, and params (the strings sent to the API, kept as data-*).
  H.drawGraph = function (wrap, result, opts) {
    const width = Math.max(320, wrap.clientWidth || 900);
    const { series, lo: lo0, hi: hi0 } = prepare(result, opts);
    const yTicks = niceTicks(lo0, hi0, 5);
    const lo = Math.min(lo0, yTicks[0]), hi = Math.max(hi0, yTicks[yTicks.length - 1]);
    const pw = width - M.l - M.r, ph = HEIGHT - M.t - M.b;
    const x = (t) => M.l + ((t - opts.startMs) / (opts.endMs - opts.startMs || 1)) * pw;
    const y = (v) => M.t + (1 - (v - lo) / (hi - lo)) * ph;
    const f = (n) => n.toFixed(1);

    const grid = [], labels = [];
    for (const v of yTicks) {
      grid.push(H.s("line", { x1: M.l, x2: M.l + pw, y1: f(y(v)), y2: f(y(v)) }));
      labels.push(H.s("text", { x: M.l - 6, y: f(y(v) + 4), "text-anchor": "end" }, tickLabel(v)));
    }
    const tt = timeTicks(opts.startMs, opts.endMs, pw);
    for (const t of tt.ticks) {
      grid.push(H.s("line", { x1: f(x(t)), x2: f(x(t)), y1: M.t, y2: M.t + ph }));
      labels.push(H.s("text", { x: f(x(t)), y: HEIGHT - 8, "text-anchor": "middle" },
        timeLabel(t, tt.step, opts.endMs - opts.startMs)));
    }

    const plot = [];
    for (const s of series) {
      let d = "", area = "";
      const dots = [];
      for (const seg of segments(s.pts, opts.stepMs)) {
        seg.forEach((p, j) => { d += (j ? "L" : "M") + f(x(p.t)) + " " + f(y(p.y1)); });
        if (seg.length === 1) dots.push(H.s("circle", { cx: f(x(seg[0].t)), cy: f(y(seg[0].y1)), r: 2.5, fill: s.color, "data-index": s.i }));
        if (opts.stacked) {
          area += seg.map((p, j) => (j ? "L" : "M") + f(x(p.t)) + " " + f(y(p.y1))).join("") +
            seg.slice().reverse().map((p) => "L" + f(x(p.t)) + " " + f(y(p.y0))).join("") + "Z";
        }
      }
      if (area) plot.push(H.s("path", { class: "area", d: area, fill: s.color, "data-index": s.i }));
      plot.push(H.s("path", {
        class: "series", d, stroke: s.color, "data-index": s.i,
        "data-series": JSON.stringify(s.metric), "data-points": JSON.stringify(s.values),
      }));
      plot.push(...dots);
    }

    const cursor = H.s("line", { class: "cursor", y1: M.t, y2: M.t + ph, visibility: "hidden" });
    const marker = H.s("circle", { class: "marker", r: 4, visibility: "hidden" });
    const overlay = H.s("rect", { class: "overlay", x: M.l, y: M.t, width: pw, height: ph });
    const svg = H.s("svg", {
      id: "graph", class: "graph", width, height: HEIGHT, viewBox: "0 0 " + width + " " + HEIGHT,
      "data-expr": opts.expr, "data-start": opts.params.start, "data-end": opts.params.end, "data-step": opts.params.step,
      "data-stacked": opts.stacked ? "1" : "0",
    },
    H.s("g", { class: "grid" }, grid), H.s("g", { class: "ticks" }, labels),
    H.s("rect", { class: "frame", x: M.l, y: M.t, width: pw, height: ph }),
    H.s("g", { class: "plot" }, plot), cursor, marker, overlay);

    const tip = H.h("div", { class: "tooltip", hidden: true });
    const hidden = new Set();
    const legend = H.h("ul", { class: "legend" }, series.map((s) => H.h("li", {
      "data-index": s.i, title: "Click to hide or show",
      onclick: (ev) => {
        const li = ev.currentTarget;
        const off = li.classList.toggle("off");
        if (off) hidden.add(s.i); else hidden.delete(s.i);
        svg.querySelectorAll('[data-index="' + s.i + '"]').forEach((el) => el.classList.toggle("hidden", off));
      },
    }, swatch(s.color), H.labelsText(s.metric))));

    overlay.addEventListener("mousemove", (ev) => {
      const box = svg.getBoundingClientRect();
      const scale = width / box.width;
      const mx = (ev.clientX - box.left) * scale, my = (ev.clientY - box.top) * scale;
      const t = opts.startMs + ((mx - M.l) / pw) * (opts.endMs - opts.startMs);
      let best = null;
      for (const s of series) {
        if (hidden.has(s.i)) continue;
        const p = nearest(s.pts, t);
        if (!p || !isFinite(p.y1) || Math.abs(p.t - t) > opts.stepMs) continue;
        const dist = Math.abs(y(p.y1) - my);
        if (!best || dist < best.dist) best = { s, p, dist };
      }
      if (!best) {
        hide();
        return;
      }
      const px = x(best.p.t), py = y(best.p.y1);
      for (const [k, v] of [["x1", px], ["x2", px]]) cursor.setAttribute(k, f(v));
      marker.setAttribute("cx", f(px));
      marker.setAttribute("cy", f(py));
      marker.setAttribute("fill", best.s.color);
      cursor.setAttribute("visibility", "visible");
      marker.setAttribute("visibility", "visible");
      H.replace(tip,
        H.h("div", { class: "tip-time" }, H.formatTime(best.p.t) + " UTC"),
        H.h("div", { class: "tip-value" }, swatch(best.s.color), "value: ", H.h("b", {}, best.p.raw)),
        H.h("div", { class: "tip-labels" }, H.labelsText(best.s.metric)));
      tip.hidden = false;
      const left = px / scale + 12, top = py / scale + 12;
      tip.style.left = Math.min(left, box.width - tip.offsetWidth - 4) + "px";
      tip.style.top = top + "px";
    });
    const hide = () => {
      tip.hidden = true;
      cursor.setAttribute("visibility", "hidden");
      marker.setAttribute("visibility", "hidden");
    };
    overlay.addEventListener("mouseleave", hide);

    const note = result.length > MAX_SERIES ? H.h("div", { class: "warning" },
      "Showing " + MAX_SERIES + " of " + result.length + " series.") : null;
    const empty = result.length === 0 ? H.h("div", { class: "info" }, "No data points in this range.") : null;
    H.replace(wrap, note, empty, H.h("div", { class: "graph-box" }, svg, tip), legend);
  };

  function swatch(color) {
    const el = H.h("span", { class: "swatch" });
    el.style.backgroundColor = color;
    return el;
  }

  // The point nearest to time t (points are sorted by time).
  function nearest(pts, t) {
    let lo = 0, hi = pts.length - 1;
    if (hi < 0) return null;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (pts[mid].t < t) lo = mid + 1; else hi = mid;
    }
    return lo > 0 && Math.abs(pts[lo - 1].t - t) < Math.abs(pts[lo].t - t) ? pts[lo - 1] : pts[lo];
  }
})(window.H);
