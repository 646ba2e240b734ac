// Project page: the "Needs attention" counts, read from /api/projects/{id}/attention.
"use strict";
(function () {
  const box = document.getElementById("attention-summary");
  if (!box) return;
  fetch(box.dataset.src, { credentials: "same-origin" })
    .then((res) => (res.ok ? res.json() : Promise.reject(new Error(String(res.status)))))
    .then((data) => {
      for (const [key, value] of Object.entries(data.counts)) {
        const el = box.querySelector(`[data-count="${key}"]`);
        if (el) el.textContent = String(value);
      }
      box.dataset.loaded = "true";
    })
    .catch(() => { box.dataset.loaded = "error"; });
})();
