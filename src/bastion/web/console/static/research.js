// The Research view's live run: asks over WS /ws/research (the session cookie authenticates,
// subprotocol bastion.v1) and renders the run's events as they arrive: the plan, progress,
// sources with their credibility, critique rounds, the report streaming in, then the report
// again with its citations as links. Everything the run sends is set as text (DOM nodes and
// textContent, never parsed as markup); links only to http(s) addresses.
import { csrfToken, socketUrl } from "/static/console.js";

const CLOSE_MESSAGES = {
  1003: "The gateway refused the message.",
  1008: "The gateway refused the question.",
  1009: "The question is too long.",
  1013: "The research service is unavailable: try again shortly.",
  4001: "Your session has ended: sign in again to ask.",
  4003: "You may not ask research questions (the gateway.research grant is needed).",
  4029: "Too many requests: wait a moment and try again.",
};

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

// `value` when it is an absolute http(s) address, else null.
function webUrl(value) {
  if (typeof value !== "string") return null;
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch (_err) {
    return null;
  }
}

function externalLink(href, text) {
  const a = el("a", text);
  a.href = href;
  a.rel = "noopener noreferrer";
  return a;
}

function credibilityLabel(score) {
  if (score >= 0.75) return "high";
  if (score >= 0.45) return "medium";
  return "low";
}

function credibilityText(score) {
  const value = Number(score);
  if (!Number.isFinite(value)) return "unknown";
  return `${value.toFixed(2)} (${credibilityLabel(value)})`;
}

// A line of report text with its [n] citations as links (to the web source, else to its entry).
function appendCited(parent, text, byNumber) {
  const pattern = /\[(\d+)\]/g;
  let at = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > at) parent.append(document.createTextNode(text.slice(at, match.index)));
    const n = Number(match[1]);
    const source = byNumber.get(n);
    const url = source ? webUrl(source.url) : null;
    const link = url ? externalLink(url, `[${n}]`) : el("a", `[${n}]`);
    if (!url) link.href = `#research-citation-${n}`;
    link.className = "citation";
    link.title = source ? String(source.title) : "not among the sources";
    parent.append(link);
    at = match.index + match[0].length;
  }
  if (at < text.length) parent.append(document.createTextNode(text.slice(at)));
}

