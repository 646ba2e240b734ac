// wfmon pages: a little JavaScript for sign-in and the connection manager.
// Every write sends the X-Wfmon-Request header (the API refuses cookie writes without it).
"use strict";

async function api(method, url, body) {
  const init = { method, credentials: "same-origin", headers: { "X-Wfmon-Request": "1" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(url, init);
  let data = null;
  if (res.status !== 204) { try { data = await res.json(); } catch (e) { data = null; } }
  if (!res.ok) {
    const msg = (data && data.message) || `request failed (${res.status})`;
    throw new Error(msg);
  }
  return data;
}

function showError(form, message) {
  const p = form.querySelector(".error");
  p.textContent = message; p.hidden = !message;
}

// -- sign-in page: a link /signin#token=...&next=... signs in by POSTing the token ---------
// The fragment never reaches the server (nor its access log); the token is sent in the
// form body and the server answers with the HttpOnly cookie.
function signinFromFragment() {
  const form = document.getElementById("signin");
  if (!form || !location.hash) return;
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (!token) return;
  // Drop the token from the address bar and the history entry before anything else.
  history.replaceState(null, "", location.pathname + location.search);
  form.elements.token.value = token;
  if (params.get("next")) form.elements.next.value = params.get("next");
  form.submit();
}

// Live refresh (push, with polling as fallback) is in live.js.

// -- project page: connections -------------------------------------------------------------
function connections() {
  const add = document.getElementById("add-connection");
  if (!add) return;
  const project = add.dataset.project;
  add.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(add);
    const body = { name: f.get("name"), connection_type: f.get("connection_type"), url: f.get("url") };
    const cfg = (f.get("config") || "").trim();
    if (cfg) {
      try { body.config = JSON.parse(cfg); } catch (e) { showError(add, "Options must be JSON, e.g. {\"pool_max_size\": 4}"); return; }
    }
    try {
      await api("POST", `/api/projects/${project}/connections`, body);
      location.reload();
    } catch (e) { showError(add, e.message); }
  });

  const edit = document.getElementById("edit-connection");
  edit.querySelector("[data-action=cancel]").addEventListener("click", () => { edit.hidden = true; });
  edit.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(edit);
    const body = { name: f.get("name") };
    if (f.get("url")) body.url = f.get("url");
    try {
      await api("PATCH", `/api/connections/${f.get("id")}`, body);
      location.reload();
    } catch (e) { showError(edit, e.message); }
  });

  document.getElementById("connections").addEventListener("click", async (ev) => {
    const button = ev.target.closest("button[data-action]");
    if (!button) return;
    const row = button.closest("tr");
    const id = row.dataset.connection;
    const out = row.querySelector("output");
    const action = button.dataset.action;
    if (action === "test") {
      out.className = "result"; out.textContent = "testing…"; button.disabled = true;
      try {
        const r = await api("POST", `/api/connections/${id}/test`);
        out.className = "result " + (r.ok ? "ok" : "bad");
        out.textContent = r.ok ? `OK: ${r.message}` : `Failed (${r.error_type}): ${r.message}`;
      } catch (e) { out.className = "result bad"; out.textContent = e.message; }
      button.disabled = false;
    } else if (action === "edit") {
      edit.hidden = false;
      edit.elements.id.value = id;
      edit.elements.name.value = row.dataset.name;
      edit.elements.url.value = "";
      edit.querySelector(".edit-name").textContent = row.dataset.name;
      showError(edit, "");
      edit.elements.name.focus();
    } else if (action === "delete") {
      if (button.dataset.armed !== "1") {
        button.dataset.armed = "1"; button.textContent = "Confirm delete"; return;
      }
      try { await api("DELETE", `/api/connections/${id}`); row.remove(); }
      catch (e) { out.className = "result bad"; out.textContent = e.message; }
    }
  });
}

document.addEventListener("DOMContentLoaded", () => { signinFromFragment(); connections(); });
