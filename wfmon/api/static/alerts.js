// Alerts: the rules page (add, test, delete) and the delivery log (also on the project
// page). Uses api() from app.js, which sends the X-Wfmon-Request header on writes.
"use strict";
(function () {
  const TIME = (iso) => iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "—";

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  // Re-read the delivery log and render it (text only: no HTML from the server's data).
  async function loadLog() {
    const table = document.getElementById("alert-deliveries");
    if (!table) return;
    let rows;
    try { rows = await api("GET", table.dataset.src); } catch (e) { table.dataset.loaded = "error"; return; }
    const body = table.tBodies[0];
    body.replaceChildren();
    if (!rows.length) {
      const tr = body.insertRow(); tr.className = "empty";
      const td = cell(tr, "No alerts delivered yet.", "muted"); td.colSpan = 7;
    }
    for (const d of rows) {
      const tr = body.insertRow();
      tr.className = "delivery"; tr.dataset.status = d.status;
      cell(tr, TIME(d.created_at));
      cell(tr, d.rule_name + (d.test ? " (test)" : ""));
      const st = cell(tr, "");
      const badge = document.createElement("span");
      badge.className = `badge s-${d.status}`; badge.textContent = d.status; st.appendChild(badge);
      const t = cell(tr, "");
      if (d.link) { const a = document.createElement("a"); a.href = d.link; a.textContent = d.title; t.appendChild(a); }
      else t.textContent = d.title;
      cell(tr, d.reason || "", "reason");
      cell(tr, String(d.attempts), "num");
      cell(tr, TIME(d.next_attempt_at));
    }
    table.dataset.loaded = "true";
  }

  function channelBody(f) {
    const type = f.get("channel");
    if (type === "webhook") return { type, url: f.get("wh_url"), signing_secret: f.get("wh_secret") };
    if (type === "slack") return { type, url: f.get("slack_url") };
    const body = {
      type, host: f.get("mail_host"), port: Number(f.get("mail_port") || 587),
      security: f.get("mail_security"), sender: f.get("mail_from"),
      recipients: String(f.get("mail_to") || "").split(",").map((s) => s.trim()).filter(Boolean),
    };
    if (f.get("mail_user")) body.username = f.get("mail_user");
    if (f.get("mail_password")) body.password = f.get("mail_password");
    return body;
  }

  function rulesPage() {
    const form = document.getElementById("add-rule");
    if (!form) return;
    const project = form.dataset.project;
    const defaults = JSON.parse(form.dataset.defaults || "{}");
    const kind = form.elements.kind, params = form.elements.params, channel = form.elements.channel;
    const fillParams = () => { params.value = JSON.stringify(defaults[kind.value] || {}); };
    const showChannel = () => {
      for (const fs of form.querySelectorAll("fieldset[data-channel]")) fs.hidden = fs.dataset.channel !== channel.value;
    };
    kind.addEventListener("change", fillParams); channel.addEventListener("change", showChannel);
    fillParams(); showChannel();
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(form);
      let p = {};
      try { p = JSON.parse(String(f.get("params") || "{}")); } catch (e) { showError(form, "Parameters must be JSON, e.g. {\"consecutive\": 3}"); return; }
      const body = {
        name: f.get("name"), kind: f.get("kind"), params: p,
        workflow_id: f.get("workflow_id") || null,
        quiet_period_seconds: Number(f.get("quiet_period_seconds") || 0),
        channel: channelBody(f),
      };
      try { await api("POST", `/api/projects/${project}/alert-rules`, body); location.reload(); }
      catch (e) { showError(form, e.message); }
    });
    const table = document.getElementById("alert-rules");
    table.addEventListener("click", async (ev) => {
      const button = ev.target.closest("button[data-action]");
      if (!button) return;
      const row = button.closest("tr[data-rule]"), out = row.querySelector(".result");
      if (button.dataset.action === "test") {
        out.textContent = "sending…";
        try {
          const res = await api("POST", `/api/alert-rules/${row.dataset.rule}/test`);
          out.textContent = res.ok ? "test alert sent" : `failed: ${res.delivery.reason}`;
        } catch (e) { out.textContent = e.message; }
        await loadLog();
      } else if (button.dataset.action === "delete") {
        if (!confirm(`Delete the rule ${row.dataset.name} and its delivery log?`)) return;
        try { await api("DELETE", `/api/alert-rules/${row.dataset.rule}`); location.reload(); }
        catch (e) { out.textContent = e.message; }
      }
    });
  }

  rulesPage();
  if (!document.getElementById("add-rule")) loadLog();  // the project page's summary
})();
