// The plan drawn as SVG from /api/.../layout: open and close references in place at any
// depth, pan (drag) and zoom (wheel, buttons), select boxes, and on the job page drag a
// dependency from one task's handle onto another. The layout itself comes from the server.
"use strict";

class JobnestGraph {
  // options: load(query) -> Promise<layout>; view {expand, collapse, all, auto};
  // stateOf(box) -> {status, text} | null; onSelect(box); onConnect(sourceId, targetId);
  // editable: whether top-level boxes get a dependency handle.
  constructor(container, options) {
    this.el = container;
    this.options = options;
    const view = options.view || {};
    this.view = {
      expand: new Set(view.expand || []), collapse: new Set(view.collapse || []),
      all: !!view.all, auto: !!view.auto,
    };
    this.layout = null;
    this.boxes = new Map();
    this.nodes = new Map();
    this.selected = null;
    this.highlighted = new Set();
    this.t = { x: 0, y: 0, k: 1 };
    this.fitted = false;
    this.build();
  }

  build() {
    this.el.innerHTML = "";
    // The drawing is moved and scaled as a whole by a CSS transform on its canvas: panning
    // a plan of thousands of boxes then repaints nothing.
    this.canvas = document.createElement("div");
    this.canvas.className = "canvas";
    const ns = "http://www.w3.org/2000/svg";
    this.svg = document.createElementNS(ns, "svg");
    this.svg.setAttribute("role", "group");
    this.svg.setAttribute("aria-label", "Graph of tasks, left to right");
    this.svg.innerHTML =
      '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">' +
      '<path d="M0,0 L10,5 L0,10 z"/></marker></defs><g class="viewport"></g>';
    this.viewport = this.svg.querySelector(".viewport");
    this.canvas.append(this.svg);
    this.el.append(this.canvas);
    this.empty = document.createElement("p");
    this.empty.className = "graph-empty";
    this.empty.hidden = true;
    this.el.append(this.empty);
    this.listen();
  }

  // --- loading and drawing -------------------------------------------------------------

  query() {
    const params = new URLSearchParams();
    for (const path of this.view.expand) params.append("expand", path);
    for (const path of this.view.collapse) params.append("collapse", path);
    if (this.view.all) params.set("all", "true");
    if (this.options.hasAuto) params.set("auto", this.view.auto ? "true" : "false");
    return params;
  }

  async reload(anchorId) {
    const before = anchorId ? this.screenOf(anchorId) : null;
    this.el.setAttribute("aria-busy", "true");
    const seq = (this.loads = (this.loads || 0) + 1);
    const layout = await this.options.load(this.query());
    if (seq !== this.loads) return; // a later reload is on its way: it wins
    this.el.setAttribute("aria-busy", "false");
    if (!layout) return;
    this.draw(layout);
    const after = anchorId ? this.screenOf(anchorId) : null;
    if (before && after) {
      this.t.x += before.x - after.x;
      this.t.y += before.y - after.y;
      this.apply();
    } else if (!this.fitted) {
      this.fit(0.8);
      this.fitted = true;
    }
  }

  draw(layout) {
    this.layout = layout;
    this.boxes = new Map(layout.boxes.map((box) => [box.id, box]));
    this.parents = new Set(layout.boxes.map((box) => box.parent).filter((id) => id != null));
    const html = [];
    for (const box of layout.boxes) if (box.kind === "group") html.push(this.groupHtml(box));
    html.push('<g class="routes">');
    for (const route of layout.routes) html.push(this.routeHtml(route));
    html.push("</g>");
    for (const box of layout.boxes) if (box.kind !== "group") html.push(this.boxHtml(box));
    this.svg.setAttribute("width", layout.width);
    this.svg.setAttribute("height", layout.height);
    this.viewport.innerHTML = html.join("");
    this.nodes = new Map();
    for (const node of this.viewport.querySelectorAll("g.box")) this.nodes.set(node.dataset.id, node);
    if (this.selected && this.nodes.has(this.selected)) this.nodes.get(this.selected).classList.add("selected");
    this.markHighlights();
    this.empty.hidden = layout.boxes.length > 0;
    this.empty.textContent = this.options.emptyText || "Nothing to draw yet.";
    this.apply();
  }

  routeHtml(route) {
    const pts = route.points;
    let d = `M${pts[0][0]},${pts[0][1]}`;
    for (let i = 1; i < pts.length; i++) {
      const [x0, y0] = pts[i - 1], [x1, y1] = pts[i];
      if (y0 === y1) d += ` L${x1},${y1}`;
      else { const mx = (x0 + x1) / 2; d += ` C${mx},${y0} ${mx},${y1} ${x1},${y1}`; }
    }
    // a route into an open group stops at its border, where the fan-out inside takes over
    const arrow = !this.parents.has(route.target);
    return `<path class="route" data-source="${jn.esc(route.source)}" data-target="${jn.esc(route.target)}" d="${d}"` +
      (arrow ? ' marker-end="url(#arrow)"' : "") + "/>";
  }

