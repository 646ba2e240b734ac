// Project page: the "Needs attention" counts, read from /api/projects/{id}/attention and
// read again whenever one of the project's executions is synced (live.js: pushed, or
// polled while the stream is down).
"use strict";
(function () {
  const box = document.getElementById("attention-summary");
  if (!box) return;
  async function load() {
    try {
      const res = await fetch(box.dataset.src, { credentials: "same-origin" });
      if (!res.ok) throw new Error(String(res.status));
      const data = await res.json();
      for (const [key, value] of Object.entries(data.counts)) {
        const el = box.querySelector(`[data-count="${key}"]`);
        if (el) el.textContent = String(value);
      }
      box.dataset.loaded = "true";
    } catch (e) { box.dataset.loaded = "error"; }
  }
  load();
  if (window.wfmonLive) {
    window.wfmonLive.start({
      stream: `${box.dataset.src}/stream`, kind: "attention", refresh: load, pollMs: 10000,
      indicator: box.querySelector("[data-live-indicator]"),
    });
  }
})();
