// wfmon's graph layout: dagre (static/vendor/dagre) laid left to right, as plain data, for
// graph.js (a file of its own so that it can also run in a worker or a benchmark);
// defines self.wfmonLayout = {W, H, dagreLayout}.
"use strict";
(function () {
  const W = 250, H = 84;  // node box
  const BIG = 150;        // nodes from which the cheap ordering is used

  // A cheap crossing reduction for big graphs (dagre's customOrder hook): nodes of each rank
  // in dagre's order of appearance, then two barycenter sweeps. dagre's own ordering
  // (repeated sweeps with crossing counts) costs about a second at 500 nodes.
  function quickOrder(g) {
    const ranks = [];
    g.nodes().forEach((v) => { const r = g.node(v).rank; (ranks[r] || (ranks[r] = [])).push(v); });
    const pos = new Map();
    ranks.forEach((layer) => layer && layer.forEach((v, i) => pos.set(v, i)));
    const bary = (v, nbrs) => {
      let s = 0, c = 0;
      for (const w of nbrs || []) { const p = pos.get(w); if (p !== undefined) { s += p; c++; } }
      return c ? s / c : pos.get(v);
    };
    for (let sweep = 0; sweep < 2; sweep++) {
      const down = sweep === 0;
      const idx = ranks.map((_, i) => i);
      if (!down) idx.reverse();
      for (const r of idx) {
        const layer = ranks[r];
        if (!layer) continue;
        const key = new Map(layer.map((v) => [v, bary(v, down ? g.predecessors(v) : g.successors(v))]));
        layer.sort((a, b) => key.get(a) - key.get(b));
        layer.forEach((v, i) => pos.set(v, i));
      }
    }
    ranks.forEach((layer) => layer && layer.forEach((v, i) => { g.node(v).order = i; }));
  }

  // dagre's layered layout, left to right, as plain data: [id, x, y] top-left corners and
  // [source, target, [[x, y], ...]] edge polylines. Big graphs rank by longest path and use
  // the cheap ordering above (network simplex and dagre's ordering cost seconds at 500).
  function dagreLayout(nodes, edges) {
    const big = nodes.length >= BIG;
    const g = new dagre.graphlib.Graph();
    g.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 56, marginx: 20, marginy: 20, ranker: big ? "longest-path" : "network-simplex" });
    g.setDefaultEdgeLabel(() => ({}));
    for (const n of nodes) g.setNode(n.id, { width: W, height: H });
    for (const e of edges) if (e.source !== e.target) g.setEdge(e.source, e.target);
    dagre.layout(g, big ? { customOrder: quickOrder } : {});
    const gg = g.graph();
    return {
      w: gg.width || W, h: gg.height || H,
      nodes: nodes.map((n) => { const p = g.node(n.id); return [n.id, Math.round(p.x - W / 2), Math.round(p.y - H / 2)]; }),
      edges: g.edges().map((e) => [e.v, e.w, g.edge(e).points.map((p) => [Math.round(p.x * 10) / 10, Math.round(p.y * 10) / 10])]),
    };
  }

  self.wfmonLayout = { W, H, dagreLayout };
})();