  name(box) {
    return box.id.slice(box.id.lastIndexOf("/") + 1);
  }

  fit_text(text, width, size) {
    const max = Math.max(3, Math.floor(width / (size * 0.6)));
    return text.length > max ? text.slice(0, max - 1) + "…" : text;
  }

  boxHtml(box) {
    const { x, y, w, h } = box;
    const name = this.name(box);
    const isRef = box.kind === "ref";
    const look = this.look(box);
    const parts = [
      `<g class="box kind-${box.kind}${look.cls}" data-id="${jn.esc(box.id)}" tabindex="0" role="button" aria-label="${jn.esc(look.label)}">`,
      `<title>${jn.esc(box.id)}${isRef ? " (job " + jn.esc(box.job) + ")" : ""}</title>`,
      `<rect class="frame" x="${x}" y="${y}" width="${w}" height="${h}" rx="7"/>`,
      `<rect class="stripe" x="${x + 1}" y="${y + 1}" width="5" height="${h - 2}" rx="2"/>`,
      `<text class="label" x="${x + 14}" y="${y + (isRef || look.text ? 14 : h / 2)}">${jn.esc(this.fit_text((isRef ? "▸ " : "") + name, w - 40, 13))}</text>`,
    ];
    if (isRef) {
      parts.push(`<text class="sub" x="${x + 14}" y="${y + 29}">job ${jn.esc(this.fit_text(box.job, w - 50, 11))}</text>`);
      parts.push(this.jobLink(box, x + w - 22, y + 14));
    }
    parts.push(`<text class="state" x="${x + 14}" y="${y + (isRef ? 44 : 29)}">${jn.esc(look.text)}</text>`);
    if (this.options.editable && box.parent == null) parts.push(this.handleHtml(box));
    parts.push("</g>");
    return parts.join("");
  }

  groupHtml(box) {
    const { x, y, w, h } = box;
    const look = this.look(box);
    return [
      `<g class="box kind-group${look.cls}" data-id="${jn.esc(box.id)}" tabindex="0" role="button" aria-label="${jn.esc(look.label)}">`,
      `<title>${jn.esc(box.id)} (job ${jn.esc(box.job)}), open: press Enter to close</title>`,
      `<rect class="frame" x="${x}" y="${y}" width="${w}" height="${h}" rx="9"/>`,
      `<rect class="head" x="${x}" y="${y}" width="${w}" height="26" rx="9"/>`,
      `<rect class="stripe" x="${x + 1}" y="${y + 1}" width="5" height="24" rx="2"/>`,
      `<text class="label" x="${x + 14}" y="${y + 13}">▾ ${jn.esc(this.fit_text(this.name(box) + " · job " + box.job, w - 100, 13))}</text>`,
      `<text class="state" x="${x + w - 34}" y="${y + 13}" text-anchor="end">${jn.esc(look.text)}</text>`,
      this.jobLink(box, x + w - 22, y + 13),
      this.options.editable && box.parent == null ? this.handleHtml(box) : "",
      "</g>",
    ].join("");
  }

  jobLink(box, x, y) {
    const href = "/jobs/" + jn.path(box.job);
    return `<a href="${href}" class="job-link" aria-label="Open job ${jn.esc(box.job)}"><title>Open job ${jn.esc(box.job)}</title>` +
      `<text class="link" x="${x}" y="${y}">↗</text></a>`;
  }

  handleHtml(box) {
    return `<circle class="handle" cx="${box.x + box.w}" cy="${box.y + box.h / 2}" r="7">` +
      `<title>Drag onto another task: it then runs after ${jn.esc(box.id)}</title></circle>`;
  }

  // How a box's state shows: its class, its short text and its words for screen readers.
  look(box) {
    const state = this.options.stateOf ? this.options.stateOf(box) : null;
    const what = box.kind === "task" ? "task" : "job reference";
    const job = box.kind !== "task" ? ` (job ${box.job})` : "";
    const open = box.kind === "group" ? ", open" : box.kind === "ref" ? ", closed" : "";
    return {
      cls: state && state.status ? " st-" + state.status : "",
      text: state ? state.text : "",
      label: `${what} ${box.id}${job}${open}` + (state && state.words ? ": " + state.words : ""),
    };
  }

