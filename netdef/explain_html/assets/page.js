// netdef explain --html: the page's behaviour (no libraries). Data: #netdef-data; graph: Graphviz's inline SVG.
(function () {
  "use strict";
  const scriptStart = performance.now();

  const data = JSON.parse(document.getElementById("netdef-data").textContent);
  const layers = data.layers;
  const byName = new Map(layers.map((layer, i) => [layer.name, i]));
  const SVG_NS = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ small helpers

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function count(n) {
    for (const [unit, size] of [["G", 1e9], ["M", 1e6], ["k", 1e3]]) {
      if (Math.abs(n) >= size) return (n / size).toPrecision(3).replace(/\.?0+$/, "") + " " + unit;
    }
    return String(Math.round(n));
  }

  const flops = (n) => (n === null || n === undefined ? "unknown" : count(n) + (n >= 1e3 ? "FLOPs" : " FLOPs"));
  const num = (x) => (x === null || x === undefined ? "n/a" : Number(x).toPrecision(4).replace(/(\.\d*?)0+(e|$)/, "$1$2").replace(/\.(e|$)/, "$1"));
  const shape = (dims) => (dims === null ? "?" : dims.length ? dims.map((d) => (d === -1 ? "?" : d)).join("x") : "scalar");
  const colour = (type) => data.colours[type] || "#ffffff";
  const typeText = (type) => type.split("_").map((p) => p[0] + p.slice(1).toLowerCase()).join("");

  function layerLink(index, text) {
    return el("a", { class: "layer-link", onclick: () => select(index) }, text || layers[index].name);
  }

  // ------------------------------------------------------------------ header

  function renderHeader() {
    const ios = data.io.map((t) => `${t.mode === "input" ? "in" : "out"} ${t.name} [${shape(t.shape)} ${t.dtype}]`);
    $("identity").append(el("h1", {}, data.name), el("span", { class: "badge" }, data.precision), el("span", { class: "io" }, ios.join("   ")));
    const totals = data.totals;
    $("totals").append(
      el("b", {}, totals.layers), " layers · ", el("b", {}, totals.params.toLocaleString("en-US")), " weights · ",
      el("b", {}, flops(totals.flops)), ` for batch ${data.batch}`,
      totals.unknown_flops ? ` (${totals.unknown_flops} layers without a FLOPs count)` : "",
      data.checkpoint ? el("span", { class: "hint" }, "  ·  weights: " + data.checkpoint) : "",
      data.input ? el("span", { class: "hint" }, "  ·  activations: " + data.input) : "",
    );
    const present = new Map();
    for (const layer of layers) present.set(layer.type, (present.get(layer.type) || 0) + 1);
    for (const [type, n] of [...present].sort((a, b) => b[1] - a[1])) {
      $("legend").append(
        el("span", { title: data.semantics[type] || "" }, el("span", { class: "swatch", style: `background:${colour(type)}` }), `${typeText(type)} ×${n}`),
      );
    }
  }

  // ------------------------------------------------------------------ layer list and search

  const listItems = [];
  const LIST_CHARS = 26; // longer names show their end (the scope's start is in the tooltip and the panel)

  function renderList() {
    const list = $("layer-list");
    layers.forEach((layer, i) => {
      const item = el(
        "li",
        { title: `${layer.name} (${layer.type})`, onclick: () => select(i) },
        el("span", { class: "num" }, i),
        el("span", { class: "swatch", style: `background:${colour(layer.type)}` }),
        layer.name.length > LIST_CHARS ? "…" + layer.name.slice(-(LIST_CHARS - 1)) : layer.name,
        el("small", {}, typeText(layer.type)),
      );
      listItems.push(item);
      list.append(item);
    });
    const search = $("search");
    search.addEventListener("input", filterList);
    search.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        const first = listItems.findIndex((item) => !item.hidden);
        if (first >= 0) select(first);
      }
    });
    filterList();
  }

  function filterList() {
    const words = $("search").value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    layers.forEach((layer, i) => {
      const text = `${layer.name} ${layer.type} ${typeText(layer.type)}`.toLowerCase();
      const visible = words.every((word) => text.includes(word));
      listItems[i].hidden = !visible;
      shown += visible;
    });
    $("list-count").textContent = words.length ? `${shown} of ${layers.length} layers` : `${layers.length} layers`;
  }

  // ------------------------------------------------------------------ graph: pan and zoom

  const svg = document.querySelector("#graph svg");
  const root = svg.querySelector("g.graph");
  const full = svg.viewBox.baseVal;
  const home = { x: full.x, y: full.y, w: full.width, h: full.height };
  let view = { ...home };

  function setView(next) {
    view = next;
    svg.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`);
  }

  function svgPoint(clientX, clientY) {
    const point = svg.createSVGPoint();
    point.x = clientX;
    point.y = clientY;
    return point.matrixTransform(svg.getScreenCTM().inverse());
  }

  function zoomAt(factor, clientX, clientY) {
    const w = Math.min(Math.max(view.w * factor, 20), home.w * 4);
    const f = w / view.w;
    const p = svgPoint(clientX, clientY);
    setView({ x: p.x - (p.x - view.x) * f, y: p.y - (p.y - view.y) * f, w: view.w * f, h: view.h * f });
  }

  function zoomCentre(factor) {
    const box = svg.getBoundingClientRect();
    zoomAt(factor, box.left + box.width / 2, box.top + box.height / 2);
  }

  function setupPanZoom() {
    const pane = $("graph");
    svg.addEventListener("wheel", (event) => {
      event.preventDefault();
      zoomAt(Math.exp(event.deltaY * (event.deltaMode === 1 ? 0.05 : 0.0015)), event.clientX, event.clientY);
    }, { passive: false });
    let drag = null;
    svg.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      drag = { x: event.clientX, y: event.clientY, view: { ...view }, moved: false, id: event.pointerId };
    });
    svg.addEventListener("pointermove", (event) => {
      if (!drag) return;
      const dx = event.clientX - drag.x;
      const dy = event.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 4) return;
      if (!drag.moved) {
        drag.moved = true;
        svg.setPointerCapture(drag.id);
        pane.classList.add("panning");
      }
      const scale = 1 / svg.getScreenCTM().a;
      setView({ ...drag.view, x: drag.view.x - dx * scale, y: drag.view.y - dy * scale });
    });
    const end = () => {
      if (drag && drag.moved) {
        pane.classList.remove("panning");
        suppressClick = true;
        setTimeout(() => (suppressClick = false), 0);
      }
      drag = null;
    };
    svg.addEventListener("pointerup", end);
    svg.addEventListener("pointercancel", end);
    $("zoom-fit").addEventListener("click", () => setView({ ...home }));
    $("zoom-in").addEventListener("click", () => zoomCentre(1 / 1.4));
    $("zoom-out").addEventListener("click", () => zoomCentre(1.4));
  }

  let suppressClick = false;

  // ------------------------------------------------------------------ graph: nodes, edges, scopes

  const nodeOf = new Map(); // layer index -> <g class="node">
  const edges = []; // {g, from, to}: from/to are Graphviz node names (L12, in0, out0)
  const clusters = new Map(); // scope -> {g, box, members:Set, depth}
  const folded = new Set();
  const rootMatrix = root.transform.baseVal.consolidate() ? root.transform.baseVal.consolidate().matrix : svg.createSVGMatrix();

  function toRoot(box) {
    // a box in the graph group's coordinates -> the SVG's viewBox coordinates
    const a = svg.createSVGPoint();
    a.x = box.x;
    a.y = box.y;
    const p = a.matrixTransform(rootMatrix);
    return { x: p.x, y: p.y, w: box.width * rootMatrix.a, h: box.height * rootMatrix.d };
  }

  function endName(node) {
    // a Graphviz node name (L12, in0, out0) as the page names it
    const index = nodeLayer(node);
    if (index >= 0) return layers[index].name;
    const io = data.io.filter((t) => t.mode === (node.startsWith("in") ? "input" : "output"))[Number(node.replace(/\D+/, ""))];
    return io ? `${io.mode} ${io.name}` : node;
  }

  function nodeLayer(name) {
    return name[0] === "L" ? Number(name.slice(1)) : -1;
  }

  function setupGraph() {
    for (const g of root.querySelectorAll("g.node")) {
      const index = nodeLayer(g.querySelector("title").textContent);
      if (index >= 0) {
        nodeOf.set(index, g);
        g.dataset.layer = index;
      }
    }
    for (const g of root.querySelectorAll("g.edge")) {
      const [from, to] = g.querySelector("title").textContent.split("->");
      edges.push({ g, from, to });
    }
    for (const g of root.querySelectorAll("g.cluster")) {
      const label = g.querySelector("text");
      if (!label) continue;
      const scope = label.textContent;
      const members = new Set();
      layers.forEach((layer, i) => {
        if (layer.scope === scope || layer.scope.startsWith(scope + ".")) members.add(i);
      });
      clusters.set(scope, { g, label, members, depth: scope.split(".").length, box: g.getBBox() });
    }
    // every size the start needs, read in this one layout pass
    const plot = $("compare-plot-box");
    measured = { scale: scale(), pane: svg.getBoundingClientRect(), plot: [plot.clientWidth, plot.clientHeight] };
    // labels change only after every box is read: a change between two reads would lay the SVG out again
    for (const [i, g] of nodeOf) g.querySelector("title").textContent = `${layers[i].name} (${typeText(layers[i].type)}): click for details`;
    for (const g of root.querySelectorAll("g.node")) {
      const title = g.querySelector("title");
      if (g.dataset.layer === undefined) title.textContent = `network ${endName(title.textContent)}`;
    }
    for (const edge of edges) edge.g.querySelector("title").textContent = `${endName(edge.from)} → ${endName(edge.to)}`;
    for (const [scope, cluster] of clusters) {
      cluster.g.querySelector("title").textContent = `${scope}: ${cluster.members.size} layers (click the label to fold)`;
      cluster.label.textContent = "▾ " + scope;
      cluster.label.addEventListener("click", (event) => {
        event.stopPropagation();
        fold(scope, true);
      });
    }
    svg.addEventListener("click", (event) => {
      if (suppressClick) return;
      const node = event.target.closest("g.node");
      if (node && node.dataset.layer !== undefined) select(Number(node.dataset.layer), { centre: false });
    });
    const overlay = svgEl("g", { class: "folds" });
    root.append(overlay);
    const depths = new Map(); // depth -> an example scope
    for (const [scope, cluster] of clusters) if (!depths.has(cluster.depth)) depths.set(cluster.depth, scope);
    const choose = $("fold-depth");
    choose.append(el("option", { value: "0" }, depths.size ? "Fold scopes…" : "No scopes to fold"));
    for (const depth of [...depths.keys()].sort((a, b) => a - b)) {
      const example = depths.get(depth);
      const shown = example.length > 34 ? "…" + example.slice(-33) : example;
      choose.append(el("option", { value: String(depth) }, `like ${shown} (depth ${depth})`));
    }
    choose.addEventListener("change", () => {
      folded.clear();
      const depth = Number(choose.value);
      for (const [scope, cluster] of clusters) if (cluster.depth === depth) folded.add(scope);
      refreshFolds();
    });
    $("expand-all").addEventListener("click", () => {
      folded.clear();
      choose.value = "0";
      refreshFolds();
    });
  }

  function fold(scope, on) {
    if (on) folded.add(scope);
    else folded.delete(scope);
    refreshFolds();
  }

  function foldedParent(scope) {
    // the outermost folded scope containing `scope` (itself included), or null
    const parts = scope.split(".");
    for (let n = 1; n <= parts.length; n++) {
      const prefix = parts.slice(0, n).join(".");
      if (folded.has(prefix)) return prefix;
    }
    return null;
  }

  function refreshFolds() {
    const hidden = new Set();
    for (const scope of folded) for (const i of clusters.get(scope).members) hidden.add(i);
    for (const [i, g] of nodeOf) g.style.display = hidden.has(i) ? "none" : "";
    for (const edge of edges) {
      const a = nodeLayer(edge.from);
      const b = nodeLayer(edge.to);
      edge.g.style.display = hidden.has(a) && hidden.has(b) && sameFold(a, b) ? "none" : "";
    }
    const overlay = root.querySelector("g.folds");
    overlay.replaceChildren();
    for (const [scope, cluster] of clusters) {
      const outer = foldedParent(scope);
      cluster.g.style.display = outer !== null && outer !== scope ? "none" : "";
      if (outer !== scope) continue;
      const box = cluster.box;
      const label = `▸ ${scope.split(".").pop()} · ${cluster.members.size} layers`;
      // as large as the box allows, so a folded block stays legible when zoomed out
      const size = Math.max(12, Math.min(box.width / (0.62 * label.length), box.height / 4));
      const group = svgEl("g", { class: "folded" });
      group.append(
        svgEl("rect", { x: box.x, y: box.y, width: box.width, height: box.height, rx: 6 }),
        svgEl("text", { x: box.x + box.width / 2, y: box.y + Math.min(box.height / 2, size * 1.8) + size / 3, "text-anchor": "middle", "font-size": size.toFixed(1) }, label),
        svgEl("title", {}, `${scope}: ${cluster.members.size} layers folded; click to unfold`),
      );
      group.addEventListener("click", (event) => {
        event.stopPropagation();
        if (!suppressClick) fold(scope, false);
      });
      overlay.append(group);
    }
  }

  function sameFold(a, b) {
    return foldedParent(layers[a].scope) === foldedParent(layers[b].scope);
  }

  function reveal(index) {
    const outer = foldedParent(layers[index].scope);
    if (outer === null) return;
    for (const scope of [...folded]) if (scope === outer || scope.startsWith(outer + ".") || outer.startsWith(scope + ".")) folded.delete(scope);
    refreshFolds();
  }

  const READABLE = 0.55; // pixels per graph unit below which labels are too small to read
  const COMFORTABLE = 0.9;

  function scale() {
    return svg.getScreenCTM().a;
  }

  function showAt(cx, cy, pixelsPerUnit) {
    const box = svg.getBoundingClientRect();
    const w = box.width / pixelsPerUnit;
    const h = box.height / pixelsPerUnit;
    setView({ x: cx - w / 2, y: cy - h / 2, w, h });
  }

  function centreOn(index) {
    // pan to the node when it is off screen, and zoom in when the labels are too small to read
    const g = nodeOf.get(index);
    if (!g) return;
    const box = toRoot(g.getBBox());
    const cx = box.x + box.w / 2;
    const cy = box.y + box.h / 2;
    const p = svg.createSVGPoint();
    p.x = cx;
    p.y = cy;
    const screen = p.matrixTransform(svg.getScreenCTM());
    const pane = svg.getBoundingClientRect();
    const inside = screen.x > pane.left + 20 && screen.x < pane.right - 20 && screen.y > pane.top + 20 && screen.y < pane.bottom - 20;
    if (inside && scale() >= READABLE) return;
    showAt(cx, cy, Math.max(scale(), COMFORTABLE));
  }

  let measured = null; // sizes read once while the page starts (see setupGraph)

  function startView() {
    // the whole graph when it is readable so; otherwise its top (the inputs) at a readable size
    if (measured.scale >= READABLE) return;
    const pane = measured.pane;
    const w = pane.width / COMFORTABLE;
    const h = pane.height / COMFORTABLE;
    setView({ x: home.x + home.w / 2 - w / 2, y: home.y, w, h });
  }

  // ------------------------------------------------------------------ the layer panel

  let selected = -1;

  function select(index, options) {
    if (index < 0 || index >= layers.length) return;
    const { centre = true } = options || {};
    if (selected >= 0) {
      const old = nodeOf.get(selected);
      if (old) old.classList.remove("selected");
      listItems[selected].classList.remove("selected");
    }
    for (const edge of edges) edge.g.classList.remove("active");
    selected = index;
    reveal(index);
    const g = nodeOf.get(index);
    if (g) g.classList.add("selected");
    const me = "L" + index;
    for (const edge of edges) if (edge.from === me || edge.to === me) edge.g.classList.add("active");
    listItems[index].classList.add("selected");
    listItems[index].scrollIntoView({ block: "nearest" });
    if (centre) centreOn(index);
    renderPanel(index);
    markComparison(index);
    history.replaceState(null, "", "#layer=" + encodeURIComponent(layers[index].name));
  }

  function table(rows, head) {
    const body = rows.map((cells) => el("tr", {}, cells.map((cell, i) => el("td", { class: i === 0 ? "k" : "v" }, cell))));
    return el("table", {}, head ? el("tr", {}, head.map((h) => el("th", {}, h))) : null, body);
  }

  function histogram(stats, width) {
    const counts = stats.hist;
    const w = width || 240;
    const h = 46;
    const chart = svgEl("svg", { class: "hist", width: w, height: h + 12, viewBox: `0 0 ${w} ${h + 12}` });
    if (!counts.length) return chart;
    const top = Math.max(...counts) || 1;
    const bar = w / counts.length;
    counts.forEach((c, i) => {
      const bh = c ? Math.max(1, (c / top) * h) : 0;
      const rect = svgEl("rect", { x: i * bar + 0.5, y: h - bh, width: Math.max(bar - 1, 1), height: bh });
      const lo = stats.range[0] + ((stats.range[1] - stats.range[0]) * i) / counts.length;
      const hi = stats.range[0] + ((stats.range[1] - stats.range[0]) * (i + 1)) / counts.length;
      const n = stats.step > 1 ? `about ${(c * stats.step).toLocaleString("en-US")} values (every ${stats.step}th counted)` : `${c.toLocaleString("en-US")} values`;
      rect.append(svgEl("title", {}, `${n} in [${num(lo)}, ${num(hi)})`));
      chart.append(rect);
    });
    chart.append(svgEl("text", { x: 0, y: h + 10 }, num(stats.range[0])));
    chart.append(svgEl("text", { x: w, y: h + 10, "text-anchor": "end" }, num(stats.range[1])));
    return chart;
  }

  function statsLine(stats) {
    const extra = stats.nonfinite ? `  non-finite ${stats.nonfinite}` : "";
    return el("div", { class: "stats" }, `min ${num(stats.min)}  max ${num(stats.max)}  mean ${num(stats.mean)}  std ${num(stats.std)}${extra}`);
  }

  function weightCard(name, via) {
    const weight = data.weights[name];
    const sources = weight.sources.length
      ? el("div", { class: "sources" }, weight.role === "derived" ? "computed from " : "checkpoint key ",
        weight.sources.map((key, i) => [i ? ", " : "", el("code", {}, key)]))
      : el("div", { class: "sources" }, weight.role === "scale"
        ? "an INT8 quantization scale (from the calibration, not the checkpoint)"
        : "a constant of the definition (not in the checkpoint)");
    return el("div", { class: "weight" },
      el("div", {}, el("span", { class: "wname" }, name), " ", el("span", { class: "wshape" }, `${shape(weight.shape)} ${weight.dtype}`),
        el("span", { class: `role ${weight.role}` }, weight.role)),
      via !== undefined ? el("div", { class: "sources" }, "input through constant layer ", layerLink(via)) : null,
      sources, histogram(weight.stats), statsLine(weight.stats));
  }

  function tensorRows(layer) {
    // a tensor is named after the layer that makes it; its name is shown only where it differs
    const rows = [];
    layer.inputs.forEach((t, i) => {
      if (t === null) return rows.push([`in ${i}`, "", "(none)"]);
      const from = t.from >= 0 ? layerLink(t.from) : `network input ${t.name}`;
      const renamed = t.from >= 0 && layers[t.from].name !== t.name ? ` (tensor ${t.name})` : "";
      rows.push([`in ${i}`, `${shape(t.shape)} ${t.dtype}`, ["from ", from, renamed]]);
    });
    layer.outputs.forEach((t, i) => {
      const to = (t.to || []).map((j, n) => [n ? ", " : "", layerLink(j)]);
      const parts = [];
      if (t.name !== layer.name) parts.push(`tensor ${t.name}`);
      if (t.output) parts.push("network output");
      if (to.length) parts.push(["to ", to]);
      rows.push([`out ${i}`, `${shape(t.shape)} ${t.dtype}`, parts.map((p, n) => [n ? "; " : "", p])]);
    });
    return el("table", { class: "tensors" }, rows.map((cells) => el("tr", {}, cells.map((cell, i) => el("td", { class: ["k", "shape", "v"][i] }, cell)))));
  }

  function heatmap(heat) {
    const canvas = el("canvas", { class: "heat", width: heat.cols, height: heat.rows });
    canvas.style.height = `${(192 * heat.rows) / heat.cols}px`;
    const context = canvas.getContext("2d");
    const image = context.createImageData(heat.cols, heat.rows);
    const cells = atob(heat.cells);
    for (let i = 0; i < cells.length; i++) {
      const [r, g, b] = viridis(cells.charCodeAt(i) / 255);
      image.data.set([r, g, b, 255], i * 4);
    }
    context.putImageData(image, 0, 0);
    return canvas;
  }

  const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

  function viridis(t) {
    const x = Math.min(Math.max(t, 0), 1) * (VIRIDIS.length - 1);
    const i = Math.min(Math.floor(x), VIRIDIS.length - 2);
    const f = x - i;
    return VIRIDIS[i].map((c, k) => Math.round(c + (VIRIDIS[i + 1][k] - c) * f));
  }

  function renderPanel(index) {
    const layer = layers[index];
    const panel = $("panel");
    panel.replaceChildren();
    panel.append(
      el("div", { class: "nav" },
        el("button", { onclick: () => select(index - 1), disabled: index === 0 }, "◀ previous"),
        el("span", { class: "hint" }, `layer ${index} of ${layers.length - 1}`),
        el("button", { onclick: () => select(index + 1), disabled: index === layers.length - 1 }, "next ▶")),
      el("h2", { id: "panel-name" }, layer.name),
      el("div", { class: "kind" }, el("span", { class: "swatch", style: `background:${colour(layer.type)}` }),
        el("b", { id: "panel-type" }, layer.type), layer.detail ? ` · ${layer.detail}` : "",
        layer.scope ? el("span", { class: "hint" }, `  in scope ${layer.scope}`) : ""),
      el("p", { class: "semantics" }, data.semantics[layer.type] || ""),
    );
    if (data.docs[layer.type]) {
      // the docstring's paragraphs, re-flowed to the panel's width
      const paragraphs = data.docs[layer.type].split(/\n\s*\n/).map((p) => el("p", {}, p.split(/\s*\n\s*/).join(" ")));
      panel.append(el("h3", {}, "What TensorRT computes"), el("div", { class: "doc", id: "panel-formula" }, paragraphs));
    }
    panel.append(el("h3", {}, "Inputs and outputs"), tensorRows(layer));
    if (layer.settings.length) {
      panel.append(el("h3", {}, "TensorRT settings (read back from the layer)"), table(layer.settings));
    }
    panel.append(el("h3", {}, "Cost"), table([
      ["FLOPs", flops(layer.flops)],
      ["weights", layer.params ? layer.params.toLocaleString("en-US") : "none held by this layer"],
    ]));
    if (layer.weights.length || layer.via.length) {
      const section = el("div", { id: "panel-weights" });
      for (const name of layer.weights) section.append(weightCard(name));
      for (const [name, via] of layer.via) section.append(weightCard(name, via));
      panel.append(el("h3", {}, "Weights"));
      if (layer.folded) panel.append(el("div", { class: "sources" }, `BatchNorm ${layer.folded} is folded into these weights.`));
      panel.append(section);
    }
    if (layer.act) {
      const act = layer.act;
      panel.append(el("h3", {}, `Output on ${data.input}`), el("div", { class: "stats" }, `${shape(act.shape)} ${act.dtype}`), histogram(act.stats), statsLine(act.stats));
      if (act.heat) {
        const heat = act.heat;
        panel.append(heatmap(heat), el("div", { class: "hint" },
          `sample 0, channel ${heat.channel} of ${heat.channels} (the one with the largest spread), ${heat.height}x${heat.width}` +
          (heat.rows !== heat.height ? ` averaged to ${heat.rows}x${heat.cols}` : "") + `; dark ${num(heat.min)}, bright ${num(heat.max)}`));
      }
    }
    const row = comparisonRows.get(index);
    if (row) {
      const cmp = data.compare;
      panel.append(el("h3", {}, `${cmp.tested} vs ${cmp.against}`), table([
        ["max abs error", num(row[1])],
        ["relative error", num(row[2])],
        ["within rtol " + cmp.rtol, el("span", { class: "error-row" + (row[3] ? "" : " fail") }, row[3] ? "yes" : "no" + (cmp.first === layer.name ? ": the first layer out of tolerance" : ""))],
      ]));
    }
  }

  // ------------------------------------------------------------------ comparison plot

  const comparisonRows = new Map(); // layer index -> [layer, max_abs, max_rel, ok]
  const comparisonPoints = new Map(); // layer index -> <g class="cmp-point">

  function showComparison() {
    // the section's title (before the graph is measured: the section takes room from it)
    const cmp = data.compare;
    if (!cmp) return;
    $("compare").hidden = false;
    for (const row of cmp.rows) if (byName.has(row[0])) comparisonRows.set(byName.get(row[0]), row);
    const status = cmp.first
      ? el("span", { class: "fail" }, `first layer out of tolerance: ${cmp.first}`)
      : el("span", { class: "ok" }, "every layer within tolerance");
    $("compare-title").append(el("b", {}, cmp.title), " — ", `${cmp.rows.length} layers compared, rtol ${cmp.rtol}; `, status,
      el("span", { class: "hint" }, "  ● max |a−b| (blue)   ● max |a−b| / max |b| (orange)   - - rtol   · click a point to select its layer"));
  }

  function renderComparison() {
    if (!data.compare) return;
    drawComparison(measured.plot);
    window.addEventListener("resize", () => drawComparison());
  }

  function drawComparison(size) {
    const cmp = data.compare;
    const box = $("compare-plot-box");
    const [width, height] = size || [box.clientWidth, box.clientHeight];
    const W = Math.max(width, 300);
    const H = Math.max(height, 120);
    const m = { l: 46, r: 12, t: 8, b: 20 };
    const chart = svgEl("svg", { id: "compare-plot", viewBox: `0 0 ${W} ${H}` });
    const FLOOR = 1e-9;
    const values = [];
    for (const row of cmp.rows) values.push(row[1], row[2]);
    const finite = values.filter((v) => v !== null && v > 0);
    const lo = Math.floor(Math.log10(Math.max(FLOOR, Math.min(...finite, cmp.rtol))));
    const hi = Math.ceil(Math.log10(Math.max(...finite, cmp.rtol, 10 * FLOOR))) + (finite.length ? 0 : 1);
    const x = (i) => m.l + ((W - m.l - m.r) * i) / Math.max(layers.length - 1, 1);
    const y = (v) => {
      const logv = v === null ? hi : Math.log10(Math.max(v, Math.pow(10, lo)));
      return m.t + ((H - m.t - m.b) * (hi - logv)) / Math.max(hi - lo, 1);
    };
    for (let e = lo; e <= hi; e++) {
      chart.append(svgEl("line", { class: "grid", x1: m.l, x2: W - m.r, y1: y(Math.pow(10, e)), y2: y(Math.pow(10, e)) }));
      chart.append(svgEl("text", { x: m.l - 4, y: y(Math.pow(10, e)) + 3, "text-anchor": "end" }, `1e${e}`));
    }
    chart.append(svgEl("line", { class: "axis", x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }));
    chart.append(svgEl("line", { class: "axis", x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }));
    chart.append(svgEl("text", { x: W - m.r, y: H - m.b - 4, "text-anchor": "end" }, "layer index (depth in the network) →"));
    const every = [1, 2, 5, 10, 20, 50, 100, 200].find((n) => (layers.length / n) * 40 < W - m.l - m.r) || 500;
    for (let i = 0; i < layers.length; i += every) {
      chart.append(svgEl("line", { class: "axis", x1: x(i), x2: x(i), y1: H - m.b, y2: H - m.b + 3 }));
      chart.append(svgEl("text", { x: x(i), y: H - m.b + 12, "text-anchor": "middle" }, i));
    }
    chart.append(svgEl("line", { class: "tol", x1: m.l, x2: W - m.r, y1: y(cmp.rtol), y2: y(cmp.rtol) }));
    chart.append(svgEl("text", { x: W - m.r, y: y(cmp.rtol) - 3, "text-anchor": "end", fill: "#d62728" }, `rtol ${cmp.rtol}`));
    if (cmp.first && byName.has(cmp.first)) {
      const fx = x(byName.get(cmp.first));
      chart.append(svgEl("line", { class: "first", x1: fx, x2: fx, y1: m.t, y2: H - m.b }));
      chart.append(svgEl("text", { x: fx + 3, y: m.t + 9, fill: "#d62728" }, `first past tolerance: ${cmp.first}`));
    }
    const sorted = [...comparisonRows.entries()].sort((a, b) => a[0] - b[0]);
    for (const [series, k] of [["abs", 1], ["rel", 2]]) {
      const d = sorted.map(([i, row], n) => `${n ? "L" : "M"}${x(i).toFixed(1)},${y(row[k]).toFixed(1)}`).join("");
      chart.append(svgEl("path", { class: "series-line", d, stroke: k === 1 ? "#1f77b4" : "#ff7f0e" }));
    }
    comparisonPoints.clear();
    for (const [i, row] of sorted) {
      const point = svgEl("g", { class: "cmp-point" + (row[3] ? "" : " bad"), "data-layer": i });
      point.append(
        svgEl("circle", { class: "abs", cx: x(i), cy: y(row[1]), r: 2.8 }),
        svgEl("circle", { class: "rel", cx: x(i), cy: y(row[2]), r: 2.8 }),
        svgEl("title", {}, `${row[0]}: max abs ${num(row[1])}, relative ${num(row[2])}${row[3] ? "" : " (out of tolerance)"}`),
      );
      point.addEventListener("click", () => select(i));
      comparisonPoints.set(i, point);
      chart.append(point);
    }
    box.replaceChildren(chart);
    markComparison(selected);
  }

  function markComparison(index) {
    for (const [i, point] of comparisonPoints) point.classList.toggle("selected", i === index);
  }

  // ------------------------------------------------------------------ keyboard

  function setupKeys() {
    document.addEventListener("keydown", (event) => {
      if (event.target instanceof HTMLInputElement) {
        if (event.key === "Escape") event.target.blur();
        return;
      }
      if (event.key === "/") {
        event.preventDefault();
        $("search").focus();
      } else if (event.key === "j") select(selected + 1);
      else if (event.key === "k") select(Math.max(selected - 1, 0));
      else if (event.key === "f") setView({ ...home });
      else if (event.key === "+" || event.key === "=") zoomCentre(1 / 1.4);
      else if (event.key === "-") zoomCentre(1.4);
    });
  }

  // ------------------------------------------------------------------ start

  const steps = { renderHeader, renderList, showComparison, setupGraph, setupPanZoom, startView, renderComparison, setupKeys };
  for (const [step, run] of Object.entries(steps)) {
    run();
    performance.mark("netdef:" + step); // read by benchmarks/explain_html.py
  }
  const wanted = decodeURIComponent((location.hash.match(/^#layer=(.*)$/) || [])[1] || "");
  if (byName.has(wanted)) select(byName.get(wanted));
  else if (byName.has(data.select)) select(byName.get(data.select));
  // ready once the first frame with the graph has been laid out and painted (read by the tests and benchmark)
  window.netdefExplain = { select, layers, scriptStart, scriptEnd: performance.now(), ready: null };
  requestAnimationFrame(() =>
    setTimeout(() => {
      window.netdefExplain.ready = performance.now();
      document.documentElement.dataset.ready = "true";
    }, 0),
  );
})();
