// wfmon's node panel, versions and run form on the workflow page (templates/_node_panel.html,
// _versions.html, _run_form.html). Everything goes through the JSON API, the same one any
// client uses: GET /api/workflows/{id}/editor (definition, components, the project's
// connections WITHOUT URLs), PUT /api/workflows/{id} (save = a new version; 422 fields are
// shown next to the inputs), POST /api/retry-policies/describe (the server's sentence and
// validation of a policy), GET .../versions and .../diff, POST .../runs.
//
// Events: opens the node given by document CustomEvent("wfmon:node-select", {detail:{node_id}})
// (the graph, static/graph.js); after a save dispatches
// CustomEvent("wfmon:definition-changed", {detail:{version}}) so the graph redraws.
"use strict";
(function () {
  const STRATEGIES = {
    keep_trying: { label: "Keep trying until success", fields: [
      ["interval", "Interval between attempts", "duration", "1s"]] },
    fail_after_attempts: { label: "Fail after X attempts", fields: [
      ["max_attempts", "Attempts in total (the first run counts)", "int", "3"],
      ["interval", "Interval between attempts", "duration", "1s"]] },
    exponential_backoff: { label: "Exponential backoff", fields: [
      ["initial_interval", "First wait", "duration", "1s"],
      ["backoff_coefficient", "Multiplier per retry", "float", "2"],
      ["maximum_interval", "Longest wait", "duration", "100s"],
      ["max_attempts", "Attempts in total (0 = unlimited)", "int", "0"]] },
    no_retries: { label: "No retries", fields: [] },
  };

  const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const clone = (v) => JSON.parse(JSON.stringify(v));
  const $ = (root, sel) => root.querySelector(sel);

  async function call(method, url, body) {
    const init = { method, credentials: "same-origin", headers: { "X-Wfmon-Request": "1", Accept: "application/json" } };
    if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    const res = await fetch(url, init);
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    return { ok: res.ok, status: res.status, data: data || {} };
  }
  const errorText = (r) => (r.data && r.data.message) || `request failed (${r.status})`;

  // -- parameter specs ({path}, {template}, {value}, literal) <-> what the inputs show ------
  function paramText(v) {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      if (typeof v.template === "string") return v.template;
      if (typeof v.path === "string") return `{${v.path}}`;
      if ("value" in v) return JSON.stringify(v.value);
    }
    return typeof v === "string" ? v : JSON.stringify(v);
  }
  function textParam(t) {
    const m = /^\{([^{}]+)\}$/.exec(t);
    if (m) return { path: m[1] };
    return /\{[^{}]+\}/.test(t) ? { template: t } : t;
  }
  // Highest $n outside string literals (the server checks it exactly, wfmon.components.sql_params).
  function paramCount(sql) {
    let count = 0;
    String(sql).replace(/'(?:[^']|'')*'|\$(\d+)/g, (m, d) => { if (d) count = Math.max(count, Number(d)); return m; });
    return count;
  }
  function literal(t) { try { return JSON.parse(t); } catch (e) { return t; } }

  class Panel {
    constructor(root) {
      this.root = root;
      this.wid = root.dataset.workflow;
      this.form = $(root, "#np-form");
      this.body = $(root, "#np-body");
      this.pick = $(root, "#np-node");
      this.status = $(root, "#np-status");
      this.current = null;   // index of the node in the form
      this.editor = null;    // CodeMirror view of a TypeScript node
      this.describeTimer = null;
      this.pick.addEventListener("change", () => this.select(this.pick.value));
      this.form.addEventListener("submit", (ev) => { ev.preventDefault(); this.save(); });
      this.form.addEventListener("input", (ev) => this.onInput(ev));
      this.form.addEventListener("change", (ev) => this.onInput(ev));
      $(root, "#np-discard").addEventListener("click", () => this.load(this.nodeId()));
      $(root, "#np-remove").addEventListener("click", () => this.removeNode());
      const toggle = $(root, "#np-new-toggle"), add = $(root, "#np-new");
      toggle.addEventListener("click", () => {
        add.hidden = !add.hidden; toggle.setAttribute("aria-expanded", String(!add.hidden));
        if (!add.hidden) $(add, "#np-new-id").focus();
      });
      add.addEventListener("submit", (ev) => { ev.preventDefault(); this.addNode(); });
      document.addEventListener("wfmon:node-select", (ev) => {
        const id = ev.detail && ev.detail.node_id;
        if (id != null && this.def && this.indexOf(String(id)) >= 0) {
          this.select(String(id));
          this.root.scrollIntoView({ block: "nearest" });
        }
      });
      this.load();
    }

    // -- data ---------------------------------------------------------------------------------
    async load(keep) {
      const r = await call("GET", `/api/workflows/${this.wid}/editor`);
      if (!r.ok) { this.say(errorText(r), true); return; }
      this.info = r.data;
      this.version = r.data.current_version;
      this.def = clone(r.data.definition || {});
      this.def.nodes = Array.isArray(this.def.nodes) ? this.def.nodes : [];
      this.def.edges = Array.isArray(this.def.edges) ? this.def.edges : [];
      this.components = new Map(r.data.components.map((c) => [c.name, c]));
      $(this.root, "#np-new-component").innerHTML = r.data.components
        .map((c) => `<option value="${esc(c.name)}">${esc(c.display_name)}</option>`).join("");
      this.current = null;
      this.fillPick();
      const first = keep && this.indexOf(keep) >= 0 ? keep : (this.def.nodes[0] || {}).id;
      if (first != null) this.select(first); else { this.form.hidden = true; }
      this.say("");
    }
    indexOf(id) { return this.def.nodes.findIndex((n) => n.id === id); }
    nodeId() { return this.current == null ? null : this.def.nodes[this.current].id; }
    fillPick() {
      this.pick.innerHTML = this.def.nodes.length
        ? this.def.nodes.map((n) => `<option value="${esc(n.id)}">${esc(n.id)} · ${esc(n.component)}</option>`).join("")
        : '<option value="">No nodes yet</option>';
      if (this.current != null) this.pick.value = this.nodeId();
    }
    say(text, isError, list) {
      this.status.innerHTML = text ? `<p class="${isError ? "error" : "ok"}">${esc(text)}</p>` +
        (list && list.length ? `<ul class="np-problems">${list.map((m) => `<li>${esc(m)}</li>`).join("")}</ul>` : "") : "";
    }

    // -- one node's form ----------------------------------------------------------------------
    select(id) {
      if (this.current != null) this.collect();
      const i = this.indexOf(id);
      if (i < 0) return;
      this.current = i;
      this.pick.value = id;
      this.typedPolicy = {};  // retry settings typed for this node, under any strategy
      this.render();
      this.form.hidden = false;
    }
    upstreamOf(id) { return this.def.edges.filter((e) => e.target === id).map((e) => e.source); }
    connectionOptions(type, chosen) {
      const list = this.info.connections.filter((c) => c.connection_type === type);
      return `<option value="">— choose a ${esc(type)} connection —</option>` + list.map((c) =>
        `<option value="${esc(c.id)}"${c.id === chosen ? " selected" : ""}>${esc(c.name)} (${esc(c.connection_type)})</option>`).join("");
    }
    field(name, label, control, hint) {
      const id = "np-f-" + name.replace(/[^A-Za-z0-9]/g, "-");
      return `<div class="np-field"><label for="${id}">${esc(label)}</label>${control.replace("{id}", id)}` +
        (hint ? `<span class="small muted">${esc(hint)}</span>` : "") +
        `<p class="field-error" data-error-for="${esc(name)}" hidden></p></div>`;
    }
    render() {
      const n = this.def.nodes[this.current];
      const spec = this.components.get(n.component);
      const rp = n.retry_policy || { strategy: "fail_after_attempts" };
      const comps = [...this.components.values()].map((c) =>
        `<option value="${esc(c.name)}"${c.name === n.component ? " selected" : ""}>${esc(c.display_name)}</option>`).join("");
      let html = `<h3>Node <code>${esc(n.id)}</code></h3>` +
        this.field("component", "Component", `<select id="{id}" data-field="component">${comps}</select>`) +
        `<fieldset class="np-retry"><legend>Retry policy</legend>` +
        this.field("retry_policy.strategy", "Strategy", `<select id="{id}" data-field="retry_policy.strategy">` +
          Object.entries(STRATEGIES).map(([k, s]) => `<option value="${k}"${k === rp.strategy ? " selected" : ""}>${esc(s.label)}</option>`).join("") + `</select>`) +
        `<div class="np-strategy-fields">${this.strategyFields(rp)}</div>` +
        `<p class="np-sentence">It will: <output id="np-sentence" aria-live="polite"></output></p></fieldset>` +
        `<fieldset class="np-settings"><legend>${esc(spec ? spec.display_name : n.component)} settings</legend>${this.settings(n, spec)}</fieldset>` +
        `<fieldset class="np-edges"><legend>Edges</legend>${this.edges(n)}</fieldset>`;
      this.body.innerHTML = html;
      this.mountCode(n);
      this.describe();
    }
    strategyFields(rp) {
      return STRATEGIES[rp.strategy].fields.map(([key, label, kind, dflt]) => this.field(
        "retry_policy." + key, label,
        `<input id="{id}" data-policy="${key}" data-kind="${kind}" inputmode="${kind === "duration" ? "text" : "decimal"}" size="10" placeholder="${esc(dflt)}" value="${esc(rp[key] == null ? "" : rp[key])}">`,
        kind === "duration" ? "e.g. 500ms, 30s, 1m30s; empty = " + dflt : "empty = " + dflt)).join("");
    }
    settings(n, spec) {
      const c = n.config || {};
      const conn = (type, chosen, name, label) => this.field(name || "connection_id", label || "Connection",
        `<select id="{id}" data-field="${name || "connection_id"}">${this.connectionOptions(type, chosen)}</select>`);
      switch (n.component) {
        case "postgresql-query": {
          return conn("postgresql", n.connection_id) +
            this.field("config.sql", "SQL (parameters $1, $2, …)", `<textarea id="{id}" data-field="config.sql" rows="4" spellcheck="false">${esc(c.sql || "")}</textarea>`) +
            `<div class="np-params" data-error-host="config.params">${this.paramRows(n, c)}</div>` +
            `<p class="field-error" data-error-for="config.params" hidden></p>`;
        }
        case "redis-command": {
          const args = Array.isArray(c.args) ? c.args : [];
          const cmds = this.info.redis_commands.map((x) => `<option${x === String(c.command || "").toUpperCase() ? " selected" : ""}>${esc(x)}</option>`).join("");
          return conn("redis", n.connection_id) +
            this.field("config.command", "Command", `<select id="{id}" data-field="config.command">${cmds}</select>`) +
            this.field("config.args.0", "Key", `<input id="{id}" data-field="config.key" size="30" value="${esc(args.length ? paramText(args[0]) : "")}">`, "use {workflow.x} or {upstream.node.x} for values") +
            this.field("config.args.1", "Value", `<input id="{id}" data-field="config.value" size="30" value="${esc(args.length > 1 ? paramText(args[1]) : "")}">`, "empty for commands without a value") +
            `<input type="hidden" data-field="config.more" value="${esc(JSON.stringify(args.slice(2)))}">`;
        }
        case "typescript-processor":
          return `<div class="np-field"><span class="np-label" id="np-code-label">Code (TypeScript)</span><div class="np-code" id="np-code" data-field="config.code"></div>` +
            `<p class="field-error" data-error-for="config.code" hidden></p><p class="field-error" data-error-for="config" hidden></p></div>` +
            this.field("config.timeout_ms", "Timeout (ms)", `<input id="{id}" data-field="config.timeout_ms" inputmode="numeric" size="8" placeholder="5000" value="${esc(c.timeout_ms == null ? "" : c.timeout_ms)}">`);
        case "cache-aside": {
          const wrappable = [...this.components.values()].filter((x) => x.name !== "cache-aside");
          const w = { component: wrappable[0].name, ...(c.wrapped || {}) };
          const wspec = this.components.get(w.component);
          return conn("redis", n.connection_id, "connection_id", "Cache (Redis connection)") +
            this.field("config.wrapped.component", "Wrapped component", `<select id="{id}" data-field="config.wrapped.component">` +
              wrappable.map((x) => `<option value="${esc(x.name)}"${x.name === w.component ? " selected" : ""}>${esc(x.display_name)}</option>`).join("") + `</select>`) +
            (wspec && wspec.connection_type ? conn(wspec.connection_type, w.connection_id, "config.wrapped.connection_id", "Wrapped component's connection") : "") +
            this.field("config.wrapped.config", "Wrapped component's settings (JSON)", `<textarea id="{id}" data-field="config.wrapped.config" rows="3" spellcheck="false">${esc(JSON.stringify(w.config || {}, null, 1))}</textarea>`) +
            this.field("config.key", "Cache key", `<input id="{id}" data-field="config.cache_key" size="30" value="${esc(c.key || "")}">`, "a template such as user:{workflow.id}") +
            this.field("config.ttl_seconds", "Time to live (seconds)", `<input id="{id}" data-field="config.ttl_seconds" inputmode="numeric" size="8" placeholder="300" value="${esc(c.ttl_seconds == null ? "" : c.ttl_seconds)}">`);
        }
        default:
          return (spec && spec.connection_type ? conn(spec.connection_type, n.connection_id) : "") +
            this.field("config", "Settings (JSON)", `<textarea id="{id}" data-field="config.json" rows="4" spellcheck="false">${esc(JSON.stringify(c, null, 1))}</textarea>`);
      }
    }
    paramRows(n, c) {
      const count = paramCount(c.sql || "");  // the node's SQL (collect() ran before a re-render)
      const params = Array.isArray(c.params) ? c.params : [];
      const ups = this.upstreamOf(n.id);
      let rows = "";
      for (let i = 0; i < count; i++) {
        const p = params[i];
        let source = "workflow", path = "";
        if (p && typeof p === "object" && typeof p.path === "string") {
          const parts = p.path.split(".");
          if (parts[0] === "upstream" && parts.length >= 2) { source = "upstream:" + parts[1]; path = parts.slice(2).join("."); }
          else { source = "workflow"; path = parts.slice(1).join("."); }
        } else if (p !== undefined) { source = "value"; path = p && typeof p === "object" && "value" in p ? JSON.stringify(p.value) : (typeof p === "string" ? p : JSON.stringify(p)); }
        const opts = [["workflow", "workflow input"], ...ups.map((u) => ["upstream:" + u, `output of ${u}`]), ["value", "a literal value"]]
          .map(([v, l]) => `<option value="${esc(v)}"${v === source ? " selected" : ""}>${esc(l)}</option>`).join("");
        rows += `<div class="np-param" data-param="${i}"><label for="np-p${i}-src">$${i + 1} from</label> <select id="np-p${i}-src" data-param-source>${opts}</select>` +
          ` <label for="np-p${i}-path" class="sr-only">$${i + 1} path or value</label><input id="np-p${i}-path" data-param-path size="22" placeholder="path, e.g. order.id" value="${esc(path)}">` +
          `<p class="field-error" data-error-for="config.params.${i}" hidden></p></div>`;
      }
      return rows || '<p class="small muted">No $n parameters in the SQL.</p>';
    }
    edges(n) {
      const ins = this.def.edges.map((e, i) => [e, i]).filter(([e]) => e.target === n.id);
      const outs = this.def.edges.map((e, i) => [e, i]).filter(([e]) => e.source === n.id);
      const others = this.def.nodes.filter((x) => x.id !== n.id).map((x) => `<option value="${esc(x.id)}">${esc(x.id)}</option>`).join("");
      const item = ([e, i], text) => `<li>${text} <button type="button" class="link-button" data-remove-edge="${i}" aria-label="Remove the edge ${esc(e.source)} to ${esc(e.target)}">Remove</button></li>`;
      return `<ul class="np-edge-list">` +
        ins.map((x) => item(x, `<code>${esc(x[0].source)}</code> → this node`)).join("") +
        outs.map((x) => item(x, `this node → <code>${esc(x[0].target)}</code>`)).join("") +
        (ins.length + outs.length ? "" : '<li class="muted">No edges.</li>') + `</ul>` +
        (others ? `<div class="np-edge-add"><label for="np-edge-other">Other node</label> <select id="np-edge-other">${others}</select>` +
          ` <button type="button" data-add-edge="in">Add edge into this node</button> <button type="button" data-add-edge="out">Add edge from this node</button></div>` : "") +
        `<p class="field-error" data-error-for="edges" hidden></p>`;
    }
    mountCode(n) {
      this.editor = null;
      const host = $(this.body, "#np-code");
      if (!host) return;
      // The module's default export receives the node's document and returns its output.
      const code = (n.config || {}).code ||
        "export default (doc: { workflow: unknown; upstream: Record<string, unknown> }) => {\n  return doc.upstream;\n};\n";
      if (window.WfmonCodeMirror) {
        this.editor = window.WfmonCodeMirror.createEditor(host, code, null, "Code (TypeScript)");
      } else {
        host.innerHTML = `<textarea rows="8" aria-labelledby="np-code-label" spellcheck="false">${esc(code)}</textarea>`;
      }
    }

    // -- form -> definition -------------------------------------------------------------------
    value(name) { const el = $(this.body, `[data-field="${name}"]`); return el ? el.value : undefined; }
    readPolicy() {
      const strategy = this.value("retry_policy.strategy");
      const out = { strategy };
      this.body.querySelectorAll("[data-policy]").forEach((el) => {
        const v = el.value.trim();
        if (v === "") return;
        out[el.dataset.policy] = el.dataset.kind === "duration" ? v : (isNaN(Number(v)) ? v : Number(v));
      });
      return out;
    }
    collect() {
      const n = this.def.nodes[this.current];
      if (!n || !this.body.firstChild) return;
      const out = { ...n, retry_policy: this.readPolicy() };
      const number = (name) => { const v = (this.value(name) || "").trim(); return v === "" ? undefined : (isNaN(Number(v)) ? v : Number(v)); };
      const conn = this.value("connection_id");
      if (conn !== undefined) out.connection_id = conn || null;
      const c = {};
      switch (n.component) {
        case "postgresql-query": {
          c.sql = this.value("config.sql");
          const params = [...this.body.querySelectorAll("[data-param]")].map((row) => {
            const src = $(row, "[data-param-source]").value, path = $(row, "[data-param-path]").value.trim();
            if (src === "value") return { value: literal(path) };
            if (src === "workflow") return { path: path ? `workflow.${path}` : "workflow" };
            return { path: `upstream.${src.slice("upstream:".length)}${path ? "." + path : ""}` };
          });
          Object.assign(c, (n.config || {}), { sql: c.sql });
          if (params.length) c.params = params; else delete c.params;
          break;
        }
        case "redis-command": {
          Object.assign(c, n.config || {});
          c.command = this.value("config.command");
          const key = this.value("config.key"), val = this.value("config.value");
          let more = [];
          try { more = JSON.parse(this.value("config.more") || "[]"); } catch (e) { more = []; }
          c.args = [textParam(key), ...(val !== "" || more.length ? [textParam(val)] : []), ...more];
          if (!key && !val && !more.length) c.args = [];
          break;
        }
        case "typescript-processor": {
          Object.assign(c, n.config || {});
          c.code = this.editor ? this.editor.state.doc.toString() : (($(this.body, "#np-code textarea") || {}).value || "");
          const t = number("config.timeout_ms");
          if (t === undefined) delete c.timeout_ms; else c.timeout_ms = t;
          break;
        }
        case "cache-aside": {
          const w = { component: this.value("config.wrapped.component") };
          const wconn = this.value("config.wrapped.connection_id");
          if (wconn) w.connection_id = wconn;
          const text = this.value("config.wrapped.config");
          try { w.config = JSON.parse(text || "{}"); } catch (e) { w.config = text; }
          c.wrapped = w;
          c.key = this.value("config.cache_key");
          const ttl = number("config.ttl_seconds");
          if (ttl !== undefined) c.ttl_seconds = ttl;
          break;
        }
        default: {
          const text = this.value("config.json");
          try { Object.assign(c, JSON.parse(text || "{}")); } catch (e) { out.config = text; this.def.nodes[this.current] = out; return; }
        }
      }
      out.config = c;
      if (conn === undefined) out.connection_id = null;  // this component takes no connection
      this.def.nodes[this.current] = out;
    }

    onInput(ev) {
      const t = ev.target;
      if (t.dataset.field === "retry_policy.strategy" && ev.type === "change") {
        // What was typed survives a change of strategy (and the way back): a setting of the
        // same name means the same under every strategy (attempts in total, the interval).
        this.body.querySelectorAll("[data-policy]").forEach((el) => { this.typedPolicy[el.dataset.policy] = el.value.trim(); });
        const rp = { strategy: t.value };
        for (const [key] of STRATEGIES[t.value].fields) if (this.typedPolicy[key]) rp[key] = this.typedPolicy[key];
        $(this.body, ".np-strategy-fields").innerHTML = this.strategyFields(rp);
      }
      if (t.dataset.field === "component" && ev.type === "change") {
        this.collect();
        const n = this.def.nodes[this.current];
        n.component = t.value; n.config = {}; n.connection_id = null;
        this.render();
        return;
      }
      if (t.dataset.field === "config.wrapped.component" && ev.type === "change") { this.collect(); this.render(); return; }
      if (t.dataset.field === "config.sql" && ev.type === "input") {
        // Rows for $1..$n follow the SQL; existing rows keep their values.
        const wanted = paramCount(t.value), rows = this.body.querySelectorAll("[data-param]").length;
        if (wanted !== rows) {
          this.collect();
          $(this.body, ".np-params").innerHTML = this.paramRows(this.def.nodes[this.current], this.def.nodes[this.current].config);
        }
      }
      if (t.dataset.policy !== undefined || t.dataset.field === "retry_policy.strategy") {
        clearTimeout(this.describeTimer);
        this.describeTimer = setTimeout(() => this.describe(), 250);
      }
    }

    // The server says what the policy will do, and what is wrong with it (same validation as
    // a save): errors go next to their fields.
    async describe() {
      const policy = this.readPolicy();
      const out = $(this.body, "#np-sentence");
      if (!out) return;
      const token = (this.describeToken = (this.describeToken || 0) + 1);
      const r = await call("POST", "/api/retry-policies/describe", policy);
      if (token !== this.describeToken) return;
      this.clearErrors("retry_policy.");
      if (r.ok) { out.textContent = r.data.sentence; out.classList.remove("bad"); return; }
      out.textContent = "(fix the settings above)"; out.classList.add("bad");
      for (const f of (r.data.fields || [])) this.showError("retry_policy." + f.field.replace(/^body\./, ""), f.message);
    }
    clearErrors(prefix) {
      this.root.querySelectorAll("[data-error-for]").forEach((p) => {
        if (!prefix || p.dataset.errorFor.startsWith(prefix)) { p.hidden = true; p.textContent = ""; }
      });
    }
    showError(field, message) {
      let parts = field.split(".");
      while (parts.length) {
        const p = this.root.querySelector(`[data-error-for="${CSS.escape(parts.join("."))}"]`);
        if (p) { p.textContent = message; p.hidden = false; return true; }
        parts = parts.slice(0, -1);
      }
      return false;
    }

    // -- structure ----------------------------------------------------------------------------
    addNode() {
      const id = $(this.root, "#np-new-id").value.trim();
      const component = $(this.root, "#np-new-component").value;
      if (!id) return;
      if (this.current != null) this.collect();
      if (this.indexOf(id) >= 0) { this.say(`There is already a node ${id}.`, true); return; }
      this.def.nodes.push({ id, component, config: {}, retry_policy: { strategy: "fail_after_attempts" } });
      this.current = null;
      this.fillPick();
      this.select(id);
      $(this.root, "#np-new").hidden = true;
      $(this.root, "#np-new-toggle").setAttribute("aria-expanded", "false");
      $(this.root, "#np-new-id").value = "";
      this.say(`Added node ${id}: set it up, then save.`);
    }
    removeNode() {
      const id = this.nodeId();
      if (id == null) return;
      this.def.nodes.splice(this.current, 1);
      this.def.edges = this.def.edges.filter((e) => e.source !== id && e.target !== id);
      this.current = null;
      this.fillPick();
      if (this.def.nodes.length) this.select(this.def.nodes[0].id); else this.form.hidden = true;
      this.say(`Removed node ${id} and its edges: save to keep the change.`);
    }
    editEdges(ev) {
      const rm = ev.target.closest("[data-remove-edge]"), add = ev.target.closest("[data-add-edge]");
      if (!rm && !add) return;
      this.collect();
      if (rm) this.def.edges.splice(Number(rm.dataset.removeEdge), 1);
      else {
        const other = $(this.body, "#np-edge-other").value, me = this.nodeId();
        const e = add.dataset.addEdge === "in" ? { source: other, target: me } : { source: me, target: other };
        if (!this.def.edges.some((x) => x.source === e.source && x.target === e.target)) this.def.edges.push(e);
      }
      this.render();
      this.say("Edges changed: save to keep the change.");
    }

    async save() {
      this.collect();
      this.clearErrors();
      const button = $(this.root, "#np-save");
      button.disabled = true;
      try {
        const definition = { ...this.def };
        const r = await call("PUT", `/api/workflows/${this.wid}`, { definition, base_version: this.version });
        if (r.ok) {
          const keep = this.nodeId();
          this.version = r.data.version;
          this.root.dataset.version = String(this.version);
          await this.load(keep);
          this.say(`Saved version ${r.data.version}.`);
          const head = document.querySelector("h1 .muted");  // "v3 · private" in the page title
          if (head) head.textContent = head.textContent.replace(/^v\d+/, `v${r.data.version}`);
          document.dispatchEvent(new CustomEvent("wfmon:definition-changed", { detail: { version: r.data.version } }));
          this.refreshNodeList();
          return;
        }
        const rest = [];
        for (const f of (r.data.fields || [])) {
          const m = /^body\.definition\.nodes\.(\d+)\.(.+)$/.exec(f.field);
          if (m && Number(m[1]) === this.current && this.showError(m[2], f.message)) continue;
          // Edge problems (cycles, unknown nodes) name their nodes: beside the edges and below.
          if (/^body\.definition\.edges/.test(f.field)) this.showError("edges", f.message);
          rest.push(f.message);
        }
        this.say(r.status === 422 ? "Not saved: the definition would not run." : `Not saved: ${errorText(r)}`, true, rest);
      } finally {
        button.disabled = false;
      }
    }
    refreshNodeList() {
      // The Overview's plain list of nodes (templates/workflow.html) follows the saved version.
      const list = document.querySelector("ol.nodes");
      if (!list) return;
      list.innerHTML = this.def.nodes.map((n) => `<li><code>${esc(n.id)}</code> · ${esc(n.component)}` +
        (n.retry_policy ? ` · <span class="muted">${esc(n.retry_policy.strategy)}</span>` : "") + "</li>").join("");
    }
  }

  // -- versions ---------------------------------------------------------------------------------
  class Versions {
    constructor(root) {
      this.root = root;
      this.wid = root.dataset.workflow;
      $(root, "#versions-compare").addEventListener("submit", (ev) => { ev.preventDefault(); this.compare(); });
      document.addEventListener("wfmon:definition-changed", () => this.load());
      this.load();
    }
    async load() {
      const r = await call("GET", `/api/workflows/${this.wid}/versions`);
      const body = $(this.root, "#versions-table tbody");
      if (!r.ok) { body.innerHTML = `<tr><td colspan="5" class="error">${esc(errorText(r))}</td></tr>`; return; }
      const items = r.data;
      body.innerHTML = items.map((v) => `<tr data-version="${v.version}"><td>v${v.version}${v.current ? ' <span class="badge s-completed">current</span>' : ""}</td>` +
        `<td>${esc(new Date(v.created_at).toLocaleString())}</td><td class="num">${v.node_count}</td><td class="num">${v.edge_count}</td><td class="num">${v.execution_count}</td></tr>`).join("");
      const opts = items.map((v) => `<option value="${v.version}">v${v.version}</option>`).join("");
      const from = $(this.root, "#vc-from"), to = $(this.root, "#vc-to");
      from.innerHTML = opts; to.innerHTML = opts;
      if (items.length > 1) { from.value = String(items[1].version); to.value = String(items[0].version); }
      $(this.root, "#versions-compare").hidden = items.length < 2;
    }
    async compare() {
      const from = $(this.root, "#vc-from").value, to = $(this.root, "#vc-to").value;
      const out = $(this.root, "#versions-diff");
      const r = await call("GET", `/api/workflows/${this.wid}/diff?from=${from}&to=${to}`);
      if (!r.ok) { out.innerHTML = `<p class="error">${esc(errorText(r))}</p>`; return; }
      const d = r.data, show = (v) => (v === null || v === undefined ? "—" : `<code>${esc(JSON.stringify(v))}</code>`);
      if (d.unchanged) { out.innerHTML = `<p class="muted">v${d.from_version} and v${d.to_version} are the same.</p>`; return; }
      const li = [];
      d.nodes_added.forEach((n) => li.push(`<li class="d-add">node <code>${esc(n)}</code> added</li>`));
      d.nodes_removed.forEach((n) => li.push(`<li class="d-del">node <code>${esc(n)}</code> removed</li>`));
      d.nodes_changed.forEach((c) => li.push(`<li class="d-chg">node <code>${esc(c.node_id)}</code> changed<ul>` +
        c.changes.map((s) => `<li><code>${esc(s.path)}</code>: ${show(s.before)} → ${show(s.after)}</li>`).join("") + `</ul></li>`));
      d.edges_added.forEach((e) => li.push(`<li class="d-add">edge <code>${esc(e.source)}</code> → <code>${esc(e.target)}</code> added</li>`));
      d.edges_removed.forEach((e) => li.push(`<li class="d-del">edge <code>${esc(e.source)}</code> → <code>${esc(e.target)}</code> removed</li>`));
      out.innerHTML = `<h3>From v${d.from_version} to v${d.to_version}</h3><ul class="diff-list">${li.join("")}</ul>`;
    }
  }

  // -- run --------------------------------------------------------------------------------------
  function runForm(root) {
    const form = $(root, "#run"), box = $(root, "#run-input"), err = $(root, "#run-error");
    const fail = (m) => { err.textContent = m; err.hidden = !m; box.setAttribute("aria-invalid", m ? "true" : "false"); };
    box.addEventListener("input", () => fail(""));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      let input;
      try { input = box.value.trim() === "" ? null : JSON.parse(box.value); } catch (e) { fail(`The input is not valid JSON: ${e.message}`); return; }
      const button = $(form, "button");
      button.disabled = true;
      try {
        const r = await call("POST", `/api/workflows/${root.dataset.workflow}/runs`, { input });
        if (!r.ok) {
          fail(r.status === 422 ? (r.data.fields || []).map((f) => f.message).join("; ") || errorText(r) : errorText(r));
          return;
        }
        if (r.data.url) { location.assign(r.data.url); return; }
        fail(`Started (${r.data.temporal_workflow_id}), but ${r.data.problem}.`);
      } finally { button.disabled = false; }
    });
  }

  function start() {
    const panel = document.getElementById("node-panel");
    if (panel) {
      const p = new Panel(panel);
      panel.addEventListener("click", (ev) => p.editEdges(ev));
      window.wfmonPanel = p;
    }
    const versions = document.getElementById("versions");
    if (versions) new Versions(versions);
    const run = document.getElementById("run-form");
    if (run) runForm(run);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
