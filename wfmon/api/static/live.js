// wfmon live pages: updates pushed by the server (Server-Sent Events), polling as fallback.
//
// A page element with data-live-stream="<url>" is live: the script opens that event stream;
// each "update" event (ids only) makes the page refetch its part through the usual pages
// and endpoints (so row-level security applies as always). When the stream drops or cannot
// open, the page polls every data-live-poll milliseconds and tries the stream again with a
// growing delay. An element with data-live-indicator says which it is: "live" or "polling".
//
// How the page refetches (data-live-swap):
//   "fragment": GET the page with ?fragment=1 and replace the element's content (the
//               execution page; it stops when the execution is no longer running); a
//               <template data-live-head> in it replaces the [data-live-head-slot]'s content;
//   "regions" (default): GET the page and replace every [data-live-region][id] element.
// After each refresh: document.dispatchEvent(new CustomEvent("wfmon:live-update",
//   {detail: {kind, execution_id}})) — execution_id is null after a poll of a list.
//
// Other scripts can start their own: wfmonLive.start({stream, kind, refresh, pollMs,
// indicator}) where refresh() is async and returns false to stop being live.
"use strict";
(function () {
  const MIN_GAP_MS = 250;          // coalesce bursts of events into one refetch
  const RETRY_FIRST_MS = 2000;
  const RETRY_MAX_MS = 30000;

  function start(opts) {
    const kind = opts.kind || "page";
    const pollMs = opts.pollMs || 5000;
    const indicator = opts.indicator || null;
    let source = null, pollTimer = null, retryTimer = null, retryMs = RETRY_FIRST_MS;
    let busy = false, again = false, againId = null, stopped = false, lastRun = 0;

    function setMode(mode) {
      if (!indicator) return;
      indicator.hidden = mode === "off";
      indicator.dataset.liveState = mode;
      const words = { live: "live", polling: "polling", connecting: "connecting…", paused: "paused" };
      indicator.textContent = words[mode] || "";
      indicator.title = mode === "live"
        ? "Updates are pushed by the server as they are synced"
        : mode === "polling" ? "Live updates are unavailable: refreshing every few seconds" : "";
    }

    async function refresh(executionId) {
      if (stopped) return;
      if (busy) { again = true; againId = executionId || againId; return; }
      const wait = lastRun + MIN_GAP_MS - Date.now();
      if (wait > 0) { busy = true; await new Promise((r) => setTimeout(r, wait)); busy = false; }
      busy = true;
      let keep = true;
      try {
        keep = (await opts.refresh()) !== false;
        document.dispatchEvent(new CustomEvent("wfmon:live-update", {
          detail: { kind, execution_id: executionId || opts.executionId || null },
        }));
      } catch (e) { /* the next event or poll tries again */ }
      lastRun = Date.now();
      busy = false;
      if (!keep) { stop(); return; }
      if (again) { const next = againId; again = false; againId = null; refresh(next); }
    }

    function startPolling() {
      if (pollTimer || stopped) return;
      const tick = async () => { await refresh(); if (pollTimer) pollTimer = setTimeout(tick, pollMs); };
      pollTimer = setTimeout(tick, pollMs);
    }
    function stopPolling() { if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; } }

    function dropped() {
      if (source) { source.close(); source = null; }
      if (stopped) return;
      setMode("polling");
      startPolling();
      if (!retryTimer) {
        retryTimer = setTimeout(() => { retryTimer = null; connect(); }, retryMs);
        retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
      }
    }

    function connect() {
      if (stopped || source || typeof EventSource === "undefined") {
        if (!source && !stopped) dropped();
        return;
      }
      const es = new EventSource(opts.stream, { withCredentials: true });
      source = es;
      es.addEventListener("ready", () => {
        setMode("live");
        stopPolling();
        retryMs = RETRY_FIRST_MS;
        refresh();  // catch up on what happened while the stream was not open
      });
      es.addEventListener("update", (ev) => {
        let id = null;
        try { id = JSON.parse(ev.data).execution_id || null; } catch (e) { id = null; }
        refresh(id);
      });
      es.addEventListener("end", () => { if (source === es) dropped(); });
      es.onerror = () => { if (source === es) dropped(); };
    }

    function stop() {
      stopped = true;
      stopPolling();
      if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
      if (source) { source.close(); source = null; }
      setMode("off");
    }

    function pause() {
      if (source) { source.close(); source = null; }
      stopPolling();
      if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
      setMode("paused");
    }

    setMode("connecting");
    connect();
    // A hidden tab holds no stream: browsers allow ~6 connections per server over
    // HTTP/1.1, and a background tab needs no updates. Back in view it reconnects, and
    // the "ready" refetch catches up.
    document.addEventListener("visibilitychange", () => {
      if (stopped) return;
      if (document.hidden) pause();
      else { retryMs = RETRY_FIRST_MS; connect(); }
    });
    window.addEventListener("pagehide", () => { if (source) { source.close(); source = null; } });
    return { stop, refresh, get mode() { return indicator ? indicator.dataset.liveState : null; } };
  }

  // -- the two ways a page refetches --------------------------------------------------

  function fragmentRefresh(root) {
    return async () => {
      const open = new Set([...root.querySelectorAll("details[open][id]")].map((d) => d.id));
      const url = new URL(location.href);
      url.searchParams.set("fragment", "1");
      const res = await fetch(url, { credentials: "same-origin" });
      if (!res.ok) throw new Error(String(res.status));
      root.innerHTML = await res.text();
      root.querySelectorAll("details[id]").forEach((d) => { if (open.has(d.id)) d.open = true; });
      // The heading and figures sit above the graph, outside root: the fragment carries
      // them in <template data-live-head> for the page's [data-live-head-slot].
      const carried = root.querySelector("template[data-live-head]");
      const slot = document.querySelector("[data-live-head-slot]");
      if (carried) {
        if (slot) slot.replaceChildren(carried.content.cloneNode(true));
        carried.remove();
      }
      const head = document.querySelector(".exec-head");
      const running = !head || head.dataset.status === "running";
      if (!running) root.dataset.live = "false";
      return running;
    };
  }

  function regionsRefresh() {
    return async () => {
      const res = await fetch(location.href, { credentials: "same-origin" });
      if (!res.ok) throw new Error(String(res.status));
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      document.querySelectorAll("[data-live-region][id]").forEach((el) => {
        const fresh = doc.getElementById(el.id);
        if (fresh) el.replaceWith(document.importNode(fresh, true));
      });
      return true;
    };
  }

  function auto() {
    document.querySelectorAll("[data-live-stream]").forEach((root) => {
      if (root.dataset.live === "false") return;  // e.g. an execution that has finished
      const swap = root.dataset.liveSwap || "regions";
      start({
        stream: root.dataset.liveStream,
        kind: root.dataset.liveKind,
        executionId: root.dataset.executionId || null,
        pollMs: Number(root.dataset.livePoll) || 5000,
        indicator: document.querySelector(root.dataset.liveIndicator || "[data-live-indicator]"),
        refresh: swap === "fragment" ? fragmentRefresh(root) : regionsRefresh(),
      });
    });
  }

  window.wfmonLive = { start };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", auto);
  else auto();
})();