  // Repaint one box's state, after a change the page was told of.
  paint(id) {
    const node = this.nodes.get(id);
    const box = this.boxes.get(id);
    if (!node || !box) return;
    const look = this.look(box);
    for (const cls of [...node.classList]) if (cls.startsWith("st-")) node.classList.remove(cls);
    if (look.cls) node.classList.add(look.cls.trim());
    const text = node.querySelector(":scope > text.state");
    if (text) text.textContent = look.text;
    node.setAttribute("aria-label", look.label);
  }

  // --- view ----------------------------------------------------------------------------

  apply() {
    this.canvas.style.transform = `translate(${this.t.x}px, ${this.t.y}px) scale(${this.t.k})`;
  }

  screenOf(id) {
    const box = this.boxes.get(id);
    if (!box) return null;
    return { x: box.x * this.t.k + this.t.x, y: box.y * this.t.k + this.t.y };
  }

  // Scale to show the whole plan, but never so small that names cannot be read: a plan too
  // wide for that starts at its left end.
  fit(minimum = 0.15) {
    if (!this.layout) return;
    const rect = this.el.getBoundingClientRect();
    const k = Math.min(1, (rect.width - 20) / this.layout.width, (rect.height - 20) / this.layout.height);
    this.t.k = Math.max(minimum, k);
    const w = this.layout.width * this.t.k, h = this.layout.height * this.t.k;
    this.t.x = w <= rect.width ? (rect.width - w) / 2 : 10;
    this.t.y = h <= rect.height ? (rect.height - h) / 2 : 10;
    this.apply();
  }

  zoom(factor, cx, cy) {
    const rect = this.el.getBoundingClientRect();
    cx = cx == null ? rect.width / 2 : cx;
    cy = cy == null ? rect.height / 2 : cy;
    const k = Math.min(3, Math.max(0.1, this.t.k * factor));
    this.t.x = cx - ((cx - this.t.x) * k) / this.t.k;
    this.t.y = cy - ((cy - this.t.y) * k) / this.t.k;
    this.t.k = k;
    this.apply();
  }

  // Bring a box into sight, without changing the zoom when it is in sight already.
  reveal(id) {
    const box = this.boxes.get(id);
    if (!box) return;
    const rect = this.el.getBoundingClientRect();
    const sx = box.x * this.t.k + this.t.x, sy = box.y * this.t.k + this.t.y;
    if (sx >= 0 && sy >= 0 && sx + box.w * this.t.k <= rect.width && sy + box.h * this.t.k <= rect.height) return;
    this.t.x = rect.width / 2 - (box.x + box.w / 2) * this.t.k;
    this.t.y = rect.height / 2 - (box.y + box.h / 2) * this.t.k;
    this.apply();
  }

  isOpen(id) {
    return this.boxes.get(id)?.kind === "group";
  }

  async toggle(id) {
    const open = this.isOpen(id);
    if (open) { this.view.expand.delete(id); this.view.collapse.add(id); }
    else { this.view.collapse.delete(id); this.view.expand.add(id); }
    await this.reload(id);
  }

  async expandAll() {
    this.view = { expand: new Set(), collapse: new Set(), all: true, auto: this.view.auto };
    await this.reload();
    this.fit(0.5);
  }

  async collapseAll() {
    this.view = { expand: new Set(), collapse: new Set(), all: false, auto: false };
    await this.reload();
    this.fit(0.8);
  }

  select(id) {
    if (this.selected && this.nodes.has(this.selected)) this.nodes.get(this.selected).classList.remove("selected");
    this.selected = id;
    if (id && this.nodes.has(id)) this.nodes.get(id).classList.add("selected");
  }

  highlight(ids) {
    this.highlighted = new Set(ids);
    this.markHighlights();
  }

  markHighlights() {
    for (const node of this.viewport.querySelectorAll(".highlight")) node.classList.remove("highlight");
    for (const id of this.highlighted) this.nodes.get(id)?.classList.add("highlight");
    for (const path of this.viewport.querySelectorAll("path.route")) {
      if (this.highlighted.has(path.dataset.source) && this.highlighted.has(path.dataset.target)) path.classList.add("highlight");
    }
  }

  // --- input ---------------------------------------------------------------------------

  listen() {
    this.el.addEventListener("pointerdown", (e) => this.down(e));
    this.el.addEventListener("pointermove", (e) => this.move(e));
    this.el.addEventListener("pointerup", (e) => this.up(e));
    this.el.addEventListener("pointercancel", () => this.cancelDrag());
    this.el.addEventListener("click", (e) => this.click(e));
    this.el.addEventListener("keydown", (e) => this.key(e));
    this.el.addEventListener("wheel", (e) => {
      e.preventDefault();
      const rect = this.el.getBoundingClientRect();
      this.zoom(Math.exp(-e.deltaY * 0.0015), e.clientX - rect.left, e.clientY - rect.top);
    }, { passive: false });
  }

