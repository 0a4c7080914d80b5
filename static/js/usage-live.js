// The usage page's Live list: requests as they are recorded, over a WebSocket.
// Progressive enhancement: without this script (or without a connection) the page is whole.
(() => {
  "use strict";
  const list = document.getElementById("live-feed");
  const status = document.getElementById("live-status");
  if (!list || !status || !("WebSocket" in window)) return;

  const MAX_ROWS = 50;
  // Refusals that retrying cannot fix; anything else (a restart, Redis away) is retried.
  const FINAL = {
    4401: "You are signed out: sign in again and reload the page.",
    4403: "You are no longer a member of this organization.",
  };
  const url = new URL(list.dataset.url, window.location.href);
  url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
  let delay = 1000;

  const cell = (text, className) => {
    const span = document.createElement("span");
    span.textContent = text;  // textContent only: names come from users, never as HTML
    if (className) span.className = className;
    return span;
  };

  const seen = new Set();  // a redelivered batch may publish a call twice

  const show = (call) => {
    if (seen.has(call.request_id)) return;
    seen.add(call.request_id);
    const item = document.createElement("li");
    item.dataset.requestId = call.request_id;
    const time = new Date(call.created_at);
    const key = call.key_name ? `${call.key_name} (${call.key_prefix}…)` : "(no key)";
    item.append(
      cell(time.toISOString().slice(11, 19), "live-time"),
      cell(String(call.status), call.status >= 400 ? "status status-error" : "status status-ok"),
      cell(call.model, "live-model"),
      cell(key, "muted"),
      cell(`$${call.cost_usd}`, "num"),
      cell(`${Math.round(call.duration_ms)} ms`, "num muted"),
    );
    list.prepend(item);
    while (list.children.length > MAX_ROWS) list.lastElementChild.remove();
  };

  const connect = () => {
    const socket = new WebSocket(url);
    socket.addEventListener("open", () => {
      delay = 1000;
      status.textContent = "Connected: new requests appear here as they are recorded.";
    });
    socket.addEventListener("message", (event) => {
      try { show(JSON.parse(event.data)); } catch { /* a malformed message is skipped */ }
    });
    socket.addEventListener("close", (event) => {
      if (FINAL[event.code]) { status.textContent = FINAL[event.code]; return; }
      if (event.code === 4429) {
        // Too many live connections (other tabs): wait longer before asking again.
        status.textContent = "Too many live connections open; close other usage tabs. Retrying…";
        delay = Math.max(delay, 15000);
      } else {
        status.textContent = event.code === 4503
          ? "Live updates are unavailable right now; retrying…"
          : "Disconnected; reconnecting…";
      }
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    });
  };
  connect();
})();
