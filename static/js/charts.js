// Charts drawn with the vendored Chart.js from the tables beside them (templates/_macros/
// charts.html). The table is the source of truth: its row headings are the labels, each cell's
// data-value a value, each cell's link the list behind it, each row's data-colour the name of an
// app.css custom property (--env-*, --crit-*, --engine-*). A bar, a segment or a point clicked
// opens its link. Without JavaScript (or Chart.js) the tables alone show.
//
// No inline scripts or styles (the CSP forbids both): Chart.js draws on a canvas and sizes it
// through the CSSOM, as this file does for the canvas box's height and the table's swatches.
// With prefers-reduced-motion nothing is animated. Each figure's Chart instance is its `chart`
// property (browser tests read it).
(function () {
  "use strict";

  var FALLBACK = "--accent";
  var BAR_ROW = 30;  // px per bar of a horizontal bar chart
  var MIN_HEIGHT = 200;
  var MAX_HEIGHT = 480;

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  // A darker edge for a fill colour, so a light bar (amber, grey) still stands out from white
  // (WCAG 1.4.11 asks 3:1 for graphics); "#d4a106" -> "rgb(127, 97, 4)".
  function darker(hex) {
    var m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
    if (!m) return hex;
    var parts = [m[1], m[2], m[3]].map(function (h) { return Math.round(parseInt(h, 16) * 0.6); });
    return "rgb(" + parts.join(", ") + ")";
  }

  function reducedMotion() {
    return window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  }

  // {labels, series: [{name, values, links}], colours} from the figure's table
  function readTable(table) {
    var names = Array.prototype.slice.call(table.querySelectorAll("thead th")).slice(1)
      .map(function (th) { return th.textContent.trim(); });
    var series = names.map(function (name) { return { name: name, values: [], links: [] }; });
    var labels = [];
    var colours = [];
    Array.prototype.forEach.call(table.querySelectorAll("tbody tr"), function (tr) {
      var heading = tr.querySelector("th");
      labels.push(heading ? heading.textContent.trim() : "");
      colours.push(cssVar(tr.getAttribute("data-colour") || FALLBACK) || cssVar(FALLBACK));
      Array.prototype.forEach.call(tr.querySelectorAll("td"), function (td, i) {
        if (!series[i]) return;
        var link = td.querySelector("a[href]");
        series[i].values.push(Number(td.getAttribute("data-value")));
        series[i].links.push(link ? link.getAttribute("href") : null);
      });
    });
    return { labels: labels, series: series, colours: colours };
  }

  function paintSwatches(table, colours) {
    Array.prototype.forEach.call(table.querySelectorAll("tbody tr"), function (tr, i) {
      var swatch = tr.querySelector(".chart-swatch");
      if (swatch) {
        swatch.style.backgroundColor = colours[i];
        swatch.style.borderColor = darker(colours[i]);
      }
    });
  }

  function datasets(kind, data) {
    var lineColours = [cssVar(FALLBACK), cssVar("--ok"), cssVar("--warn"), cssVar("--danger")];
    return data.series.map(function (s, i) {
      if (kind === "line") {
        var colour = lineColours[i % lineColours.length];
        return { label: s.name, data: s.values, borderColor: colour, backgroundColor: colour,
                 pointRadius: 2, tension: 0.2 };
      }
      return {
        label: s.name,
        data: s.values,
        backgroundColor: data.colours,
        borderColor: kind === "doughnut" ? cssVar("--card") || "#fff" : data.colours.map(darker),
        borderWidth: kind === "doughnut" ? 2 : 1,
        maxBarThickness: 36
      };
    });
  }

  function options(kind, figure, data) {
    var unit = figure.getAttribute("data-unit") || "";
    var max = figure.getAttribute("data-max");
    var horizontal = kind === "hbar";
    var valueAxis = {
      beginAtZero: true,
      ticks: { precision: 0, callback: function (v) { return Number(v).toLocaleString() + unit; } },
      grid: { color: cssVar("--line") || "#d9dee5" }
    };
    if (max !== null) valueAxis.max = Number(max);
    var labelAxis = { grid: { display: false }, ticks: { autoSkip: kind === "line" } };
    var opts = {
      responsive: true,
      maintainAspectRatio: false,
      animation: reducedMotion() ? false : { duration: 400 },
      indexAxis: horizontal ? "y" : "x",
      plugins: {
        legend: { display: kind === "line" && data.series.length > 1, position: "bottom" },
        tooltip: {
          callbacks: {
            label: function (ctx) {
              var value = (horizontal ? ctx.parsed.x : kind === "doughnut" ? ctx.parsed : ctx.parsed.y);
              return (data.series.length > 1 ? ctx.dataset.label + ": " : "") +
                Number(value).toLocaleString() + unit;
            }
          }
        }
      },
      onClick: function (event, elements) {
        if (!elements.length) return;
        var el = elements[0];
        var href = data.series[el.datasetIndex].links[el.index];
        if (href) window.location.assign(href);
      },
      onHover: function (event, elements) {
        var target = event.native && event.native.target;
        if (!target) return;
        var el = elements[0];
        var linked = el && data.series[el.datasetIndex].links[el.index];
        target.style.cursor = linked ? "pointer" : "default";
      }
    };
    if (kind === "doughnut") {
      opts.cutout = "55%";
      delete opts.indexAxis;
    } else {
      opts.scales = horizontal ? { x: valueAxis, y: labelAxis } : { x: labelAxis, y: valueAxis };
    }
    return opts;
  }

  function draw(figure) {
    if (figure.chart || !window.Chart) return;
    var kind = figure.getAttribute("data-chart");
    var table = figure.querySelector("table.chart-data");
    var box = figure.querySelector(".chart-canvas");
    var canvas = box && box.querySelector("canvas");
    if (!table || !canvas) return;
    var data = readTable(table);
    if (!data.labels.length) return;
    if (kind === "hbar") {
      box.style.height = Math.min(MAX_HEIGHT, Math.max(MIN_HEIGHT, data.labels.length * BAR_ROW + 40)) + "px";
    }
    box.hidden = false;
    var type = kind === "hbar" ? "bar" : kind;
    figure.chart = new window.Chart(canvas, {
      type: type,
      data: { labels: data.labels, datasets: datasets(kind, data) },
      options: options(kind, figure, data)
    });
    if (kind !== "line") paintSwatches(table, data.colours);
    figure.classList.add("chart-drawn");
  }

  function drawAll(root) {
    if (!window.Chart) return;
    var fg = cssVar("--muted");
    if (fg) window.Chart.defaults.color = fg;
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    root = root || document;
    if (root.matches && root.matches("figure.chart[data-chart]")) draw(root);
    Array.prototype.forEach.call(root.querySelectorAll("figure.chart[data-chart]"), draw);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  // a panel htmx swapped in (the dashboard's block rendered alone)
  document.addEventListener("htmx:load", function (event) { drawAll(event.target); });
})();