  point(e) {
    const rect = this.el.getBoundingClientRect();
    return { x: (e.clientX - rect.left - this.t.x) / this.t.k, y: (e.clientY - rect.top - this.t.y) / this.t.k };
  }

  down(e) {
    if (e.button !== 0) return;
    const handle = e.target.closest("circle.handle");
    if (handle) {
      e.preventDefault();
      const id = handle.closest("g.box").dataset.id;
      this.drag = { kind: "connect", source: id, line: this.dragLine(this.boxes.get(id)) };
      this.el.setPointerCapture(e.pointerId);
      return;
    }
    this.drag = { kind: "pan", x: e.clientX, y: e.clientY, tx: this.t.x, ty: this.t.y, moved: false };
  }

  dragLine(box) {
    const line = document.createElementNS("http://www.w3.org/2000/svg", "line");
    line.setAttribute("class", "drag-line");
    line.setAttribute("x1", box.x + box.w);
    line.setAttribute("y1", box.y + box.h / 2);
    line.setAttribute("x2", box.x + box.w);
    line.setAttribute("y2", box.y + box.h / 2);
    this.viewport.append(line);
    return line;
  }

  move(e) {
    const drag = this.drag;
    if (!drag) return;
    if (drag.kind === "pan") {
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 4) return;
      if (!drag.moved) { drag.moved = true; this.el.setPointerCapture(e.pointerId); this.el.classList.add("panning"); }
      this.t.x = drag.tx + dx;
      this.t.y = drag.ty + dy;
      this.apply();
      return;
    }
    const p = this.point(e);
    drag.line.setAttribute("x2", p.x);
    drag.line.setAttribute("y2", p.y);
    const target = this.topLevelAt(e.clientX, e.clientY);
    for (const node of this.viewport.querySelectorAll(".drop-target")) node.classList.remove("drop-target");
    if (target && target !== drag.source) this.nodes.get(target)?.classList.add("drop-target");
  }

  // The top-level box under the pointer: a drop inside a group means the group's reference.
  topLevelAt(clientX, clientY) {
    const p = this.point({ clientX, clientY });
    let found = null;
    for (const box of this.layout?.boxes || []) {
      if (box.parent != null) continue;
      if (p.x >= box.x && p.x <= box.x + box.w && p.y >= box.y && p.y <= box.y + box.h) found = box.id;
    }
    return found;
  }

  up(e) {
    const drag = this.drag;
    if (!drag) return;
    if (drag.kind === "pan") {
      this.el.classList.remove("panning");
      this.suppressClick = drag.moved;
      this.drag = null;
      return;
    }
    const target = this.topLevelAt(e.clientX, e.clientY);
    this.cancelDrag();
    this.suppressClick = true;
    if (target && target !== drag.source && this.options.onConnect) this.options.onConnect(drag.source, target);
  }

  cancelDrag() {
    if (this.drag?.line) this.drag.line.remove();
    for (const node of this.viewport.querySelectorAll(".drop-target")) node.classList.remove("drop-target");
    this.el.classList.remove("panning");
    this.drag = null;
  }

  click(e) {
    if (this.suppressClick) { this.suppressClick = false; e.preventDefault(); return; }
    if (e.target.closest("a.job-link")) return;
    const node = e.target.closest("g.box");
    if (!node) return;
    if (node.classList.contains("kind-group") && !this.onGroupHead(node, e)) return;
    this.activate(node.dataset.id);
  }

  onGroupHead(node, e) {
    const box = this.boxes.get(node.dataset.id);
    const p = this.point(e);
    return p.y <= box.y + 26;
  }

  key(e) {
    const node = e.target.closest && e.target.closest("g.box");
    if (!node || e.target.closest("a.job-link")) return;
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      this.activate(node.dataset.id);
    }
  }

  // Click or Enter on a box: open or close a reference, and tell the page what was chosen.
  async activate(id) {
    const box = this.boxes.get(id);
    if (!box) return;
    this.select(id);
    if (this.options.onSelect) this.options.onSelect(box);
    if (box.kind !== "task") {
      await this.toggle(id);
      this.nodes.get(id)?.focus({ preventScroll: true });
    }
  }

  // The toolbar's buttons, by their data-graph action.
  bindToolbar(toolbar) {
    toolbar.addEventListener("click", (e) => {
      const button = e.target.closest("button[data-graph]");
      if (!button) return;
      const action = button.dataset.graph;
      if (action === "expand-all") this.expandAll();
      else if (action === "collapse-all") this.collapseAll();
      else if (action === "zoom-in") this.zoom(1.25);
      else if (action === "zoom-out") this.zoom(0.8);
      else if (action === "fit") this.fit();
    });
  }
}
