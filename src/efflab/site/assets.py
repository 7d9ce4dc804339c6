"""The site's assets, written once per build into `assets/`: Plotly's JavaScript (from
the pinned `plotly` wheel, so the site needs no network), the site's own script (draws
every plot from its page's data and applies the host and parameter filters) and CSS.
"""

from __future__ import annotations

from pathlib import Path

from plotly.offline import get_plotlyjs

CSS = """
body{font-family:system-ui,sans-serif;margin:0;color:#222}
header{display:flex;justify-content:space-between;align-items:center;padding:.5em 1em;
background:#f3f5f8;border-bottom:1px solid #ddd;position:sticky;top:0;z-index:10}
main{max-width:1300px;margin:1em auto;padding:0 1em}footer{color:#777;font-size:12px;padding:1em}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}td,th{border:1px solid #ccc;
padding:3px 7px;vertical-align:top}th{background:#f4f4f4}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:8px}
.plot{min-height:340px;border:1px solid #eee}.filters label{margin-right:1em}
.cell{font-weight:bold;text-decoration:none}.ok{color:#17672c}.bad{color:#a31515}
.err{color:#8a5300}.inc{color:#555}.other{color:#333}.tie{background:#ffe9a8;padding:0 4px}
.detail{background:#fafafa;border:1px solid #ddd;padding:.5em;margin:.5em 0;display:none}
.skipped{color:#8a5300}.hidden{display:none}pre{font-size:11px;overflow:auto;max-height:24em}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:10px}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em}.card h3{margin:.2em 0}
figure{margin:0;border:1px solid #eee}figcaption{font-weight:600;font-size:14px;padding:.4em .6em 0}
code.cmd{background:#f4f4f4;padding:1px 4px;user-select:all}
"""

