// wfmon's workflow graph: nodes and edges of a definition, laid out left to right by dagre
// (static/vendor/dagre) and drawn as SVG, with each node's status on an execution page.
//
// CONTRACT (for other scripts on the page; keep it stable):
// - Markup: templates/_graph.html, one <section id="wfmon-graph" data-kind="workflow|execution"
//   data-src="/api/.../graph">, included by workflow.html and execution.html OUTSIDE the
//   live-refreshed #live fragment.
// - Workflow page: selecting a node (click, Enter/Space, window.wfmonGraph.select) dispatches
//     document CustomEvent("wfmon:node-select", {detail: {node_id}})
//   and the graph listens for
//     document CustomEvent("wfmon:definition-changed", {detail: {version}})
//   and redraws from /api/workflows/{id}/graph?version=N (zoom and pan kept).
// - Execution page: selecting a node opens its component cards beside the graph (the HTML
//   fragment /executions/{id}/graph/nodes/{node_id}, the page's own card markup). The graph
//   refetches its JSON (statuses only; zoom, pan and the open node kept) on
//     document CustomEvent("wfmon:live-update", {detail: {kind, execution_id}})
//   (static/live.js, SSE) and whenever app.js's polling re-renders #live.
// - window.wfmonGraph = {select(nodeId), redraw(version)}; redraw() without a version
//   refetches the current source. (Also measureLayout(n), for the benchmark.) After each drawing: document CustomEvent("wfmon:graph-drawn",
//   {detail: {nodes, layout_ms}}) and section[data-state="drawn"].
// - The first JSON is preloaded by _graph.html (<link rel="preload">) while the page is parsed.
//   (A Web Worker for fetch + layout was measured slower on this 2-core machine: bench_graph.)
// - Timing: performance.mark("wfmon-graph-fetched") (JSON in), performance.measure(
//   "wfmon-graph-layout") (dagre only) and performance.mark("wfmon-graph-drawn") (the frame
//   after the first drawing, so style, layout and paint are included); section[data-layout-source]
//   says "dagre" or "cache" (a layout is kept per definition, see layoutKey).
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const { W, H, dagreLayout } = window.wfmonLayout;  // static/graph-layout.js
  const MIN_K = 0.05, MAX_K = 2.5;
  const ICONS = { keep_trying: "∞", fail_after_attempts: "↻", exponential_backoff: "⤴", no_retries: "1", unknown: "?" };
  const STRATEGY_WORDS = {
    keep_trying: "keep trying", fail_after_attempts: "fail after attempts",
    exponential_backoff: "exponential backoff", no_retries: "no retries", unknown: "unknown policy",
  };

  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }
  function cut(s, n) { s = String(s == null ? "" : s); return s.length > n ? s.slice(0, n - 1) + "…" : s; }
  // Same words as the pages' |duration filter (wfmon/api/html.py fmt_duration).
  function duration(ms) {
    if (ms == null) return "";
    if (ms < 1000) return Math.round(ms) + " ms";
    const s = ms / 1000;
    if (s < 60) return s.toFixed(1) + " s";
    let m = Math.floor(s / 60); const sec = Math.floor(s) % 60;
    if (m < 60) return m + " min " + sec + " s";
    const h = Math.floor(m / 60); m %= 60;
    return h + " h " + m + " min";
  }
  function statusText(n) {
    if (!n.status) return "";
    const parts = [n.status_text || n.status.replace(/_/g, " ")];
    if (n.duration_ms != null) parts.push(duration(n.duration_ms));
    if (n.runs > 1) parts.push(n.runs + " runs");
    return parts.join(" · ");
  }
  function ariaLabel(n) {
    const bits = [n.id, n.component];
    const st = statusText(n);
    if (st) bits.push(st);
    bits.push("retry policy: " + n.retry.sentence);
    return bits.join(", ");
  }

  // A layout depends only on the nodes and edges (a definition version): every execution of
  // the version reuses it. Kept in localStorage under a hash of both, at most LAYOUTS of them.
  const LAYOUTS = 12, STORE = "wfmon-graph-layouts";
  function layoutKey(nodes, edges) {
    let h = 0x811c9dc5;
    const text = W + "x" + H + "|" + nodes.map((n) => n.id).join("\u0001") + "|" + edges.map((e) => e.source + "\u0002" + e.target).join("\u0001");
    for (let i = 0; i < text.length; i++) { h ^= text.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
    return nodes.length + "-" + edges.length + "-" + h.toString(36);
  }
  function readLayout(key) {
    try {
      const index = JSON.parse(localStorage.getItem(STORE) || "[]");
      if (!index.includes(key)) return null;
      const value = localStorage.getItem(STORE + ":" + key);
      return value ? JSON.parse(value) : null;
    } catch (e) { return null; }
  }
  function writeLayout(key, plain) {
    try {
      const index = JSON.parse(localStorage.getItem(STORE) || "[]").filter((k) => k !== key);
      index.push(key);
      while (index.length > LAYOUTS) localStorage.removeItem(STORE + ":" + index.shift());
      localStorage.setItem(STORE + ":" + key, JSON.stringify(plain));
      localStorage.setItem(STORE, JSON.stringify(index));
    } catch (e) { /* storage full or disabled: lay out again next time */ }
  }

  class Graph {
    constructor(root) {
      this.root = root;
      this.kind = root.dataset.kind;
      this.src = root.dataset.src;
      this.svg = root.querySelector("svg.graph-svg");
      this.vp = root.querySelector("g.graph-vp");
      this.view = root.querySelector(".graph-view");
      this.panel = root.querySelector(".graph-panel");
      this.statusLine = root.querySelector(".graph-status");
      this.caption = root.querySelector(".graph-caption");
      this.t = { k: 1, x: 0, y: 0 };
      this.data = null;
      this.pos = new Map();      // node id -> {x, y, rank, order} (top-left corner)
      this.byId = new Map();     // node id -> node JSON
      this.els = new Map();      // node id -> <g>
      this.order = [];           // node ids in reading order (rank, then top to bottom)
      this.selected = null;
      this.focusId = null;
      this.userMoved = false;
      this.drawnOnce = false;
      this.refreshing = null;
      this.pending = false;
      this.bindView();
    }

    // -- data -------------------------------------------------------------------------
    async fetchJson(url) {
      // No extra headers: the first request must match the page's <link rel="preload">.
      const res = await fetch(url, { credentials: "same-origin" });
      let body = null;
      try { body = await res.json(); } catch (e) { body = null; }
      if (!res.ok) throw new Error((body && body.message) || `the graph could not be loaded (${res.status})`);
      return body;
    }

    async load(url) {
      try {
        const data = await this.fetchJson(url || this.src);
        if (!this.drawnOnce) performance.mark("wfmon-graph-fetched");
        this.show(data);
      } catch (e) {
        this.fail(e.message);
      }
    }
    fail(message) {
      this.statusLine.hidden = false;
      this.statusLine.textContent = message;
      this.root.dataset.state = "error";
    }

    sameShape(data) {
      const old = this.data;
      if (!old || old.nodes.length !== data.nodes.length || old.edges.length !== data.edges.length) return false;
      for (let i = 0; i < data.nodes.length; i++) if (!this.pos.has(data.nodes[i].id)) return false;
      const key = (e) => e.source + "\u0000" + e.target;
      const edges = new Set(old.edges.map(key));
      return data.edges.every((e) => edges.has(key(e)));
    }

    show(data) {
      if (this.sameShape(data)) { this.data = data; this.indexNodes(); this.restyle(); this.afterDraw(0); return; }
      this.data = data;
      this.indexNodes();
      const ms = this.layout();
      this.draw();
      this.afterDraw(ms);
    }

    indexNodes() {
      this.byId = new Map(this.data.nodes.map((n) => [n.id, n]));
      this.up = new Map(); this.down = new Map();
      for (const e of this.data.edges) {
        (this.down.get(e.source) || this.down.set(e.source, []).get(e.source)).push(e.target);
        (this.up.get(e.target) || this.up.set(e.target, []).get(e.target)).push(e.source);
      }
    }

    // -- layout (dagre) ---------------------------------------------------------------
    layout() {
      const nodes = this.data.nodes, edges = this.data.edges;
      const key = layoutKey(nodes, edges);
      const cached = readLayout(key);
      if (cached) {
        this.useLayout(cached);
        this.root.dataset.layoutSource = "cache";
        return 0;
      }
      performance.mark("wfmon-graph-layout-start");
      const plain = dagreLayout(nodes, edges);
      performance.mark("wfmon-graph-layout-end");
      const m = performance.measure("wfmon-graph-layout", "wfmon-graph-layout-start", "wfmon-graph-layout-end");
      writeLayout(key, plain);
      this.useLayout(plain);
      this.root.dataset.layoutSource = "dagre";
      return m ? m.duration : 0;
    }

    useLayout(plain) {
      this.pos = new Map(plain.nodes.map(([id, x, y]) => [id, { x, y }]));
      this.edgePoints = plain.edges.map(([s, t, pts]) => ({ s, t, pts: pts.map(([x, y]) => ({ x, y })) }));
      this.size = { w: plain.w, h: plain.h };
      // Reading order: left to right by column, top to bottom within one.
      this.order = plain.nodes.map((n) => n[0]).sort((a, b) => {
        const pa = this.pos.get(a), pb = this.pos.get(b);
        return pa.x - pb.x || pa.y - pb.y;
      });
    }

    // -- drawing ------------------------------------------------------------------------
    nodeInner(n) {
      const st = statusText(n);
      const icon = ICONS[n.retry.strategy] || ICONS.unknown;
      const policyWords = STRATEGY_WORDS[n.retry.strategy] || n.retry.strategy;
      return `<title>${esc(ariaLabel(n))}</title>` +
        `<rect class="gbox" width="${W}" height="${H}" rx="6"></rect>` +
        `<rect class="gstripe" width="6" height="${H}" rx="3"></rect>` +
        `<text class="gid" x="14" y="20">${esc(cut(n.id, 28))}</text>` +
        `<text class="gcomp" x="14" y="37">${esc(cut(n.component, 32))}</text>` +
        (st ? `<text class="gstat" x="14" y="55">${esc(cut(st, 38))}</text>` : "") +
        `<g class="gretry r-${esc(n.retry.strategy)}" transform="translate(${W - 26},6)"><circle cx="10" cy="10" r="10"></circle>` +
        `<text x="10" y="14.5" text-anchor="middle">${esc(icon)}</text><title>${esc(policyWords)}: ${esc(n.retry.sentence)}</title></g>` +
        `<text class="gpolicy" x="14" y="${st ? 74 : 58}">${esc(cut(n.retry.sentence, 42))}</text>`;
    }

    nodeClass(n) {
      return "gnode" + (n.status ? " s-" + n.status : "") + (this.selected === n.id ? " selected" : "");
    }
    nodeHtml(n) {
      const p = this.pos.get(n.id);
      return `<g class="${this.nodeClass(n)}" data-node="${esc(n.id)}" transform="translate(${p.x.toFixed(1)},${p.y.toFixed(1)})" ` +
        `role="button" tabindex="${n.id === this.focusId ? 0 : -1}" aria-label="${esc(ariaLabel(n))}">${this.nodeInner(n)}</g>`;
    }

    // All edges are one path (and all arrowheads another): two elements, however many edges.
    edgePath(edges) {
      const d = [], heads = [];
      for (const e of edges) {
        const pts = e.pts;
        d.push(pts.map((p, i) => (i ? "L" : "M") + p.x.toFixed(1) + "," + p.y.toFixed(1)).join(""));
        const a = pts[pts.length - 2], b = pts[pts.length - 1];
        const len = Math.hypot(b.x - a.x, b.y - a.y) || 1, ux = (b.x - a.x) / len, uy = (b.y - a.y) / len;
        const bx = b.x - ux * 8, by = b.y - uy * 8;
        heads.push(`M${b.x.toFixed(1)},${b.y.toFixed(1)}L${(bx - uy * 4).toFixed(1)},${(by + ux * 4).toFixed(1)}L${(bx + uy * 4).toFixed(1)},${(by - ux * 4).toFixed(1)}Z`);
      }
      return { d: d.join(""), heads: heads.join("") };
    }

    draw() {
      const all = this.edgePath(this.edgePoints);
      this.vp.innerHTML = `<path class="gedges" d="${all.d}"></path><path class="gheads" d="${all.heads}"></path>` +
        '<path class="gedges hl" d=""></path><path class="gheads hl" d=""></path><g class="gnodes"></g>';
      this.nodesLayer = this.vp.querySelector("g.gnodes");
      this.els = new Map();
      if (this.selected && !this.pos.has(this.selected)) this.selected = null;
      this.focusId = this.selected || this.order[0] || null;
      this.root.dataset.nodes = String(this.data.nodes.length);
      this.root.dataset.edges = String(this.edgePoints.length);
      this.highlight();
      this.sizeView();
      if (!this.userMoved || !this.drawnOnce) this.initialView();
      else this.apply();
    }

    // Only the nodes in (or near) the view are in the DOM, plus the focused and selected
    // ones: 500 nodes of SVG text cost far more to style and paint than to lay out.
    renderVisible() {
      this.renderQueued = false;
      if (!this.data || !this.nodesLayer) return;
      const k = this.t.k, vw = this.view.clientWidth || 800, vh = this.view.clientHeight || 420;
      const margin = 200 / k;
      const x0 = -this.t.x / k - margin, y0 = -this.t.y / k - margin;
      const x1 = (vw - this.t.x) / k + margin, y1 = (vh - this.t.y) / k + margin;
      const keep = new Set([this.focusId, this.selected]);
      const add = [];
      for (const n of this.data.nodes) {
        const p = this.pos.get(n.id);
        const inView = p.x + W >= x0 && p.x <= x1 && p.y + H >= y0 && p.y <= y1;
        const el = this.els.get(n.id);
        if (inView || keep.has(n.id)) { if (!el) add.push(n); }
        else if (el && !el.contains(document.activeElement)) { el.remove(); this.els.delete(n.id); }
      }
      if (add.length) {
        this.nodesLayer.insertAdjacentHTML("beforeend", add.map((n) => this.nodeHtml(n)).join(""));
        const made = this.nodesLayer.children;
        for (let i = made.length - add.length; i < made.length; i++) this.els.set(made[i].dataset.node, made[i]);
      }
      this.svg.classList.toggle("far", k < 0.35);  // too small to read: boxes only
      this.root.dataset.rendered = String(this.els.size);
    }
    queueRender() {
      if (this.renderQueued) return;
      this.renderQueued = true;
      requestAnimationFrame(() => this.renderVisible());
    }

    restyle() {
      for (const n of this.data.nodes) {
        const g = this.els.get(n.id);
        if (!g) continue;  // drawn from the current data when it comes into view
        const cls = this.nodeClass(n);
        if (g.getAttribute("class") !== cls) g.setAttribute("class", cls);
        const label = ariaLabel(n);
        if (g.getAttribute("aria-label") !== label) {
          g.setAttribute("aria-label", label);
          g.innerHTML = this.nodeInner(n);
        }
      }
    }

    afterDraw(layoutMs) {
      const d = this.data;
      this.statusLine.hidden = d.nodes.length > 0;
      if (!d.nodes.length) this.statusLine.textContent = d.note || "This definition has no nodes.";
      const counts = {};
      d.nodes.forEach((n) => { if (n.status) counts[n.status] = (counts[n.status] || 0) + 1; });
      const tally = Object.keys(counts).sort().map((s) => `${counts[s]} ${s.replace(/_/g, " ")}`).join(", ");
      this.caption.textContent = [
        d.version != null ? "version " + d.version : null,
        d.nodes.length + " node" + (d.nodes.length === 1 ? "" : "s"),
        tally || null, d.live ? "updating live" : null, d.note,
      ].filter(Boolean).join(" · ");
      this.root.dataset.state = "drawn";
      this.root.dataset.version = d.version == null ? "" : String(d.version);
      if (layoutMs) this.root.dataset.layoutMs = layoutMs.toFixed(1);
      if (!this.drawnOnce) {
        this.drawnOnce = true;
        // After the next frame: the mark then includes style, layout and paint of the SVG.
        requestAnimationFrame(() => setTimeout(() => performance.mark("wfmon-graph-drawn"), 0));
      }
      if (this.selected && this.kind === "execution" && this.panelNode === this.selected) this.openCard(this.selected, { refresh: true });
      document.dispatchEvent(new CustomEvent("wfmon:graph-drawn", { detail: { nodes: d.nodes.length, layout_ms: layoutMs } }));
    }

    // -- view: zoom and pan -------------------------------------------------------------
    // The first view: readable (scale 0.55 to 1, the whole width when it fits), the view's
    // height fitted to the graph at that scale (170 to 560 px); "0" fits the whole graph.
    firstScale() {
      const vw = this.view.clientWidth || 800;
      return Math.min(1, Math.max(vw / this.size.w, 0.55));
    }
    sizeView() {
      const want = Math.min(Math.max(this.size.h * this.firstScale() + 24, 170), 560);
      this.view.style.height = Math.round(want) + "px";
    }
    fitScale() {
      const vw = this.view.clientWidth || 800, vh = this.view.clientHeight || 420;
      return Math.min(vw / this.size.w, vh / this.size.h, 1);
    }
    initialView() {
      const vh = this.view.clientHeight || 420, vw = this.view.clientWidth || 800;
      const k = Math.min(this.firstScale(), Math.max(vh / this.size.h, 0.55));
      this.t.k = k;
      this.t.x = Math.max((vw - this.size.w * k) / 2, 0);
      this.t.y = Math.max((vh - this.size.h * k) / 2, 0);
      if (this.size.h * k > vh && this.order.length) {
        // Taller than the view: start where the first column's nodes are, not at the top.
        const x0 = this.pos.get(this.order[0]).x;
        const ys = this.order.filter((id) => this.pos.get(id).x === x0).map((id) => this.pos.get(id).y);
        const mid = (Math.min(...ys) + Math.max(...ys) + H) / 2;
        this.t.y = Math.min(0, Math.max(vh - this.size.h * k, vh / 2 - mid * k));
      }
      this.apply();
    }
    fit() {
      const k = Math.max(this.fitScale(), MIN_K);
      const vw = this.view.clientWidth, vh = this.view.clientHeight;
      this.t = { k, x: (vw - this.size.w * k) / 2, y: (vh - this.size.h * k) / 2 };
      this.apply();
    }
    apply(now) {
      this.vp.setAttribute("transform", `translate(${this.t.x.toFixed(1)},${this.t.y.toFixed(1)}) scale(${this.t.k.toFixed(4)})`);
      this.root.dataset.zoom = this.t.k.toFixed(3);
      if (now || !this.els.size) this.renderVisible(); else this.queueRender();
    }
    zoomAt(factor, cx, cy) {
      const k = Math.min(MAX_K, Math.max(MIN_K, this.t.k * factor));
      const f = k / this.t.k;
      this.t.x = cx - (cx - this.t.x) * f;
      this.t.y = cy - (cy - this.t.y) * f;
      this.t.k = k;
      this.userMoved = true;
      this.apply();
    }
    zoomCenter(factor) { this.zoomAt(factor, this.view.clientWidth / 2, this.view.clientHeight / 2); }
    reveal(id, now) {
      // Pan as little as needed to bring the node into view (centre it when it is bigger).
      const p = this.pos.get(id);
      if (!p) return;
      const vw = this.view.clientWidth, vh = this.view.clientHeight, k = this.t.k, pad = 8;
      const x0 = p.x * k + this.t.x, y0 = p.y * k + this.t.y, x1 = x0 + W * k, y1 = y0 + H * k;
      if (W * k > vw - 2 * pad) this.t.x = vw / 2 - (p.x + W / 2) * k;
      else if (x0 < pad) this.t.x += pad - x0;
      else if (x1 > vw - pad) this.t.x -= x1 - (vw - pad);
      if (H * k > vh - 2 * pad) this.t.y = vh / 2 - (p.y + H / 2) * k;
      else if (y0 < pad) this.t.y += pad - y0;
      else if (y1 > vh - pad) this.t.y -= y1 - (vh - pad);
      this.apply(now);
    }

    bindView() {
      const view = this.view;
      view.addEventListener("wheel", (ev) => {
        ev.preventDefault();
        const r = view.getBoundingClientRect();
        this.zoomAt(Math.exp(-ev.deltaY * 0.0015), ev.clientX - r.left, ev.clientY - r.top);
      }, { passive: false });
      let drag = null;
      view.addEventListener("pointerdown", (ev) => {
        if (ev.button !== 0) return;
        drag = { x: ev.clientX, y: ev.clientY, tx: this.t.x, ty: this.t.y, moved: false, id: ev.pointerId };
      });
      view.addEventListener("pointermove", (ev) => {
        if (!drag || ev.pointerId !== drag.id) return;
        const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
        if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
        if (!drag.moved) { drag.moved = true; view.setPointerCapture(ev.pointerId); view.classList.add("panning"); }
        this.t.x = drag.tx + dx; this.t.y = drag.ty + dy; this.userMoved = true;
        this.apply();
      });
      const end = (ev) => {
        if (!drag) return;
        const moved = drag.moved;
        drag = null;
        view.classList.remove("panning");
        if (moved) { this.suppressClick = true; setTimeout(() => { this.suppressClick = false; }, 0); }
      };
      view.addEventListener("click", (ev) => {
        if (this.suppressClick) return;  // the end of a drag, not a click
        const g = ev.target.closest && ev.target.closest("g.gnode");
        if (g) this.select(g.dataset.node, { focus: true });
      });
      view.addEventListener("pointerup", end);
      view.addEventListener("pointercancel", end);
      this.root.querySelector(".graph-zoom").addEventListener("click", (ev) => {
        const b = ev.target.closest("button[data-zoom]");
        if (!b) return;
        if (b.dataset.zoom === "in") this.zoomCenter(1.25);
        else if (b.dataset.zoom === "out") this.zoomCenter(0.8);
        else { this.userMoved = true; this.fit(); }
      });
      this.root.addEventListener("keydown", (ev) => this.onKey(ev));
      // The view narrows when the node panel opens (and with the window): keep the first
      // view fitted until the user pans or zooms, and draw what came into view.
      if (window.ResizeObserver) {
        new ResizeObserver(() => {
          if (!this.data || !this.size) return;
          if (!this.userMoved) this.initialView();
          else this.queueRender();
          if (this.selected) this.reveal(this.selected);
        }).observe(view);
      }
      // On the section, not the SVG: Chromium makes an SVG element with focus listeners a tab stop.
      this.root.addEventListener("focusin", (ev) => {
        const g = ev.target.closest && ev.target.closest("g.gnode");
        if (g) { this.setFocusable(g.dataset.node); this.reveal(g.dataset.node); }
      });
    }

    // -- keyboard -------------------------------------------------------------------------
    setFocusable(id) {
      if (this.focusId && this.els.get(this.focusId)) this.els.get(this.focusId).setAttribute("tabindex", "-1");
      this.focusId = id;
      const g = this.els.get(id);
      if (g) g.setAttribute("tabindex", "0");
    }
    focusNode(id) {
      if (!id || !this.pos.has(id)) return;
      this.setFocusable(id);
      this.reveal(id, true);
      const g = this.els.get(id);
      if (g) { g.setAttribute("tabindex", "0"); g.focus({ preventScroll: true }); }
    }
    // The neighbour closest vertically among ``ids`` (edges left or right of the node).
    nearest(id, ids) {
      if (!ids || !ids.length) return null;
      const y = this.pos.get(id).y;
      return ids.slice().sort((a, b) => Math.abs(this.pos.get(a).y - y) - Math.abs(this.pos.get(b).y - y))[0];
    }
    sameColumn(id, step) {
      const p = this.pos.get(id);
      const col = this.order.filter((o) => Math.abs(this.pos.get(o).x - p.x) < 1);
      const i = col.indexOf(id) + step;
      return i >= 0 && i < col.length ? col[i] : null;
    }
    onKey(ev) {
      if (ev.key === "Escape" && !this.panel.hidden) { this.closePanel(); return; }
      const inGraph = ev.target.closest && ev.target.closest(".graph-view, .graph-zoom");
      if (!inGraph) return;
      if (ev.key === "+" || ev.key === "=") { this.zoomCenter(1.25); ev.preventDefault(); return; }
      if (ev.key === "-" || ev.key === "_") { this.zoomCenter(0.8); ev.preventDefault(); return; }
      if (ev.key === "0") { this.userMoved = true; this.fit(); ev.preventDefault(); return; }
      const g = ev.target.closest("g.gnode");
      if (!g) return;
      const id = g.dataset.node;
      let next = null;
      const i = this.order.indexOf(id);
      switch (ev.key) {
        case "ArrowRight": next = this.nearest(id, this.down.get(id)) || this.order[i + 1]; break;
        case "ArrowLeft": next = this.nearest(id, this.up.get(id)) || this.order[i - 1]; break;
        case "ArrowDown": next = this.sameColumn(id, 1) || this.order[i + 1]; break;
        case "ArrowUp": next = this.sameColumn(id, -1) || this.order[i - 1]; break;
        case "Home": next = this.order[0]; break;
        case "End": next = this.order[this.order.length - 1]; break;
        case "Enter": case " ": this.select(id, { focus: false }); ev.preventDefault(); return;
        default: return;
      }
      ev.preventDefault();
      if (next) this.focusNode(next);
    }

    // -- selection and the node panel -----------------------------------------------------
    highlight() {
      const hl = this.vp.querySelectorAll(".hl");
      if (hl.length < 2) return;
      const mine = this.selected ? this.edgePoints.filter((e) => e.s === this.selected || e.t === this.selected) : [];
      const p = this.edgePath(mine);
      hl[0].setAttribute("d", p.d);
      hl[1].setAttribute("d", p.heads);
    }
    select(id, opts) {
      opts = opts || {};
      if (!this.byId.has(id)) return false;
      if (this.selected && this.els.get(this.selected)) this.els.get(this.selected).classList.remove("selected");
      this.selected = id;
      if (opts.focus !== false) this.focusNode(id); else { this.setFocusable(id); this.reveal(id, true); }
      const g = this.els.get(id);
      if (g) g.classList.add("selected");
      this.highlight();
      if (this.kind === "execution") this.openCard(id, {});
      else {
        this.showSummary(id);
        document.dispatchEvent(new CustomEvent("wfmon:node-select", { detail: { node_id: id } }));
      }
      return true;
    }
    closePanel() {
      this.panel.hidden = true;
      this.panelNode = null;
      this.root.classList.remove("with-panel");
      if (this.focusId) this.focusNode(this.focusId);
    }
    panelHead(title) {
      return `<div class="graph-panel-head"><strong>${esc(title)}</strong> <button type="button" class="graph-close" aria-label="Close the node panel">×</button></div>`;
    }
    showPanel(html) {
      this.panel.innerHTML = html;
      this.panel.hidden = false;
      this.root.classList.add("with-panel");
      this.panel.querySelector(".graph-close").addEventListener("click", () => this.closePanel());
    }
    showSummary(id) {
      const n = this.byId.get(id);
      const list = (ids) => (ids && ids.length ? ids.map((x) => `<code>${esc(x)}</code>`).join(", ") : "none");
      this.panelNode = id;
      this.showPanel(this.panelHead("Node") +
        `<div class="graph-node-detail" data-node="${esc(id)}"><h3 class="graph-node-title" tabindex="-1"><code>${esc(id)}</code> <span class="muted">${esc(n.component)}</span></h3>` +
        `<p class="small graph-node-policy"><span class="retry-icon r-${esc(n.retry.strategy)}" aria-hidden="true"></span> Retry policy: ${esc(n.retry.sentence)}</p>` +
        `<p class="small">Upstream: ${list(this.up.get(id))}<br>Downstream: ${list(this.down.get(id))}</p></div>`);
    }
    async openCard(id, opts) {
      const base = this.root.dataset.card;
      const refresh = opts && opts.refresh;
      const open = refresh ? new Set([...this.panel.querySelectorAll("details[open][id]")].map((d) => d.id)) : null;
      const closed = refresh ? new Set([...this.panel.querySelectorAll("details[id]:not([open])")].map((d) => d.id)) : null;
      this.panelNode = id;
      if (!refresh) this.showPanel(this.panelHead("Node") + '<p class="muted">Loading…</p>');
      const token = (this.cardToken = (this.cardToken || 0) + 1);
      try {
        const res = await fetch(base + encodeURIComponent(id), { credentials: "same-origin" });
        if (token !== this.cardToken) return;
        const html = await res.text();
        if (!res.ok) throw new Error(`the node could not be loaded (${res.status})`);
        this.showPanel(this.panelHead("Node") + html);
        if (refresh) this.panel.querySelectorAll("details[id]").forEach((d) => {
          if (open.has(d.id)) d.open = true; else if (closed.has(d.id)) d.open = false;
        });
        this.root.dataset.panel = id;
      } catch (e) {
        if (token === this.cardToken) this.showPanel(this.panelHead("Node") + `<p class="error">${esc(e.message)}</p>`);
      }
    }

    // -- live refresh -------------------------------------------------------------------------
    refresh() {
      // Coalesce: one request in flight, at most one more queued behind it.
      if (this.refreshing) { this.pending = true; return; }
      this.refreshing = this.load().finally(() => {
        this.refreshing = null;
        if (this.pending) { this.pending = false; this.refresh(); }
      });
    }
  }

  function start() {
    const root = document.getElementById("wfmon-graph");
    if (!root || typeof dagre === "undefined") return;
    const graph = new Graph(root);
    window.wfmonGraph = {
      select: (nodeId) => graph.select(String(nodeId), { focus: false }),
      // For benchmarks: lay the current graph out ``n`` more times (nothing drawn or stored)
      // and return each duration in ms, i.e. the layout's cost once the JIT is warm.
      measureLayout: (n) => {
        const out = [];
        for (let i = 0; i < (n || 3); i++) {
          const t0 = performance.now();
          dagreLayout(graph.data.nodes, graph.data.edges);
          out.push(performance.now() - t0);
        }
        return out;
      },
      redraw: (version) => {
        if (version == null || graph.kind !== "workflow") { graph.refresh(); return; }
        const url = new URL(graph.src, location.href);
        url.searchParams.set("version", String(version));
        graph.src = url.pathname + url.search;
        graph.refresh();
      },
    };
    if (graph.kind === "workflow") {
      document.addEventListener("wfmon:definition-changed", (ev) => {
        window.wfmonGraph.redraw(ev.detail && ev.detail.version);
      });
    } else {
      const id = root.dataset.execution;
      let timer = null;
      const soon = () => { clearTimeout(timer); timer = setTimeout(() => graph.refresh(), 60); };
      document.addEventListener("wfmon:live-update", (ev) => {
        const d = ev.detail || {};
        if (!d.execution_id || String(d.execution_id) === id) soon();
      });
      const live = document.getElementById("live");
      if (live) new MutationObserver(soon).observe(live, { childList: true });
    }
    graph.load();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
