// The console's page script: keeps the session alive, asks before destructive actions, and
// loads the current view's own module (live updates and the research stream).
// No inline script anywhere: the Content-Security-Policy allows scripts from the gateway only.

const KEEPALIVE_MS = 60_000;

// Each view with live behaviour has a module exporting `start(root)`.
const VIEW_MODULES = {
  documents: "/static/documents.js",
  research: "/static/research.js",
  alarms: "/static/alarms.js",
};

function keepAlive() {
  setInterval(async () => {
    try {
      const res = await fetch("/console/session", { credentials: "same-origin" });
      if (res.status === 401) window.location.assign("/login?next=" + encodeURIComponent(location.pathname));
    } catch (_err) {
      // offline for a moment: the next tick tries again
    }
  }, KEEPALIVE_MS);
}

function confirmations() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

async function startView() {
  const view = document.body.dataset.view;
  const path = VIEW_MODULES[view];
  if (!path) return;
  const module = await import(path);
  module.start(document.getElementById("main"));
}

export function csrfToken() {
  return document.body.dataset.csrf || "";
}

// The WebSocket URL of a gateway route on this page's own origin.
export function socketUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

if (document.body.dataset.view) {
  keepAlive();
}
confirmations();
startView();