JS = r"""
(function () {
  "use strict";
  var page = JSON.parse(document.getElementById("page-data").textContent || "{}");
  var conf = {responsive: true, displaylogo: false};
  function hostChoice() {
    var q = new URLSearchParams(location.search).get("host");
    if (q !== null) return q;
    try { return localStorage.getItem("efflab-host") || ""; } catch (e) { return ""; }
  }
  var host = hostChoice();
  var sel = document.getElementById("host-filter");
  if (sel) {
    if (host && !Array.prototype.some.call(sel.options, function (o) { return o.value === host; })) host = "";
    sel.value = host;
    sel.addEventListener("change", function () {
      host = sel.value;
      try { localStorage.setItem("efflab-host", host); } catch (e) { /* file:// may refuse */ }
      apply();
    });
  }
  function paramFilters() {
    var f = {};
    document.querySelectorAll(".param-filter").forEach(function (s) {
      if (s.value !== "") f[s.dataset.param] = JSON.parse(s.value);
    });
    return f;
  }
  function matches(row, f) {
    for (var k in f) { if (JSON.stringify(row.p[k]) !== JSON.stringify(f[k])) return false; }
    return true;
  }
  function fmt(v) { return v === null || v === undefined ? "—" : (+v).toPrecision(4); }
  function drawPoints(div, f) {
    // x: the numeric input with the most values (log when geometric), one trace (colour)
    // per combination of the other inputs that vary (and per machine when there are
    // several); the bar is the 95% interval of the median. Without a numeric input:
    // one category per point.
    var m = page.metrics.filter(function (x) { return x.name === div.dataset.metric; })[0];
    var ax = page.axes || {x: null, series: []}, names = page.names || {};
    var traces = [];
    var many = page.hosts.length > 1 && !host;
    function label(r) {
      var parts = ax.series.map(function (p) { return (names[p] || p) + "=" + r.p[p]; });
      if (many) parts.push(r.h);
      return parts.join(" · ") || m.name;
    }
    var groups = {}, order = [];
    page.hosts.forEach(function (h) {
      if (host && h !== host) return;
      page.rows.forEach(function (r) {
        if (r.h !== h || !r.m[m.name] || !matches(r, f)) return;
        var k = label(r);
        if (!groups[k]) { groups[k] = []; order.push(k); }
        groups[k].push(r);
      });
    });
    order.forEach(function (k) {
      var rows = groups[k];
      if (ax.x) rows.sort(function (a, b) { return a.p[ax.x] - b.p[ax.x]; });
      var v = rows.map(function (r) { return r.m[m.name]; });
      function bound(s, i) { return s[i] === null || s[i] === undefined ? s[0] : s[i]; }
      traces.push({
        type: "scatter", mode: ax.x ? "lines+markers" : "markers", name: k,
        x: rows.map(function (r) { return ax.x ? r.p[ax.x] : r.l; }), y: v.map(function (s) { return s[0]; }),
        error_y: {type: "data", symmetric: false,
          array: v.map(function (s) { return bound(s, 6) - s[0]; }),
          arrayminus: v.map(function (s) { return s[0] - bound(s, 5); })},
        customdata: rows.map(function (r, i) {
          var p = (page.prov[r.h] || {})[r.l] || {};
          var s = v[i];
          return [s[3], fmt(s[4]), fmt(bound(s, 5)), fmt(bound(s, 6)), (p.commits || []).join(",") + (p.dirty ? " (dirty)" : ""),
                  (p.energy || []).join(","), p.contended || 0, r.h, r.l];
        }),
        hovertemplate: "%{customdata[8]}<br>median %{y:.4g} " + m.unit + " [%{customdata[2]}, %{customdata[3]}]" +
          "<br>n=%{customdata[0]} mean %{customdata[1]}<br>commit %{customdata[4]}" +
          "<br>energy %{customdata[5]}<br>contended reps %{customdata[6]}<extra>%{customdata[7]}</extra>"
      });
    });
    var xaxis = ax.x ? {title: {text: names[ax.x] || ax.x}, type: ax.xlog ? "log" : "linear", automargin: true}
                     : {type: "category", tickfont: {size: 9}, automargin: true};
    // no Plotly title (the figure's caption is above the plot) and the legend below the
    // axis: nothing sits under the toolbar in the top right corner
    var layout = {margin: {l: 60, r: 10, t: 28, b: 40}, xaxis: xaxis,
      yaxis: {title: {text: m.unit}, automargin: true},
      showlegend: traces.length > 1, legend: {orientation: "h", x: 0, xanchor: "left", y: -0.22, yanchor: "top"},
      height: 340 + (traces.length > 1 ? 24 * Math.ceil(traces.length / 3) : 0)};
    Plotly.react(div, traces, layout, conf);
    div.dataset.traces = String(traces.length);
    if (!div.dataset.bound) {
      div.dataset.bound = "1";
      div.on("plotly_click", function (ev) {
        var c = ev.points[0].customdata, p = (page.prov[c[7]] || {})[c[8]] || {};
        var d = document.getElementById("prov-detail");
        d.style.display = "block";
        d.textContent = c[8] + " on " + c[7] + ": " + (p.n || 0) + " records; commit " +
          (p.commits || []).join(", ") + (p.dirty ? " (dirty" + ((p.dirty_files || []).length ? ": " + p.dirty_files.join(", ") : "") + ")" : "") +
          "; hosts " + (p.hosts || []).join(", ") +
          "; runtime " + (p.runtime || []).join(", ") + (p.images && p.images.length ? " image " + p.images.join(", ") : "") +
          "; energy " + (p.energy || []).join(", ") + "; contended " + (p.contended || 0) + "/" + (p.n || 0) +
          "; runs " + (p.runs || []).join(", ");
        var cmd = (page.commands || {})[c[8]];
        if (cmd) {
          var code = document.createElement("code");
          code.className = "cmd";
          code.textContent = cmd;
          var b = document.createElement("button");
          b.type = "button";
          b.textContent = "copy";
          b.addEventListener("click", function () {
            if (navigator.clipboard) navigator.clipboard.writeText(cmd).then(function () { b.textContent = "copied"; }, function () {});
          });
          var line = document.createElement("div");
          line.append("measure it again: ", code, " ", b);
          d.append(line);
        }
      });
    }
  }
  function drawFront(div, f) {
    var ax = {};
    document.querySelectorAll(".front-axis").forEach(function (s) { ax[s.dataset.axis] = s.value; });
    var mx = page.metrics.filter(function (m) { return m.name === ax.x; })[0];
    var my = page.metrics.filter(function (m) { return m.name === ax.y; })[0];
    if (!mx || !my) return;
    var pts = [], traces = [];
    page.hosts.forEach(function (h) {
      if (host && h !== host) return;
      var rows = page.rows.filter(function (r) { return r.h === h && r.m[mx.name] && r.m[my.name] && matches(r, f); });
      if (!rows.length) return;
      rows.forEach(function (r) { pts.push({x: r.m[mx.name][0], y: r.m[my.name][0]}); });
      traces.push({type: "scatter", mode: "markers", name: h, x: rows.map(function (r) { return r.m[mx.name][0]; }),
        y: rows.map(function (r) { return r.m[my.name][0]; }), text: rows.map(function (r) { return r.l; }),
        hovertemplate: "%{text}<br>" + mx.name + " %{x:.4g}<br>" + my.name + " %{y:.4g}<extra>" + h + "</extra>"});
    });
    var sx = mx.better === "higher" ? 1 : -1, sy = my.better === "higher" ? 1 : -1;
    var front = pts.filter(function (p) {
      return !pts.some(function (q) {
        return sx * q.x >= sx * p.x && sy * q.y >= sy * p.y && (sx * q.x > sx * p.x || sy * q.y > sy * p.y);
      });
    }).sort(function (a, b) { return a.x - b.x; });
    if (front.length > 1) traces.push({type: "scatter", mode: "lines", name: "front", hoverinfo: "skip",
      line: {shape: "hv", color: "#2a9d3a"}, x: front.map(function (p) { return p.x; }), y: front.map(function (p) { return p.y; })});
    Plotly.react(div, traces, {title: {text: mx.name + " vs " + my.name, font: {size: 13}}, height: 420,
      xaxis: {title: {text: mx.name + " [" + mx.unit + "] (" + mx.better + " is better)"}},
      yaxis: {title: {text: my.name + " [" + my.unit + "] (" + my.better + " is better)"}}}, conf);
    div.dataset.traces = String(traces.length);
    div.dataset.front = String(front.length);
  }
  function drawPareto(div) {
    var e = page.entries.filter(function (r) { return r.x !== null && r.y !== null; });
    var groups = [["Pareto front (front 1)", function (r) { return r.front === 1; }, "#2a9d3a"],
                  ["later fronts", function (r) { return r.front !== 1; }, "#888"]];
    var traces = [];
    groups.forEach(function (g) {
      var rs = e.filter(g[1]);
      if (!rs.length) return;
      traces.push({type: "scatter", mode: "markers+text", name: g[0], x: rs.map(function (r) { return r.x; }),
        y: rs.map(function (r) { return r.y; }), text: rs.map(function (r) { return r.label + (r.tie ? " (tie)" : ""); }),
        textposition: "top right", marker: {size: 11, color: g[2], line: {width: 1, color: "#000"},
        symbol: rs.map(function (r) { return r.tie ? "diamond" : "circle"; })}});
    });
    var front = e.filter(function (r) { return r.front === 1; }).sort(function (a, b) { return a.x - b.x; });
    var isObj = page.objectives.some(function (o) { return o.metric === page.y; });
    if (isObj && front.length > 1) {
      traces.push({type: "scatter", mode: "lines", name: "front", line: {shape: "hv", color: "#2a9d3a"},
        x: front.map(function (r) { return r.x; }), y: front.map(function (r) { return r.y; }), hoverinfo: "skip"});
    }
    var shapes = [], notes = [];
    page.constraints.forEach(function (c) {
      if (c.metric === page.y) { shapes.push({type: "line", xref: "paper", x0: 0, x1: 1, y0: c.value, y1: c.value, line: {color: "red", dash: "dash"}});
        notes.push({xref: "paper", x: 1, y: c.value, text: c.text, showarrow: false, font: {color: "red"}, xanchor: "right", yanchor: "bottom"}); }
      if (c.metric === page.x) { shapes.push({type: "line", yref: "paper", y0: 0, y1: 1, x0: c.value, x1: c.value, line: {color: "red", dash: "dash"}});
        notes.push({yref: "paper", y: 1, x: c.value, text: c.text, showarrow: false, font: {color: "red"}}); }
    });
    var u = page.units || {};
    Plotly.react(div, traces, {height: 460, shapes: shapes, annotations: notes, margin: {t: 30},
      xaxis: {title: {text: page.x + " [" + (u[page.x] || "") + "]"}},
      yaxis: {title: {text: page.y ? page.y + " [" + (u[page.y] || "") + "]" : "position"}}}, conf);
    div.dataset.traces = String(traces.length);
  }
  function drawTrend(div) {
    var t = page.trends[+div.dataset.index];
    var traces = t.series.map(function (s) {
      return {type: "scatter", mode: "lines+markers", name: s.label, x: s.pts.map(function (p) { return p[0]; }),
        y: s.pts.map(function (p) { return p[1]; })};
    });
    var reg = t.flags.filter(function (f) { return f.verdict === "regression"; });
    if (reg.length) {
      var ys = reg.map(function (f) {
        var s = t.series.filter(function (s) { return s.label === f.label; })[0];
        var p = s ? s.pts.filter(function (p) { return p[0] === f.x; })[0] : null;
        return p ? p[1] : null;
      });
      traces.push({type: "scatter", mode: "markers", name: "regression", x: reg.map(function (f) { return f.x; }), y: ys,
        marker: {symbol: "x", size: 14, color: "red"},
        text: reg.map(function (f) { return f.label + " · commits " + f.range; }), hovertemplate: "%{text}<extra>regression</extra>"});
    }
    Plotly.react(div, traces, {title: {text: t.exp + " — " + t.metric + " [" + t.unit + "] (" + t.better + " is better)", font: {size: 13}},
      height: 340, margin: {t: 40, b: 60}, xaxis: {tickmode: "array", tickvals: t.ticks.map(function (_, i) { return i; }),
      ticktext: t.ticks.map(function (k) { return "#" + k.night + " v" + k.version + "<br>" + k.commit; })}}, conf);
    div.dataset.traces = String(traces.length);
  }
  function drawOptimize(div) {
    // every trial (feasible, infeasible, failed) and the front from the versioned table;
    // two objectives: objective plane; one: the objective per trial number
    var o = page.objectives, two = o.length > 1;
    function xy(obj, n) { return two ? [obj[o[0].metric], obj[o[1].metric]] : [n, obj[o[0].metric]]; }
    // the 95% interval of each median as bars: y's (and x's with two objectives)
    function bars(items, get, axis) {
      var m = two ? o[axis === "x" ? 0 : 1].metric : (axis === "y" ? o[0].metric : null);
      if (!m) return undefined;
      var pts = items.map(get);
      function side(i, k) { var s = (pts[i].span || {})[m] || [], v = pts[i].obj[m];
        return s[k] === null || s[k] === undefined || v === null ? 0 : Math.abs(s[k] - v); }
      return {type: "data", symmetric: false, thickness: 1, width: 3,
        array: pts.map(function (_, i) { return side(i, 1); }), arrayminus: pts.map(function (_, i) { return side(i, 0); })};
    }
    var groups = [["feasible trials", "feasible", "#1f77b4", "circle"],
                  ["infeasible trials", "infeasible", "#d62728", "x"]];
    var traces = [];
    groups.forEach(function (g) {
      var ts = page.trials.filter(function (t) { return t.status === g[1]; });
      var pts = ts.map(function (t) { return xy(t.obj, t.trial); }).filter(function (p) { return p[0] !== null && p[1] !== null; });
      if (!pts.length) return;
      var shown = ts.filter(function (t) { var p = xy(t.obj, t.trial); return p[0] !== null && p[1] !== null; });
      traces.push({type: "scatter", mode: "markers", name: g[0], x: pts.map(function (p) { return p[0]; }),
        y: pts.map(function (p) { return p[1]; }), marker: {size: 9, color: g[2], symbol: g[3], opacity: 0.7},
        error_y: bars(shown, function (t) { return t; }, "y"), error_x: bars(shown, function (t) { return t; }, "x"),
        text: ts.map(function (t) { return "trial " + t.trial + ": " + t.label + (t.cached ? " (cache hit)" : "") +
          (t.remeasured ? " (re-measured " + t.remeasured + "x)" : ""); }), hovertemplate: "%{text}<br>%{x}, %{y}<extra></extra>"});
    });
    var f = page.front.map(function (t) { return {p: xy(t.obj, t.trial), t: t}; })
      .filter(function (e) { return e.p[0] !== null && e.p[1] !== null; })
      .sort(function (a, b) { return a.p[0] - b.p[0]; });
    if (f.length) {
      traces.push({type: "scatter", mode: two && f.length > 1 ? "lines+markers" : "markers",
        name: two ? "Pareto front" : "best trial", line: {shape: "hv", color: "#2a9d3a"},
        x: f.map(function (e) { return e.p[0]; }), y: f.map(function (e) { return e.p[1]; }),
        error_y: bars(f, function (e) { return e.t; }, "y"), error_x: bars(f, function (e) { return e.t; }, "x"),
        marker: {size: 13, color: "#2a9d3a", symbol: "star", line: {width: 1, color: "#000"}},
        text: f.map(function (e) { return "trial " + e.t.trial + ": " + e.t.label; }),
        hovertemplate: "%{text}<br>%{x}, %{y}<extra>front</extra>"});
    }
    function ax(g) { return g.metric + " [" + g.unit + "] (" + g.direction + ")"; }
    Plotly.react(div, traces, {height: 460, margin: {t: 30},
      xaxis: {title: {text: two ? ax(o[0]) : "trial"}}, yaxis: {title: {text: two ? ax(o[1]) : ax(o[0])}}}, conf);
    div.dataset.traces = String(traces.length);
  }
  function apply() {
    document.querySelectorAll("[data-host]").forEach(function (el) {
      el.classList.toggle("hidden", !!host && el.dataset.host !== host);
    });
    var f = paramFilters();
    var shown = 0;
    document.querySelectorAll("tr.prow").forEach(function (tr) {
      var row = page.rows && page.rows.filter(function (r) { return r.h === tr.dataset.host && r.l === tr.dataset.label; })[0];
      var ok = !row || matches(row, f);
      if (ok && !(host && tr.dataset.host !== host)) shown++;
      tr.classList.toggle("hidden", !ok || (!!host && tr.dataset.host !== host));
    });
    var s = document.getElementById("shown");
    if (s) s.textContent = shown + " point(s) shown";
    if (typeof Plotly === "undefined") { document.body.dataset.drawn = "1"; return; }
    document.querySelectorAll(".plot").forEach(function (div) {
      if (div.dataset.kind === "points") drawPoints(div, f);
      else if (div.dataset.kind === "front") drawFront(div, f);
      else if (div.dataset.kind === "pareto") drawPareto(div);
      else if (div.dataset.kind === "trend") drawTrend(div);
      else if (div.dataset.kind === "optimize") drawOptimize(div);
    });
    document.body.dataset.drawn = "1";
  }
  document.querySelectorAll(".param-filter, .front-axis").forEach(function (s) { s.addEventListener("change", apply); });
  document.querySelectorAll(".diffpick").forEach(function (p) {
    p.querySelector("button").addEventListener("click", function () {
      var a = +p.querySelector(".va").value, b = +p.querySelector(".vb").value;
      var lo = Math.min(a, b), hi = Math.max(a, b), pairs = JSON.parse(p.dataset.pairs);
      if (lo === hi) { p.querySelector(".msg").textContent = "pick two different versions"; return; }
      if (pairs.indexOf(lo + "-" + hi) < 0) { p.querySelector(".msg").textContent = "not prebuilt; see efflab results diff"; return; }
      location.href = p.dataset.base + "/diff-v" + lo + "-v" + hi + ".html";
    });
  });
  apply();
})();
"""


def write_assets(out: Path) -> dict[str, int]:
    """Write assets/ under the site root; returns file -> bytes."""
    d = out / "assets"
    d.mkdir(parents=True, exist_ok=True)
    files = {"plotly.min.js": get_plotlyjs(), "site.js": JS, "site.css": CSS}
    sizes = {}
    for name, text in files.items():
        (d / name).write_text(text, encoding="utf-8")
        sizes[f"assets/{name}"] = len(text.encode())
    return sizes
