// The execution page's "compare with…" picker: fills its <select> with recent executions
// of the same workflow from /api/executions/{id}/compare/candidates (the sign-in cookie
// authenticates the GET).
(function () {
  "use strict";
  function label(r) {
    var when = new Date(r.started_at).toISOString().replace("T", " ").slice(0, 19) + " UTC";
    var dur = r.duration_ms == null ? "—" : (r.duration_ms < 1000 ? r.duration_ms + " ms" : (r.duration_ms / 1000).toFixed(1) + " s");
    return when + " · " + r.status.replace(/_/g, " ") + " · v" + (r.workflow_version == null ? "?" : r.workflow_version) + " · " + dur;
  }
  function fill(select) {
    fetch(select.dataset.candidates, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (resp) { return resp.ok ? resp.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        select.textContent = "";
        if (data.default_baseline) {
          select.add(new Option("last successful run of this version (default)", data.default_baseline));
        }
        data.recent.forEach(function (r) { select.add(new Option(label(r), r.id)); });
        select.disabled = select.options.length === 0;
        var form = select.form;
        if (form) { form.querySelector("button").disabled = select.disabled; }
      });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("select[data-candidates]").forEach(fill);
  });
})();
