// The Documents view's live updates: follows /ws/events (the session cookie authenticates it)
// and keeps the page current: a row's status, new documents at the top of the first page, the
// counts, and the detail page's status. Changes are announced in the page's polite live region.
// Text only goes in through textContent: event data never becomes markup.

import { socketUrl } from "/static/console.js";

const SUBPROTOCOL = "bastion.v1";
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30000;
const COUNTS_DELAY_MS = 500;
const SIGN_IN_CODES = new Set([4001, 4003]); // unauthenticated, or no longer allowed
const FINAL = new Set(["archived", "failed", "deleted"]);

function announce(region, text) {
  if (region) region.textContent = text;
}

function setStatus(cell, status) {
  cell.textContent = status;
  cell.className = "status-" + status;
}

async function getJson(path) {
  const res = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!res.ok || !(res.headers.get("content-type") || "").includes("application/json")) return null;
  return res.json();
}

// The list page: rows, counts, new documents.
function listPage(section) {
  const rows = document.getElementById("documents-rows");
  const table = document.getElementById("documents-table");
  const empty = document.getElementById("documents-empty");
  const live = document.getElementById("documents-live");
  const firstPage = section.dataset.firstPage === "true";
  const filter = section.dataset.statusFilter || "";
  const pageSize = Number(section.dataset.pageSize) || 25;
  let countsTimer = null;

  function refreshCounts() {
    clearTimeout(countsTimer);
    countsTimer = setTimeout(async () => {
      const counts = await getJson("/console/documents/counts").catch(() => null);
      if (!counts) return;
      const total = document.getElementById("count-total");
      if (total) total.textContent = String(counts.total);
      for (const [name, n] of Object.entries(counts.by_status || {})) {
        const el = document.getElementById("count-status-" + name);
        if (el) el.textContent = String(n);
      }
      for (const [name, n] of Object.entries(counts.by_outcome || {})) {
        const el = document.getElementById("count-outcome-" + name);
        if (el) el.textContent = String(n);
      }
    }, COUNTS_DELAY_MS);
  }

  function cell(field, text) {
    const td = document.createElement("td");
    td.dataset.field = field;
    td.textContent = text || "";
    return td;
  }

  function buildRow(doc) {
    const tr = document.createElement("tr");
    tr.id = "doc-" + doc.id;
    tr.dataset.documentId = doc.id;
    tr.className = "fresh";
    const idCell = document.createElement("td");
    const link = document.createElement("a");
    link.href = "/console/documents/" + encodeURIComponent(doc.id);
    const code = document.createElement("code");
    code.textContent = doc.id;
    link.appendChild(code);
    idCell.appendChild(link);
    const status = cell("status", "");
    setStatus(status, doc.status);
    const outcome = cell("outcome", doc.outcome);
    outcome.className = "doc-outcome-" + (doc.outcome || "");
    tr.append(idCell, cell("filename", doc.filename), status, outcome,
      cell("uploaded", doc.uploaded), cell("owner", doc.owner));
    return tr;
  }

  async function addDocument(id, status) {
    const doc = (await getJson("/console/documents/" + encodeURIComponent(id) + "/summary").catch(() => null))
      || { id, status, filename: "", outcome: "", uploaded: "", owner: "" };
    if (document.getElementById("doc-" + id)) return;
    if (filter && doc.status !== filter) return;
    rows.insertBefore(buildRow(doc), rows.firstChild);
    while (rows.children.length > pageSize) rows.removeChild(rows.lastChild);
    table.hidden = false;
    if (empty) empty.hidden = true;
    announce(live, `New document ${doc.filename || id}: ${doc.status}.`);
  }

  async function refreshOutcome(tr, id) {
    const doc = await getJson("/console/documents/" + encodeURIComponent(id) + "/summary").catch(() => null);
    if (!doc) return;
    const outcome = tr.querySelector('[data-field="outcome"]');
    if (outcome) {
      outcome.textContent = doc.outcome || "";
      outcome.className = "doc-outcome-" + (doc.outcome || "");
    }
  }

  return (event) => {
    const id = event.document_id;
    const tr = document.getElementById("doc-" + id);
    if (tr) {
      const statusCell = tr.querySelector('[data-field="status"]');
      if (statusCell && statusCell.textContent !== event.status) {
        setStatus(statusCell, event.status);
        const name = tr.querySelector('[data-field="filename"]');
        announce(live, `Document ${(name && name.textContent) || id} is now ${event.status}.`);
      }
      if (FINAL.has(event.status)) refreshOutcome(tr, id);
    } else if (event.type === "document.received" && firstPage) {
      addDocument(id, event.status);
    }
    refreshCounts();
  };
}

// The detail page: its document's status.
function detailPage(article) {
  const id = article.dataset.documentId;
  const status = document.getElementById("document-status");
  const live = document.getElementById("document-live");
  return (event) => {
    if (event.document_id !== id || !status || status.textContent === event.status) return;
    setStatus(status, event.status);
    const note = FINAL.has(event.status) ? " Reload the page for its results." : "";
    announce(live, `This document is now ${event.status}.${note}`);
  };
}

function follow(onEvent, subscribeTo) {
  let retry = FIRST_RETRY_MS;

  function open() {
    const socket = new WebSocket(socketUrl("/ws/events"), [SUBPROTOCOL]);
    socket.addEventListener("open", () => {
      retry = FIRST_RETRY_MS;
      if (subscribeTo) socket.send(JSON.stringify({ subscribe: [subscribeTo] }));
    });
    socket.addEventListener("message", (msg) => {
      let event;
      try {
        event = JSON.parse(msg.data);
      } catch (_err) {
        return;
      }
      if (event && typeof event.document_id === "string" && typeof event.status === "string") {
        onEvent(event);
      }
    });
    socket.addEventListener("close", (close) => {
      if (SIGN_IN_CODES.has(close.code)) {
        window.location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
        return;
      }
      setTimeout(open, retry);
      retry = Math.min(retry * 2, MAX_RETRY_MS);
    });
  }

  open();
}

export function start(root) {
  const scope = root || document;
  const section = scope.querySelector("#documents");
  if (section) {
    follow(listPage(section), null);
    return;
  }
  const article = scope.querySelector("#document");
  if (article) follow(detailPage(article), article.dataset.documentId);
}
