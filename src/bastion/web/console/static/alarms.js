// The Alarms view's live part: every refresh, fetch the server-rendered fragment
// (`/console/alarms?fragment=1`), swap `#alarms-live` for the new one (parsed with DOMParser,
// never innerHTML), and announce the alarms whose state changed in the polite live region.

const LIVE_ID = "alarms-live";

function statesOf(root) {
  const states = new Map();
  for (const row of root.querySelectorAll("#alarm-states tr[data-alarm]")) {
    states.set(row.dataset.alarm, row.dataset.state);
  }
  return states;
}

function announce(region, text) {
  const line = document.createElement("p");
  line.textContent = text;
  region.replaceChildren(line);
}

export function start(main) {
  const root = main.querySelector("#alarms-root");
  const region = main.querySelector("#alarms-announce");
  if (!root || !region) return;
  const every = Number(root.dataset.refreshMs) || 5000;
  const source = root.dataset.fragment;
  let busy = false;

  async function refresh() {
    if (busy || document.hidden) return; // a background tab catches up when shown again
    busy = true;
    try {
      const res = await fetch(source, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (res.redirected || res.status === 401) {
        window.location.assign("/login?next=" + encodeURIComponent(location.pathname));
        return;
      }
      if (!res.ok) {
        announce(region, `Refreshing the alarms failed (HTTP ${res.status}); retrying.`);
        return;
      }
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      const fresh = doc.getElementById(LIVE_ID);
      const current = document.getElementById(LIVE_ID);
      if (!fresh || !current) return;
      const before = statesOf(current);
      const after = statesOf(fresh);
      current.replaceWith(document.importNode(fresh, true));
      const changes = [];
      for (const [name, state] of after) {
        if (before.has(name) && before.get(name) !== state) changes.push(`${name} is now ${state}`);
      }
      if (changes.length) announce(region, changes.join(". ") + ".");
    } catch (_err) {
      announce(region, "Refreshing the alarms failed (the gateway did not answer); retrying.");
    } finally {
      busy = false;
    }
  }

  setInterval(refresh, every);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
}
