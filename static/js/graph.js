// The dependency graph on an asset's Relationships tab, drawn with Cytoscape.js and its dagre
// layout (both vendored) from the tab's graph.json. No inline scripts or styles (the CSP forbids
// both): Cytoscape draws on a canvas and takes its styles through its JS API; the few styles set
// here (the container's height, the tooltip's place, legend swatches) go through the CSSOM.
//
// Layout: layered (dagre), every link laid out from dependent to provider, so what depends on
// the asset (downstream) is left of it and what it depends on (upstream) right of it ("A depends
// on B" reads left to right); on a phone above and below it, since a hop's boxes side by side
// show more than a column of them. The arrows still point from a link's source to its target.
// A hub with many leaves (assets linked to nothing else drawn) shows a few and a "+N more" box
// that shows the rest when clicked. Each asset is a box with its name, shortened in the middle
// to fit; the focal asset's name is never shortened (it wraps). The full name is in a tooltip on
// hover, on keyboard focus (Tab into the graph, arrow keys, Enter) and on a first tap. Colour:
// environment, engine or criticality (`Colour by`); the colours are app.css's --env-*,
// --engine-* and --crit-*, and the legend lists the values drawn. The container grows to what
// the drawing needs at a readable zoom; a graph too large for that opens around the focal asset.
// The wheel scrolls the page; Ctrl + wheel (a trackpad's pinch) zooms.
//
// The same data is written out as lists under "The graph as a list" (for screen readers), and
// the counts as data- attributes on the container. The Cytoscape instance is the container's
// `cy` property (browser tests read labels, colours and positions from it).
(function () {
  "use strict";

  // Cytoscape adds an inline <style> (".__________cytoscape_container { position: relative }")
  // unless an element with this id exists. The CSP refuses inline styles, and app.css already
  // positions .graph, so a marker stands in for it.
  var STYLESHEET_MARKER = "__________cytoscape_stylesheet";
  var PLACEHOLDER_ID = "00000000-0000-0000-0000-000000000000";
  var FONT_FAMILY = "system-ui, -apple-system, \"Segoe UI\", Roboto, sans-serif";
  var FONT_SIZE = 13;
  var ROOT_FONT_SIZE = 15;
  // px of text in a box (longer names are shortened in the middle), and per line of the focal
  // asset's name (which wraps instead); narrower where the container is narrow
  var LABEL_MAX = { wide: 196, narrow: 136 };
  var ROOT_LINE_MAX = { wide: 300, narrow: 200 };
  var NARROW = 600;  // px: a container narrower than this is a phone's
  var LINE_HEIGHT = 19;
  var BOX_PAD_X = 10;
  var BOX_HEIGHT = 28;
  var NODE_SEP = { wide: 8, narrow: 12 };  // between the boxes of one hop
  // a hub with more than COLLAPSE_ABOVE leaves on one side shows KEEP_LEAVES of them and
  // "+N more" (N is 3 at least: folding away one or two saves nothing)
  var KEEP_LEAVES = 3;
  var COLLAPSE_ABOVE = KEEP_LEAVES + 2;
  var QUIET_ABOVE = 12;  // more links than this: their labels show on hover
  var READABLE_ZOOM = 0.8;  // below this the labels are too small: show part, not everything
  var PADDING = 24;
  var MIN_HEIGHT = 280;
  var MAX_HEIGHT = 980;  // on a wide screen: taller graphs show in part (the page scrolls past)
  var NARROW_MAX_HEIGHT = 0.7;  // × the window's height on a phone (a finger on the graph pans it)
  var FILL_WHITE = 0.76;  // a box's fill: its colour mixed with this much white (dark text on it)
  var PROVIDER_IS_SOURCE = { replicates_to: true, feeds: true };  // models/relationship.py
  var CRITICALITY_RANK = { critical: 0, high: 1, medium: 2, low: 3 };
  var COLOUR_VARS = { environment: "--env-", engine: "--engine-", criticality: "--crit-" };
  var SIDES = { up: "upstream", down: "downstream", both: "upstream and downstream (a cycle)" };
  var BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  // bidi controls would reorder a label on the canvas or in the page: name them, as the pages do
  // (webapp/web/filters.reveal_bidi)
  function revealBidi(text) {
    return String(text).replace(BIDI, function (c) {
      return "[U+" + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0") + "]";
    });
  }

  function phrase(kind) {
    return kind === "member_of" ? "is a member of" : kind.replace(/_/g, " ");
  }

  function hops(n) {
    return n === 1 ? "1 hop" : n + " hops";
  }

  // --- labels: measured with the font Cytoscape draws them in ----------------------------------

  var context = document.createElement("canvas").getContext("2d");

  function font(size, weight) {
    return (weight || "normal") + " " + size + "px " + FONT_FAMILY;
  }

  function measure(text, f) {
    context.font = f;
    return context.measureText(text).width;
  }

  // the head and the tail of a name, which is where names differ ("orders-prod-…-eu-west-1-017");
  // a bidi control named in the part left out stays named ("orders-…[U+202E]…-archive")
  function shorten(text, max, f) {
    if (measure(text, f) <= max) return text;
    var units = text.match(/\[U\+[0-9A-F]{4}\]|[\s\S]/gu);
    var best = "…";
    var lo = 1;
    var hi = units.length - 1;
    while (lo <= hi) {
      var n = (lo + hi) >> 1;
      var tail = Math.floor(n * 0.4);
      var middle = units.slice(n - tail, units.length - tail).filter(function (u) { return u.length > 1; });
      var candidate = units.slice(0, n - tail).join("") + "…" + (middle.length ? middle.join("") + "…" : "")
        + units.slice(units.length - tail).join("");
      if (measure(candidate, f) <= max) {
        best = candidate;
        lo = n + 1;
      } else {
        hi = n - 1;
      }
    }
    return best;
  }

  // the focal asset's name in lines of at most `max` px, broken after - _ . / : or a space where
  // one is near, anywhere in a run without them; nothing is left out
  function wrap(text, max, f) {
    var pieces = text.replace(/([-_./: ])/g, "$1\u0000").split("\u0000");  // names hold no NUL
    var lines = [];
    var line = "";
    pieces.forEach(function (piece) {
      if (!line || measure(line + piece, f) <= max) {
        line += piece;
        return;
      }
      lines.push(line);
      line = piece;
    });
    if (line) lines.push(line);
    var out = [];
    lines.forEach(function (l) {
      var rest = "";
      Array.from(l).forEach(function (c) {
        if (rest && measure(rest + c, f) > max) {
          out.push(rest);
          rest = "";
        }
        rest += c;
      });
      out.push(rest);
    });
    return out;
  }

  // --- colour ------------------------------------------------------------------------------------

  function colourValue(node, by) {
    return node[by] || (by === "criticality" ? "none" : "unknown");
  }

  function colourOf(value, by) {
    return cssVar(COLOUR_VARS[by] + value, "#9ca3af");
  }

  // the colour mixed with white: the box's fill, light enough for dark text on any colour
  function tint(colour, white) {
    var hex = colour.replace("#", "");
    if (hex.length === 3) hex = hex.replace(/./g, "$&$&");
    if (!/^[0-9a-f]{6}$/i.test(hex)) return "#f3f4f6";
    var mixed = [0, 2, 4].map(function (i) {
      var c = parseInt(hex.slice(i, i + 2), 16);
      return Math.round(c + (255 - c) * white).toString(16).padStart(2, "0");
    });
    return "#" + mixed.join("");
  }

  // --- the elements ------------------------------------------------------------------------------

  // which end of a link depends on the other (models/relationship.py): the layout puts the
  // dependent left of the provider
  function ends(edge) {
    return PROVIDER_IS_SOURCE[edge.kind]
      ? { dependent: edge.target_id, provider: edge.source_id }
      : { dependent: edge.source_id, provider: edge.target_id };
  }

  function importance(a, b) {
    var ra = a.criticality in CRITICALITY_RANK ? CRITICALITY_RANK[a.criticality] : 4;
    var rb = b.criticality in CRITICALITY_RANK ? CRITICALITY_RANK[b.criticality] : 4;
    return ra - rb || a.name.toLowerCase().localeCompare(b.name.toLowerCase());
  }

  // Leaves (assets linked to one other drawn asset only, not the focal one) grouped by that hub
  // and by their side of it. A group larger than COLLAPSE_ABOVE keeps its KEEP_LEAVES most
  // critical and hides the rest behind a "+N more" node, unless it was expanded.
  function collapse(data, byId, expanded) {
    var neighbours = {};
    var via = {};
    data.edges.forEach(function (edge) {
      if (!byId[edge.source_id] || !byId[edge.target_id]) return;
      [[edge.source_id, edge.target_id], [edge.target_id, edge.source_id]].forEach(function (pair) {
        (neighbours[pair[0]] = neighbours[pair[0]] || {})[pair[1]] = true;
        via[pair[0]] = via[pair[0]] || edge;
      });
    });
    var groups = {};
    data.nodes.forEach(function (node) {
      var others = Object.keys(neighbours[node.id] || {});
      if (node.id === data.root || others.length !== 1) return;
      var hub = others[0];
      var side = ends(via[node.id]).dependent === node.id ? "dependents" : "providers";
      var key = hub + ":" + side;
      (groups[key] = groups[key] || { key: key, hub: hub, side: side, leaves: [] }).leaves.push(node);
    });
    var hidden = {};
    var kept = {};
    var more = [];
    Object.keys(groups).forEach(function (key) {
      var group = groups[key];
      if (group.leaves.length <= COLLAPSE_ABOVE || expanded[key]) return;
      group.leaves.sort(importance);
      group.members = group.leaves.slice(KEEP_LEAVES);
      group.members.forEach(function (node) { hidden[node.id] = key; });
      group.leaves.slice(0, KEEP_LEAVES).forEach(function (node) { kept[node.id] = key; });
      group.after = group.leaves[KEEP_LEAVES - 1].id;  // "+N more" is ordered after the last shown
      group.kinds = {};
      data.edges.forEach(function (edge) {
        if (hidden[edge.source_id] === key || hidden[edge.target_id] === key) group.kinds[edge.kind] = true;
      });
      more.push(group);
    });
    return { hidden: hidden, kept: kept, more: more };
  }

  function box(label, size, weight) {
    var lines = label.split("\n");
    var width = Math.max.apply(null, lines.map(function (l) { return measure(l, font(size, weight)); }));
    return { w: Math.ceil(width) + 2 * BOX_PAD_X, h: Math.max(BOX_HEIGHT, lines.length * LINE_HEIGHT + 14) };
  }

  function elements(data, byId, view, narrow) {
    var width = narrow ? "narrow" : "wide";
    var shown = collapse(data, byId, view.expanded);
    var items = [];
    var order = 0;
    var orderOf = {};
    data.nodes.forEach(function (node) {
      if (shown.hidden[node.id]) return;
      orderOf[node.id] = order;
      var name = revealBidi(node.name);
      var root = node.id === data.root;
      var label = root
        ? wrap(name, ROOT_LINE_MAX[width], font(ROOT_FONT_SIZE, "bold")).join("\n")
        : shorten(name, LABEL_MAX[width], font(FONT_SIZE));
      var size = root ? box(label, ROOT_FONT_SIZE, "bold") : box(label, FONT_SIZE);
      items.push({
        group: "nodes",
        data: {
          id: node.id, name: name, label: label, w: size.w, h: size.h, order: order++,
          environment: node.environment, engine: node.engine, criticality: node.criticality,
          side: node.side, depth: node.depth, shownWith: shown.kept[node.id] || "",
        },
        classes: root ? "asset root" : "asset",
      });
    });
    data.edges.forEach(function (edge) {
      if (!byId[edge.source_id] || !byId[edge.target_id]) return;
      if (shown.hidden[edge.source_id] || shown.hidden[edge.target_id]) return;
      var end = ends(edge);
      items.push({
        group: "edges",
        // laid out dependent → provider; the arrow is drawn at the link's target
        data: { id: edge.id, source: end.dependent, target: end.provider, kind: edge.kind,
                label: phrase(edge.kind) },
        classes: end.dependent === edge.source_id ? "forward" : "backward",
      });
    });
    shown.more.forEach(function (group) {
      var id = "more:" + group.key;
      var label = "+" + group.members.length + " more";
      var size = box(label, FONT_SIZE, "bold");
      var kinds = Object.keys(group.kinds);
      items.push({
        group: "nodes",
        data: { id: id, label: label, w: size.w, h: size.h, order: orderOf[group.after] + 0.5, group: group.key,
                hub: group.hub, side: group.side,
                members: group.members.map(function (node) { return revealBidi(node.name); }),
                kind: kinds.length === 1 ? kinds[0] : "" },
        classes: "more",
      });
      var dependents = group.side === "dependents";
      var forward = kinds.length === 1 && dependents !== Boolean(PROVIDER_IS_SOURCE[kinds[0]]);
      items.push({
        group: "edges",
        data: { id: id + ":link", source: dependents ? id : group.hub, target: dependents ? group.hub : id,
                kind: kinds.length === 1 ? kinds[0] : "", label: "" },
        classes: "to-more " + (kinds.length === 1 ? (forward ? "forward" : "backward") : ""),
      });
    });
    return items;
  }

  function styles() {
    var ink = cssVar("--fg", "#1f2933");
    var line = cssVar("--edge", "#64748b");
    var root = cssVar("--graph-root", "#111827");
    return [
      { selector: "node", style: {
        shape: "round-rectangle", width: "data(w)", height: "data(h)",
        "background-color": "data(fill)", "border-width": 2, "border-color": "data(color)",
        label: "data(label)", color: ink, "font-size": FONT_SIZE, "font-family": FONT_FAMILY,
        "text-valign": "center", "text-halign": "center", "text-wrap": "wrap",
        "text-max-width": 1000, "line-height": LINE_HEIGHT / ROOT_FONT_SIZE,
        "min-zoomed-font-size": 6,
      } },
      { selector: "node.root", style: {
        "font-size": ROOT_FONT_SIZE, "font-weight": "bold", "border-width": 3,
        "outline-width": 3, "outline-color": root, "outline-offset": 3,
      } },
      { selector: "node.more", style: {
        "background-color": "#ffffff", "border-color": line, "border-style": "dashed",
        "font-weight": "bold", color: cssVar("--accent", "#1d4ed8"),
      } },
      { selector: "node.focused", style: {
        "underlay-color": cssVar("--accent", "#1d4ed8"), "underlay-opacity": 0.25,
        "underlay-padding": 6, "underlay-shape": "round-rectangle",
      } },
      { selector: "edge", style: {
        width: 1.6, "line-color": line, "target-arrow-color": line, "source-arrow-color": line,
        "arrow-scale": 1.1, "curve-style": "bezier",
        label: "data(label)", "font-size": 12, "font-family": FONT_FAMILY, color: ink,
        "text-background-color": "#ffffff", "text-background-opacity": 0.9,
        "text-background-padding": 2, "min-zoomed-font-size": 7,
      } },
      { selector: "edge.forward", style: { "target-arrow-shape": "triangle" } },
      { selector: "edge.backward", style: { "source-arrow-shape": "triangle" } },
      { selector: "edge.to-more", style: { "line-style": "dashed" } },
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
  function summarise(container, data, names) {
    var target = document.querySelector("[data-graph-summary]");
    if (!target) return;
    var assetUrl = container.getAttribute("data-asset-url");
    target.textContent = "";
    target.appendChild(element("h3", data.nodes.length === 1 ? "1 asset" : data.nodes.length + " assets"));
    var nodes = element("ul");
    nodes.setAttribute("data-graph-nodes", "");
    data.nodes.forEach(function (node) {
      var li = element("li");
      li.setAttribute("data-node-id", node.id);
      var a = element("a", names[node.id]);
      a.href = assetUrl.replace(PLACEHOLDER_ID, node.id);
      li.appendChild(a);
      var facts = [node.engine, node.environment, node.criticality || "criticality not set"];
      if (node.side === "self") facts.push("this asset");
      else facts.push(SIDES[node.side] + ", " + hops(node.depth));
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

  function setUp(container) {
    if (typeof window.cytoscape !== "function" || container.cy) return;
    if (!document.getElementById(STYLESHEET_MARKER)) {
      var marker = document.createElement("meta");
      marker.id = STYLESHEET_MARKER;
      marker.name = "cytoscape-container-style";
      marker.content = "in app.css";
      document.head.appendChild(marker);
    }
    var message = container.parentNode.querySelector("[data-graph-message]");
    var tip = container.parentNode.querySelector("[data-graph-tip]");
    var status = document.querySelector("[data-graph-status]");
    var hint = document.querySelector("[data-graph-hint]");
    var sides = document.querySelector("[data-graph-sides]");
    var how = document.querySelector("[data-graph-how]");
    var touch = Boolean(window.matchMedia && window.matchMedia("(pointer: coarse)").matches);
    if (how && touch) {
      how.textContent = "Tap an asset for its full name, and again to open its relationships. "
        + "Drag to move the drawing; pinch to zoom.";
    }
    var legend = document.querySelector("[data-graph-legend]");
    var truncated = document.querySelector("[data-graph-truncated]");
    var controls = document.querySelector("[data-graph-controls]");
    var fit = document.querySelector("[data-graph-fit]");
    var assetUrl = container.getAttribute("data-asset-url");
    var rootName = container.getAttribute("data-asset-name") || "";
    var dagre = false;
    try { dagre = Boolean(window.cytoscape("layout", "dagre")); } catch (e) { dagre = false; }
    var view = { data: null, byId: {}, names: {}, expanded: {}, focused: null, tapped: null, narrow: false,
                 sep: NODE_SEP.wide };
    var latest = 0;

    var cy = window.cytoscape({
      container: container, elements: [], style: styles(), layout: { name: "preset" },
      minZoom: 0.1, maxZoom: 2, boxSelectionEnabled: false, autoungrabify: true,
      autounselectify: true,
    });
    container.cy = cy;

    function say(text, state) {
      container.setAttribute("data-state", state);
      message.textContent = text;
      message.hidden = !text;
    }

    function colourBy() {
      return controls.elements.colour ? controls.elements.colour.value : "environment";
    }

    function paint() {
      var by = colourBy();
      cy.batch(function () {
        cy.nodes(".asset").forEach(function (node) {
          var colour = colourOf(colourValue(node.data(), by), by);
          node.data({ color: colour, fill: tint(colour, FILL_WHITE) });
        });
        cy.nodes(".more").data({ color: cssVar("--edge", "#64748b"), fill: "#ffffff" });
      });
      container.setAttribute("data-colour", by);
      describeColours(by);
    }

    // the legend: the values drawn, in the order of the choice (the select's data-values)
    function describeColours(by) {
      if (!legend) return;
      var option = controls.elements.colour && controls.elements.colour.selectedOptions[0];
      var order = option ? (option.getAttribute("data-values") || "").split(" ") : [];
      var drawn = {};
      cy.nodes(".asset").forEach(function (node) { drawn[colourValue(node.data(), by)] = true; });
      var values = order.filter(function (v) { return drawn[v]; })
        .concat(Object.keys(drawn).filter(function (v) { return order.indexOf(v) === -1; }).sort());
      legend.textContent = "";
      values.forEach(function (value) {
        var li = element("li");
        var swatch = element("span");
        swatch.className = "swatch graph-swatch";
        swatch.setAttribute("aria-hidden", "true");
        var colour = colourOf(value, by);
        swatch.style.backgroundColor = tint(colour, FILL_WHITE);
        swatch.style.borderColor = colour;
        li.appendChild(swatch);
        li.appendChild(document.createTextNode(value === "none" ? "criticality not set" : value));
        legend.appendChild(li);
      });
      var here = element("li");
      var ring = element("span");
      ring.className = "swatch graph-swatch swatch-root";
      ring.setAttribute("aria-hidden", "true");
      here.appendChild(ring);
      here.appendChild(document.createTextNode(rootName + " (this asset)"));
      legend.appendChild(here);
      if (cy.nodes(".more").length) {
        var more = element("li");
        var dashed = element("span");
        dashed.className = "swatch graph-swatch swatch-more";
        dashed.setAttribute("aria-hidden", "true");
        more.appendChild(dashed);
        more.appendChild(document.createTextNode("+N more: assets linked only to their neighbour; " + (touch ? "tap" : "click") + " to show them"));
        legend.appendChild(more);
      }
      legend.appendChild(element("li", "arrows point from a link's source to its target"
        + (cy.edges(".quiet").length ? "; point at a link to see its kind" : ", labelled by kind")));
      legend.lastChild.className = "muted";
    }

    // The container as tall as the drawing needs at a readable zoom, within bounds; the whole
    // graph when it fits readably, else the part nearest the focal asset at a readable zoom.
    function frame(centre) {
      var drawn = cy.elements();
      if (!drawn.length) return;
      var bb = drawn.boundingBox();
      var widthZoom = Math.min(1, (container.clientWidth - 2 * PADDING) / Math.max(bb.w, 1));
      var cap = view.narrow ? Math.round(window.innerHeight * NARROW_MAX_HEIGHT) : MAX_HEIGHT;
      var wanted = Math.round(bb.h * Math.max(widthZoom, READABLE_ZOOM) + 2 * PADDING);
      container.style.height = Math.max(MIN_HEIGHT, Math.min(cap, wanted)) + "px";
      cy.resize();
      cy.fit(undefined, PADDING);
      if (cy.zoom() > 1) {
        cy.zoom(1);
        cy.center();
      }
      var partial = cy.zoom() < READABLE_ZOOM;
      if (partial) around(centre && centre.length ? centre : cy.$(".root"), READABLE_ZOOM);
      container.setAttribute("data-view", partial ? "part" : "whole");
      if (hint) hint.hidden = !partial;
    }

    // `zoom`, with `node` in the middle as far as the drawing allows: no empty margin where
    // there is more of the graph to show, the drawing centred along a side it fits on
    function around(node, zoom) {
      var bb = cy.elements().boundingBox();
      var at = node.position();
      var pan = {};
      [["x", "x1", "x2", container.clientWidth], ["y", "y1", "y2", container.clientHeight]].forEach(function (axis) {
        var k = axis[0];
        var size = axis[3];
        var low = bb[axis[1]] * zoom;
        var high = bb[axis[2]] * zoom;
        if (high - low + 2 * PADDING <= size) {
          pan[k] = (size - low - high) / 2;
        } else {
          pan[k] = Math.min(PADDING - low, Math.max(size - PADDING - high, size / 2 - at[k] * zoom));
        }
      });
      cy.viewport({ zoom: zoom, pan: pan });
    }

    function draw(centre) {
      var data = view.data;
      hideTip();
      view.narrow = container.clientWidth < NARROW;
      if (sides) {
        sides.textContent = (view.narrow ? "Above " : "Left of ") + rootName + ": what depends on it (downstream). "
          + (view.narrow ? "Below" : "Right") + ": what it depends on (upstream).";
      }
      cy.elements().remove();
      cy.add(elements(data, view.byId, view, view.narrow));
      if (cy.edges().length > QUIET_ABOVE) cy.edges().addClass("quiet");
      paint();
      // links labelled (a few): more room between boxes for the labels
      var labelled = !cy.edges(".quiet").length;
      view.sep = NODE_SEP[view.narrow ? "narrow" : "wide"] + (labelled ? 16 : 0);
      var layout = dagre ? {
        name: "dagre", rankDir: view.narrow ? "TB" : "LR", nodeSep: view.sep,
        rankSep: view.narrow ? (labelled ? 64 : 44) : (labelled ? 110 : 64),
        edgeSep: 8, fit: false, animate: false,
        sort: function (a, b) { return a.data("order") - b.data("order"); },
      } : { name: "breadthfirst", directed: true, fit: false };
      cy.layout(layout).run();
      cy.nodes(".more").forEach(tuck);
      frame(centre && cy.$id(centre));
      container.setAttribute("data-drawn-count", String(cy.nodes().length));
    }

    // Which way the drawing goes: dependents left of providers (LR), or above them (TB) on a
    // phone, where a column of boxes side by side shows more of the graph than rows of hops.
    // `rank` is the axis along which hops go, `across` the one along which a hop's boxes line up.
    function axes() {
      return view.narrow ? { rank: "y", across: "x", size: "w", sep: view.sep }
        : { rank: "x", across: "y", size: "h", sep: view.sep };
    }

    // "+N more" next to the leaves shown of its group: dagre cannot tell it from a leaf of the
    // same hub elsewhere in its rank, so it moves there, and the boxes it passes move one place
    // along into the room it leaves
    function tuck(more) {
      var a = axes();
      var at = more.position(a.across);
      var rank = cy.nodes().filter(function (n) { return Math.abs(n.position(a.rank) - more.position(a.rank)) < 1; });
      var mates = rank.filter(function (n) { return n.data("shownWith") === more.data("group"); });
      if (!mates.length) return;
      var sorted = mates.toArray().sort(function (m, n) { return m.position(a.across) - n.position(a.across); });
      var first = sorted[0];
      var last = sorted[sorted.length - 1];
      if (at > first.position(a.across) && at < last.position(a.across)) return;
      var sign = at > last.position(a.across) ? 1 : -1;
      var next = sign > 0 ? last : first;
      var edge = next.position(a.across);
      var shift = sign * (more.data(a.size) + a.sep);
      rank.forEach(function (n) {
        var p = n.position(a.across);
        if (n.same(more) || (p - edge) * sign <= 0 || (p - at) * sign >= 0) return;
        n.position(a.across, p + shift);
      });
      more.position(a.across, edge + sign * ((next.data(a.size) + more.data(a.size)) / 2 + a.sep));
    }

    function show(data) {
      view.data = data;
      view.byId = {};
      view.names = {};
      view.expanded = {};
      view.focused = null;
      view.tapped = null;
      data.nodes.forEach(function (node) {
        view.byId[node.id] = node;
        view.names[node.id] = revealBidi(node.name);
      });
      draw();
      container.setAttribute("data-node-count", String(data.nodes.length));
      container.setAttribute("data-edge-count", String(data.edges.length));
      summarise(container, data, view.names);
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

    function expand(node) {
      view.expanded[node.data("group")] = true;
      var hub = node.data("hub");
      draw(hub);  // in view: the hub and the assets now shown
      var back = cy.$id(hub);
      if (back.length && view.focused) focus(back);
    }

    // --- the tooltip: the full name, on hover and on keyboard focus ---------------------------

    function describe(node) {
      if (node.hasClass("more")) {
        var members = node.data("members");
        var hubName = view.names[node.data("hub")] || "";
        var list = members.slice(0, 8).join(", ") + (members.length > 8 ? ", …" : "");
        var count = members.length + (members.length === 1 ? " more asset" : " more assets");
        return { title: node.data("side") === "dependents"
                   ? count + " that depend on " + hubName
                   : count + " that " + hubName + " depends on",
                 facts: list, action: (touch ? "Tap" : "Click") + " to show them." };
      }
      var asset = view.byId[node.id()];
      var facts = [asset.engine, asset.environment,
                   asset.criticality ? asset.criticality + " criticality" : "criticality not set"];
      var where = asset.side === "self" ? "this asset" : SIDES[asset.side] + ", " + hops(asset.depth);
      return { title: node.data("name"), facts: facts.join(" · ") + " — " + where,
               action: asset.side === "self" ? "" : (touch ? "Tap again" : "Click") + " to open its relationships." };
    }

    function showTip(node) {
      if (!tip) return;
      var text = describe(node);
      tip.textContent = "";
      tip.appendChild(element("strong", text.title));
      tip.appendChild(element("span", text.facts));
      if (text.action) tip.appendChild(element("span", text.action));
      tip.hidden = false;
      var at = node.renderedBoundingBox();
      var width = container.clientWidth;
      var left = Math.max(4, Math.min((at.x1 + at.x2) / 2 - tip.offsetWidth / 2, width - tip.offsetWidth - 4));
      var below = at.y2 + 8;
      var top = below + tip.offsetHeight > container.clientHeight ? at.y1 - tip.offsetHeight - 8 : below;
      tip.style.left = Math.round(left) + "px";
      tip.style.top = Math.round(Math.max(4, top)) + "px";
    }

    function hideTip() {
      if (tip) tip.hidden = true;
    }

    // --- the keyboard: Tab into the graph, arrows between assets, Enter to open --------------------

    function focus(node) {
      cy.nodes(".focused").removeClass("focused");
      view.focused = node.id();
      node.addClass("focused");
      var extent = cy.extent();
      var bb = node.boundingBox();
      if (bb.x1 < extent.x1 || bb.x2 > extent.x2 || bb.y1 < extent.y1 || bb.y2 > extent.y2) {
        cy.center(node);
      }
      showTip(node);
      if (status) {
        var text = describe(node);
        status.textContent = text.title + ". " + text.facts + ". " + text.action;
      }
    }

    // the arrow keys: to the next hop (the nearest box in it), or to the next box in this hop
    function step(from, key) {
      var a = axes();
      var keys = view.narrow
        ? { ArrowUp: [a.rank, -1], ArrowDown: [a.rank, 1], ArrowLeft: [a.across, -1], ArrowRight: [a.across, 1] }
        : { ArrowLeft: [a.rank, -1], ArrowRight: [a.rank, 1], ArrowUp: [a.across, -1], ArrowDown: [a.across, 1] };
      var axis = keys[key][0];
      var sign = keys[key][1];
      var here = from.position();
      var best = null;
      var bestScore = Infinity;
      cy.nodes().forEach(function (node) {
        if (node.same(from)) return;
        var p = node.position();
        var along = (p[a.rank] - here[a.rank]) * (axis === a.rank ? sign : 1);
        var beside = (p[a.across] - here[a.across]) * (axis === a.across ? sign : 1);
        var score;
        if (axis === a.rank) {
          if (along <= 2) return;
          score = along * 1000 + Math.abs(beside);
        } else {
          if (Math.abs(along) >= 2 || beside <= 1) return;
          score = beside;
        }
        if (score < bestScore) {
          bestScore = score;
          best = node;
        }
      });
      return best;
    }

    function activate(node) {
      if (node.hasClass("more")) {
        expand(node);
      } else if (!node.hasClass("root")) {
        window.location.assign(assetUrl.replace(PLACEHOLDER_ID, node.id()));
      }
    }

    container.addEventListener("focus", function () {
      var node = view.focused && cy.$id(view.focused);
      if (!node || !node.length) node = cy.$(".root");
      if (node.length) focus(node);
    });
    container.addEventListener("blur", function () {
      cy.nodes(".focused").removeClass("focused");
      hideTip();
    });
    container.addEventListener("keydown", function (event) {
      var node = view.focused && cy.$id(view.focused);
      if (!node || !node.length) return;
      var next = null;
      if (event.key === "Home") next = cy.$(".root");
      else if (/^Arrow/.test(event.key)) next = step(node, event.key);
      else if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        activate(node);
        return;
      } else if (event.key === "Escape") {
        hideTip();
        return;
      } else {
        return;
      }
      event.preventDefault();
      if (next && next.length) focus(next);
    });

    // --- loading -----------------------------------------------------------------------------

    function load() {
      var depth = controls.elements.depth.value;
      var direction = controls.elements.direction.value;
      var query = "?depth=" + encodeURIComponent(depth) + "&direction=" + encodeURIComponent(direction);
      var ticket = ++latest;
      container.setAttribute("data-state", "loading");
      fetch(container.getAttribute("data-graph-url") + query, {
        credentials: "same-origin", headers: { Accept: "application/json" },
      }).then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (!response.ok || type.indexOf("json") === -1) throw new Error(String(response.status));
        return response.json();
      }).then(function (data) {
        if (ticket !== latest) return;  // a newer request is on its way
        show(data);
      }).catch(function (error) {
        if (ticket !== latest) return;
        cy.elements().remove();
        say("The graph could not be loaded (" + error.message + "). Reload the page to try again.", "error");
      });
    }

    // the URL keeps the choices, so a reload or a shared link shows the same graph
    function remember() {
      var query = "?depth=" + encodeURIComponent(controls.elements.depth.value)
        + "&direction=" + encodeURIComponent(controls.elements.direction.value);
      if (colourBy() !== "environment") query += "&colour=" + encodeURIComponent(colourBy());
      history.replaceState(history.state, "", window.location.pathname + query);
    }

    controls.addEventListener("change", function (event) {
      if (event.target.name === "colour") {
        paint();
      } else {
        load();
      }
      remember();
    });
    controls.addEventListener("submit", function (event) { event.preventDefault(); });
    if (fit) {
      fit.hidden = false;
      fit.addEventListener("click", function () {
        hideTip();
        cy.fit(undefined, PADDING);
        if (cy.zoom() > 1) {
          cy.zoom(1);
          cy.center();
        }
        if (hint) hint.hidden = true;
      });
    }
    // a tap with a finger shows the tooltip first (there is no pointing at it), the next opens
    cy.on("tap", "node", function (event) {
      var original = event.originalEvent || {};
      var finger = /^touch/.test(original.type || "") || original.pointerType === "touch";
      if (finger && view.tapped !== event.target.id() && !event.target.hasClass("more")) {
        view.tapped = event.target.id();
        showTip(event.target);
        return;
      }
      view.tapped = null;
      activate(event.target);
    });
    cy.on("tap", function (event) {
      if (event.target === cy) {
        view.tapped = null;
        hideTip();
      }
    });
    cy.on("mouseover", "node", function (event) {
      if (!event.target.hasClass("root")) container.classList.add("pointing");
      showTip(event.target);
    });
    cy.on("mouseout", "node", function () {
      container.classList.remove("pointing");
      var node = view.focused && cy.$id(view.focused);
      if (node && node.length && document.activeElement === container) showTip(node);
      else hideTip();
    });
    cy.on("viewport", hideTip);
    // the wheel scrolls the page, as everywhere else on it; Ctrl + wheel (a trackpad's pinch)
    // zooms the drawing (Cytoscape listens on the container, in the capture phase)
    container.parentNode.addEventListener("wheel", function (event) {
      if (!event.ctrlKey && !event.metaKey) event.stopPropagation();
    }, { capture: true });
    cy.on("mouseover", "edge", function (event) { event.target.addClass("hover"); });
    cy.on("mouseout", "edge", function (event) { event.target.removeClass("hover"); });
    var resizing = 0;
    window.addEventListener("resize", function () {
      clearTimeout(resizing);
      resizing = setTimeout(function () {
        if (!view.data) return;
        if ((container.clientWidth < NARROW) !== view.narrow) draw();
        else frame();
      }, 150);
    });
    // a link added or removed on this page (the htmx answer's HX-Trigger)
    document.body.addEventListener("relationships-changed", load);
    say("Loading the graph…", "loading");
    load();
  }

  function start() {
    var container = document.querySelector("[data-graph]");
    if (container) setUp(container);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
