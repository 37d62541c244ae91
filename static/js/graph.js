// The dependency graph on an asset's Relationships tab, drawn with Cytoscape.js (vendored) from
// the tab's graph.json. No inline scripts or styles (the CSP forbids both): Cytoscape draws on a
// canvas and takes its styles through its JS API.
//
// Layout: the asset in the middle row; what it depends on (upstream) in rows above, one per hop;
// what depends on it (downstream) in rows below. Colour: environment (the colours are the
// --env-* properties of app.css, so the legend and the drawing cannot disagree). Size:
// criticality. A click on an asset opens its Relationships tab.
//
// The same data is written out as lists under "The graph as a list" (for screen readers and
// keyboards, which cannot use a canvas), and the counts as data- attributes on the container.
// The Cytoscape instance is the container's `cy` property (browser tests read node positions).
(function () {
  "use strict";

  // Cytoscape adds an inline <style> (".__________cytoscape_container { position: relative }")
  // unless an element with this id exists. The CSP refuses inline styles, and app.css already
  // positions .graph, so a marker stands in for it.
  var STYLESHEET_MARKER = "__________cytoscape_stylesheet";
  var PLACEHOLDER_ID = "00000000-0000-0000-0000-000000000000";
  var SIZES = { critical: 58, high: 46, medium: 38, low: 32 };
  var UNRATED_SIZE = 30;
  var ROW_GAP = 110;  // between assets in a column
  var COLUMN_GAP = 280;  // between hops
  var WRAP_GAP = 190;  // between the columns of one wrapped band
  var QUIET_ABOVE = 12;  // more links than this: their labels show on hover
  var SIDES = { up: "upstream", down: "downstream", both: "upstream and downstream (a cycle)" };

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function phrase(kind) {
    return kind === "member_of" ? "is a member of" : kind.replace(/_/g, " ");
  }

  // the asset in the middle; what depends on it (downstream) in columns to its left, one band
  // per hop; what it depends on (upstream) to its right, so "A depends on B" reads left to
  // right. An asset reached both ways (a cycle) sits on the right. A band with more assets than
  // fit one column wraps into several.
  function band(node) {
    if (node.side === "self") return 0;
    return node.side === "down" ? -node.depth : node.depth;
  }

  function positions(nodes, height) {
    // as many per column as fit the container's height at a legible zoom; wrapped columns are
    // staggered by half a row so an edge from an outer column passes between inner nodes
    var perColumn = Math.max(3, Math.floor((height - 80) / (ROW_GAP * 0.8)));
    var bands = {};
    nodes.forEach(function (node) {
      var b = band(node);
      (bands[b] = bands[b] || []).push(node);
    });
    var placed = {};
    (bands[0] || []).forEach(function (node) { placed[node.id] = { x: 0, y: 0 }; });
    [-1, 1].forEach(function (sign) {
      var depths = Object.keys(bands).map(Number).filter(function (b) { return b * sign > 0; })
        .sort(function (a, b) { return Math.abs(a) - Math.abs(b); });
      var x = 0;
      depths.forEach(function (b) {
        var members = bands[b];
        var columns = Math.ceil(members.length / perColumn);
        x += COLUMN_GAP;
        for (var c = 0; c < columns; c++) {
          var column = members.slice(c * perColumn, (c + 1) * perColumn);
          var stagger = columns > 1 && c % 2 ? ROW_GAP / 2 : 0;
          column.forEach(function (node, i) {
            placed[node.id] = { x: sign * (x + c * WRAP_GAP), y: (i - (column.length - 1) / 2) * ROW_GAP + stagger };
          });
        }
        x += (columns - 1) * WRAP_GAP;
      });
    });
    return placed;
  }

  function elements(data, names, height) {
    var placed = positions(data.nodes, height);
    // bidi controls would reorder a label on the canvas: name them, as the pages do
    function revealBidi(text) {
      return String(text).replace(/[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, function (c) {
        return "[U+" + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0") + "]";
      });
    }
    var items = data.nodes.map(function (node) {
      return {
        group: "nodes",
        data: {
          id: node.id, name: revealBidi(node.name), environment: node.environment,
          color: cssVar("--env-" + node.environment, "#9ca3af"),
          size: SIZES[node.criticality] || UNRATED_SIZE,
        },
        position: placed[node.id],
        classes: node.id === data.root ? "root" : "",
      };
    });
    data.edges.forEach(function (edge) {
      if (!names[edge.source_id] || !names[edge.target_id]) return;
      items.push({
        group: "edges",
        data: { id: edge.id, source: edge.source_id, target: edge.target_id, kind: edge.kind,
                label: phrase(edge.kind) },
      });
    });
    return items;
  }

  function styles() {
    var ink = cssVar("--fg", "#1f2933");
    var line = cssVar("--edge", "#64748b");
    return [
      { selector: "node", style: {
        "background-color": "data(color)", width: "data(size)", height: "data(size)",
        "border-width": 2, "border-color": "#ffffff",
        label: "data(name)", color: ink, "font-size": 13, "font-family": "system-ui, sans-serif",
        "text-valign": "bottom", "text-halign": "center", "text-margin-y": 6,
        "text-wrap": "ellipsis", "text-max-width": 170,
        "text-background-color": "#ffffff", "text-background-opacity": 0.85,
        "text-background-padding": 2, "text-background-shape": "roundrectangle",
        "min-zoomed-font-size": 7,
      } },
      { selector: "node.root", style: {
        "border-width": 5, "border-color": cssVar("--graph-root", "#111827"), "font-weight": "bold",
      } },
      { selector: "edge", style: {
        width: 2, "line-color": line, "target-arrow-color": line, "target-arrow-shape": "triangle",
        "arrow-scale": 1.2, "curve-style": "bezier",
        label: "data(label)", "font-size": 11, "font-family": "system-ui, sans-serif", color: ink,
        "text-background-color": "#ffffff",
        "text-background-opacity": 0.9, "text-background-padding": 2, "min-zoomed-font-size": 7,
      } },
      // many links: their labels only on hover (every label at once would be unreadable)
      { selector: "edge.quiet", style: { label: "" } },
      { selector: "edge.quiet.hover", style: { label: "data(label)", "z-index": 10 } },
      { selector: "node:active", style: { "overlay-opacity": 0.12 } },
    ];
  }

  function element(tag, text) {
    var el = document.createElement(tag);
    if (text) el.textContent = text;
    return el;
  }

  // the graph as lists: links to each asset's tab, and each link as a sentence
  function summarise(box, data, names) {
    var target = document.querySelector("[data-graph-summary]");
    if (!target) return;
    var assetUrl = box.getAttribute("data-asset-url");
    target.textContent = "";
    target.appendChild(element("h3", data.nodes.length === 1 ? "1 asset" : data.nodes.length + " assets"));
    var nodes = element("ul");
    nodes.setAttribute("data-graph-nodes", "");
    data.nodes.forEach(function (node) {
      var li = element("li");
      li.setAttribute("data-node-id", node.id);
      var a = element("a", node.name);
      a.href = assetUrl.replace(PLACEHOLDER_ID, node.id);
      li.appendChild(a);
      var facts = [node.environment, node.criticality || "criticality not set"];
      if (node.side === "self") facts.push("this asset");
      else facts.push(SIDES[node.side] + ", " + (node.depth === 1 ? "1 hop" : node.depth + " hops"));
      li.appendChild(document.createTextNode(" — " + facts.join(", ")));
      nodes.appendChild(li);
    });
    target.appendChild(nodes);
    target.appendChild(element("h3", data.edges.length === 1 ? "1 link" : data.edges.length + " links"));
    var edges = element("ul");
    edges.setAttribute("data-graph-edges", "");
    data.edges.forEach(function (edge) {
      edges.appendChild(element("li", names[edge.source_id] + " " + phrase(edge.kind) + " " + names[edge.target_id]));
    });
    target.appendChild(edges);
  }

  function setUp(box) {
    if (typeof window.cytoscape !== "function" || box.cy) return;
    if (!document.getElementById(STYLESHEET_MARKER)) {
      var marker = document.createElement("meta");
      marker.id = STYLESHEET_MARKER;
      marker.name = "cytoscape-container-style";
      marker.content = "in app.css";
      document.head.appendChild(marker);
    }
    var message = box.parentNode.querySelector("[data-graph-message]");
    var truncated = document.querySelector("[data-graph-truncated]");
    var controls = document.querySelector("[data-graph-controls]");
    var fit = document.querySelector("[data-graph-fit]");
    var assetUrl = box.getAttribute("data-asset-url");
    var root = null;
    var latest = 0;

    var cy = window.cytoscape({
      container: box, elements: [], style: styles(), layout: { name: "preset" },
      minZoom: 0.15, maxZoom: 1.6, boxSelectionEnabled: false, autoungrabify: true,
      autounselectify: true,
    });
    box.cy = cy;

    function say(text, state) {
      box.setAttribute("data-state", state);
      message.textContent = text;
      message.hidden = !text;
    }

    function draw(data) {
      var names = {};
      data.nodes.forEach(function (node) { names[node.id] = node.name; });
      root = data.root;
      cy.elements().remove();
      cy.add(elements(data, names, box.clientHeight));
      if (cy.edges().length > QUIET_ABOVE) cy.edges().addClass("quiet");
      cy.fit(undefined, 40);
      box.setAttribute("data-node-count", String(cy.nodes().length));
      box.setAttribute("data-edge-count", String(cy.edges().length));
      summarise(box, data, names);
      truncated.hidden = !data.truncated;
      truncated.textContent = data.truncated
        ? "Graph truncated at " + data.nodes.length + " assets: choose a smaller depth or one direction to see the rest."
        : "";
      if (data.edges.length === 0) {
        say(data.direction === "both"
          ? "No relationships yet: the graph shows this asset's neighbours once it is linked to another."
          : "Nothing " + (data.direction === "up" ? "upstream (this asset depends on nothing)." : "downstream (nothing depends on this asset)."),
          "empty");
      } else {
        say("", "ready");
      }
    }

    function load() {
      var depth = controls.elements.depth.value;
      var direction = controls.elements.direction.value;
      var query = "?depth=" + encodeURIComponent(depth) + "&direction=" + encodeURIComponent(direction);
      var ticket = ++latest;
      box.setAttribute("data-state", "loading");
      fetch(box.getAttribute("data-graph-url") + query, {
        credentials: "same-origin", headers: { Accept: "application/json" },
      }).then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (!response.ok || type.indexOf("json") === -1) throw new Error(String(response.status));
        return response.json();
      }).then(function (data) {
        if (ticket !== latest) return;  // a newer request is on its way
        draw(data);
      }).catch(function (error) {
        if (ticket !== latest) return;
        cy.elements().remove();
        say("The graph could not be loaded (" + error.message + "). Reload the page to try again.", "error");
      });
      return query;
    }

    controls.addEventListener("change", function () {
      var query = load();
      // the URL keeps the choice, so a reload or a shared link shows the same graph
      history.replaceState(history.state, "", window.location.pathname + query);
    });
    controls.addEventListener("submit", function (event) { event.preventDefault(); });
    if (fit) {
      fit.hidden = false;
      fit.addEventListener("click", function () { cy.fit(undefined, 40); });
    }
    cy.on("tap", "node", function (event) {
      var id = event.target.id();
      if (id !== root) window.location.assign(assetUrl.replace(PLACEHOLDER_ID, id));
    });
    cy.on("mouseover", "node", function (event) {
      if (event.target.id() !== root) box.classList.add("pointing");
    });
    cy.on("mouseout", "node", function () { box.classList.remove("pointing"); });
    cy.on("mouseover", "edge", function (event) { event.target.addClass("hover"); });
    cy.on("mouseout", "edge", function (event) { event.target.removeClass("hover"); });
    // a link added or removed on this page (the htmx answer's HX-Trigger)
    document.body.addEventListener("relationships-changed", load);
    say("Loading the graph…", "loading");
    load();
  }

  function start() {
    var box = document.querySelector("[data-graph]");
    if (box) setUp(box);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
