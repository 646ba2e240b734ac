// Run again / retry from the failed node (templates/_rerun.html).
// The forms post to the page handlers with the X-Wfmon-Request header (a cookie alone never
// authorises a write) and ask for JSON: the handler answers with the new run's page, opened here.
"use strict";

(function () {
  const section = document.getElementById("rerun");
  if (!section) return;

  function text(el, value) { el.textContent = value; el.hidden = !value; }

  async function submit(form, ev) {
    ev.preventDefault();
    const button = form.querySelector("button[type=submit]");
    const error = form.querySelector(".error");
    const label = button.textContent;
    button.disabled = true; button.textContent = "Starting…"; text(error, "");
    try {
      const res = await fetch(form.action, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "X-Wfmon-Request": "1",
          "Content-Type": "application/x-www-form-urlencoded",
          Accept: "application/json",  // {url: the new run's page} instead of a 303
        },
        body: new URLSearchParams(new FormData(form)),
      });
      if (res.ok) { location.assign((await res.json()).url); return; }
      // Errors are error pages: show their message here.
      const page = new DOMParser().parseFromString(await res.text(), "text/html");
      const msg = page.querySelector("[role=alert]");
      text(error, (msg && msg.textContent.trim()) || `request failed (${res.status})`);
    } catch (e) {
      text(error, "the server did not answer; try again");
    }
    button.disabled = false; button.textContent = label;
  }
  section.querySelectorAll("form[data-rerun]").forEach((f) => f.addEventListener("submit", (ev) => submit(f, ev)));

  const KIND = { run_again: "Run again", retry_from_failed: "Retry from the failed node" };
  function when(iso) { return new Date(iso).toISOString().replace("T", " ").slice(0, 19) + " UTC"; }
  function link(l) {
    // Run ids are time-ordered (their first characters repeat): name a run by its start.
    const name = l.started_at ? `the run started ${when(l.started_at)}` : `run …${l.temporal_run_id.slice(-8)}`;
    const a = document.createElement(l.execution_id ? "a" : "span");
    if (l.execution_id) a.href = `/executions/${l.execution_id}`;
    a.textContent = l.execution_id ? name : `${name} (syncing…)`;
    a.className = "rerun-link";
    a.dataset.kind = l.kind;
    const wrap = document.createElement("span");
    const facts = [l.status ? l.status.replace("_", " ") : "starting"];
    if (l.failed_node_id) facts.push(`from node ${l.failed_node_id}`);
    if (l.definition_version) facts.push(`version ${l.definition_version}`);
    wrap.append(a, ` (${facts.join(", ")})`);
    return wrap;
  }
  async function links() {
    const box = document.getElementById("rerun-links");
    try {
      const res = await fetch(box.dataset.src, { credentials: "same-origin" });
      if (!res.ok) return;
      const data = await res.json();
      box.replaceChildren();
      if (data.rerun_of) {
        const p = document.createElement("span");
        p.className = "rerun-of";
        p.append(`${KIND[data.rerun_of.kind]} of `, link(data.rerun_of), ". ");
        box.append(p);
      }
      if (data.reruns.length) {
        const p = document.createElement("span");
        p.className = "reruns";
        p.append("Started from this execution: ");
        data.reruns.forEach((l, i) => { if (i) p.append("; "); p.append(`${KIND[l.kind]}: `, link(l)); });
        box.append(p);
      }
    } catch (e) { /* the links are a convenience; the page works without them */ }
  }
  links();
})();