// The finished report as headings and paragraphs (headings from h4: the run's section is h2/h3).
function renderReport(target, report, sources) {
  const byNumber = new Map(sources.map((s) => [Number(s.n), s]));
  target.replaceChildren();
  let lines = [];
  const paragraph = () => {
    const text = lines.join("\n").trim();
    if (text) {
      const p = el("p");
      appendCited(p, text, byNumber);
      target.append(p);
    }
    lines = [];
  };
  for (const line of String(report).split("\n")) {
    const heading = /^(#{1,6})\s+(.*)$/.exec(line.trim());
    if (heading) {
      paragraph();
      const h = el(`h${Math.min(6, 3 + heading[1].length)}`);
      appendCited(h, heading[2].trim(), byNumber);
      target.append(h);
    } else if (!line.trim()) {
      paragraph();
    } else {
      lines.push(line);
    }
  }
  paragraph();
}

function renderCitations(list, sources) {
  list.replaceChildren();
  for (const source of [...sources].sort((a, b) => a.n - b.n)) {
    const item = el("li");
    item.id = `research-citation-${Number(source.n)}`;
    item.value = Number(source.n);
    const url = webUrl(source.url);
    item.append(url ? externalLink(url, source.title) : el("span", source.title));
    item.append(" ", el("code", source.id), " ");
    item.append(el("span", `${source.provider}, credibility ${credibilityText(source.credibility)}`, "hint"));
    list.append(item);
  }
}

class Run {
  constructor(root) {
    this.form = root.querySelector("#research-form");
    this.question = root.querySelector("#research-question");
    this.mode = root.querySelector("#research-mode");
    // On a conversation's page: the follow-up continues that conversation.
    this.conversationField = root.querySelector("#research-conversation-id");
    this.ask = root.querySelector("#research-ask");
    this.cancel = root.querySelector("#research-cancel");
    this.status = root.querySelector("#research-status");
    this.section = root.querySelector("#research-run");
    this.plan = root.querySelector("#research-plan");
    this.progress = root.querySelector("#research-progress");
    this.sources = root.querySelector("#research-sources tbody");
    this.critique = root.querySelector("#research-critique");
    this.report = root.querySelector("#research-report");
    this.citations = root.querySelector("#research-citations");
    this.conversation = root.querySelector("#research-conversation");
    this.socket = null;
    this.runId = null;
    this.conversationId = null;
    this.finished = true;
  }

  bind() {
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.start();
    });
    this.cancel.addEventListener("click", () => this.requestCancel());
    this.ask.disabled = false;
    this.question.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        this.form.requestSubmit();
      }
    });
  }

  say(text) {
    this.status.textContent = text;
  }

  reset() {
    for (const node of [this.plan, this.progress, this.sources, this.critique, this.report, this.citations, this.conversation]) {
      node.replaceChildren();
    }
    this.section.hidden = false;
    this.runId = null;
    this.conversationId = null;
  }

  start() {
    const message = this.question.value.trim();
    if (!message) {
      this.say("Write a question first.");
      this.question.focus();
      return;
    }
    if (!this.finished) return;
    this.reset();
    this.finished = false;
    this.ask.disabled = true;
    this.say("Connecting to the research service…");
    const socket = new WebSocket(socketUrl("/ws/research"), ["bastion.v1"]);
    this.socket = socket;
    socket.addEventListener("open", () => {
      const request = { message, mode: this.mode.value };
      if (this.conversationField) request.conversation_id = this.conversationField.value;
      socket.send(JSON.stringify(request));
      this.say("Question sent: waiting for the run to start…");
    });
    socket.addEventListener("message", (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch (_err) {
        return;
      }
      if (data && typeof data === "object") this.handle(data);
    });
    socket.addEventListener("close", (event) => this.closed(event));
  }

  handle(event) {
    switch (event.type) {
      case "conversation":
        this.runId = String(event.id);
        this.conversationId = String(event.conversation_id);
        this.cancel.disabled = false;
        this.say("The run has started.");
        break;
      case "progress":
        this.progress.append(el("li", event.message));
        this.say(String(event.message));
        break;
      case "plan":
        this.addPlan(event);
        break;
      case "source":
        this.addSource(event);
        break;
      case "critique":
        this.addCritique(event);
        break;
      case "text":
        this.report.setAttribute("aria-busy", "true");
        this.report.classList.add("streaming");
        this.report.append(document.createTextNode(String(event.text)));
        break;
      case "done":
        this.done(event.result || {});
        break;
      case "error":
        this.end(`The run failed: ${event.message}`);
        break;
      case "cancelled":
        this.end("The run was cancelled.");
        break;
      default:
        break; // ping, or a type this page does not show
    }
  }

  addPlan(event) {
    const item = el("li", `Round ${event.round}`);
    const list = el("ol");
    for (const question of event.sub_questions || []) list.append(el("li", question));
    item.append(list);
    this.plan.append(item);
    this.say(`Planned round ${event.round}: ${(event.sub_questions || []).length} sub-questions.`);
  }

  addSource(event) {
    const row = el("tr");
    const cell = el("td");
    const url = webUrl(event.url);
    cell.append(url ? externalLink(url, event.title) : el("span", event.title), " ", el("code", event.id));
    const score = Number(event.credibility);
    const credibility = el("td", credibilityText(score), `credibility credibility-${credibilityLabel(score)}`);
    if (Array.isArray(event.reasons) && event.reasons.length) credibility.title = event.reasons.join("; ");
    row.append(cell, el("td", event.provider), credibility, el("td", event.researcher));
    this.sources.append(row);
  }

  addCritique(event) {
    const item = el("li", `Round ${event.round}: `);
    item.append(el("strong", event.verdict));
    if (Array.isArray(event.reasons) && event.reasons.length) item.append(`: ${event.reasons.join("; ")}`);
    this.critique.append(item);
    this.say(`Critique of round ${event.round}: ${event.verdict}.`);
  }

  done(result) {
    const sources = Array.isArray(result.sources) ? result.sources : [];
    this.report.classList.remove("streaming");
    renderReport(this.report, result.report || "", sources);
    renderCitations(this.citations, sources);
    const conversation = result.conversation_id || this.conversationId;
    if (conversation) {
      const link = el("a", "Open this conversation");
      link.href = `/console/research/conversations/${encodeURIComponent(conversation)}`;
      this.conversation.replaceChildren(link);
    }
    this.end(`Done: the report cites ${sources.length} sources.`);
  }

  end(message) {
    this.finished = true;
    this.report.setAttribute("aria-busy", "false");
    this.cancel.disabled = true;
    this.ask.disabled = false;
    this.say(message);
  }

  closed(event) {
    this.socket = null;
    if (this.finished) return;
    const why = CLOSE_MESSAGES[event.code] || `The connection closed (${event.code}).`;
    this.end(event.reason && !CLOSE_MESSAGES[event.code] ? `${why} ${event.reason}` : why);
  }

  async requestCancel() {
    if (!this.runId || this.finished) return;
    this.cancel.disabled = true;
    this.say("Cancelling the run…");
    try {
      const res = await fetch(`/api/research/${encodeURIComponent(this.runId)}/cancel`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrfToken() },
      });
      if (!res.ok) {
        this.cancel.disabled = this.finished;
        this.say(`Cancelling failed (${res.status}): try again.`);
      }
    } catch (_err) {
      this.cancel.disabled = this.finished;
      this.say("Cancelling failed: the gateway cannot be reached.");
    }
  }
}

export function start(root) {
  if (!root || !root.querySelector("#research-form")) return; // asking is not granted
  new Run(root).bind();
}
