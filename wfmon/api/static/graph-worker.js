// wfmon's graph: a page's first graph fetched and laid out off the main thread, while the
// page is still being parsed (started by templates/_graph.html, consumed by graph.js).
// Posts {data} as soon as the JSON is in (the page may have the layout stored), then
// {layout, layout_ms}; or {error}.
"use strict";
importScripts("/static/vendor/dagre/dagre.min.js", "/static/graph-layout.js");
self.onmessage = async (ev) => {
  try {
    const res = await fetch(ev.data.url, { credentials: "same-origin" });
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok) {
      self.postMessage({ error: (body && body.message) || `the graph could not be loaded (${res.status})` });
      return;
    }
    self.postMessage({ data: body });
    const t0 = performance.now();
    const layout = self.wfmonLayout.dagreLayout(body.nodes, body.edges);
    self.postMessage({ layout, layout_ms: performance.now() - t0 });
  } catch (e) {
    self.postMessage({ error: String((e && e.message) || e) });
  }
};
