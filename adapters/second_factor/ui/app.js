// Keystead confirmation page. Renders with textContent only: prompt text comes
// from relying parties and must never become markup.
"use strict";

// The token reaches the person only through the terminal, in this page's fragment
// (#t=TOKEN: never sent to a server). Keep it for this tab, then drop it from the address.
const TOKEN = (() => {
  const match = /^#t=([A-Za-z0-9_-]+)$/.exec(window.location.hash);
  if (match) {
    sessionStorage.setItem("keystead-token", match[1]);
    history.replaceState(null, "", window.location.pathname);
  }
  return sessionStorage.getItem("keystead-token") || "";
})();
const list = document.getElementById("prompts");
const statusLine = document.getElementById("status");
const emptyLine = document.getElementById("empty");
const cards = new Map(); // request id -> {card, expires}
let serverOffset = 0; // server unix time minus browser unix time, in seconds

async function api(method, path, body) {
  const init = { method, headers: { "X-Keystead-Token": TOKEN } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const data = await response.json();
  if (!response.ok) throw new Error(data.message || ("HTTP " + response.status));
  return data;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function secondsLeft(expires) {
  return Math.max(0, Math.round(expires - (Date.now() / 1000 + serverOffset)));
}

function buildCard(p) {
  const card = el("article", "prompt");
  card.dataset.id = p.id;
  card.append(el("h2", "rp", p.rp), el("p", "message", p.message));
  const expiry = el("p", "expiry");
  card.append(expiry);
  const approve = el("button", "approve", "Approve");
  approve.type = "button";
  let picked = null;
  if (p.choices.length > 0) {
    const fieldset = el("fieldset", "choices");
    fieldset.append(el("legend", "", "Pick the number shown by " + p.rp));
    for (const n of p.choices) {
      const label = el("label");
      const radio = el("input");
      radio.type = "radio";
      radio.name = "number-" + p.id;
      radio.value = String(n);
      radio.addEventListener("change", () => { picked = n; approve.disabled = false; });
      label.append(radio, document.createTextNode(" " + n));
      fieldset.append(label);
    }
    card.append(fieldset);
    approve.disabled = true;
  }
  const deny = el("button", "deny", "Deny");
  deny.type = "button";
  const report = el("button", "report", "Deny and report as not me");
  report.type = "button";
  const actions = el("div", "actions");
  actions.append(approve, deny, report);
  card.append(actions);

  const act = async (path, body, done) => {
    for (const b of actions.querySelectorAll("button")) b.disabled = true;
    try {
      await api("POST", "/api/prompts/" + encodeURIComponent(p.id) + path, body);
      statusLine.textContent = done + ": " + p.rp;
      card.remove();
      cards.delete(p.id);
      updateEmpty();
    } catch (e) {
      statusLine.textContent = "Could not answer: " + e.message;
      deny.disabled = false; report.disabled = false;
      approve.disabled = p.choices.length > 0 && picked === null;
    }
  };
  approve.addEventListener("click", () => act("/approve", { number: picked }, "Approved"));
  deny.addEventListener("click", () => act("/deny", { report: false }, "Denied"));
  report.addEventListener("click", () => act("/deny", { report: true }, "Denied and reported"));
  return { card, expiry, expires: p.expires };
}

function updateEmpty() { emptyLine.hidden = cards.size > 0; }

function tick() {
  for (const entry of cards.values()) {
    entry.expiry.textContent = "Expires in " + secondsLeft(entry.expires) + " s";
  }
}

async function refresh() {
  try {
    const data = await api("GET", "/api/pending");
    serverOffset = data.now - Date.now() / 1000;
    const seen = new Set();
    for (const p of data.prompts) {
      seen.add(p.id);
      if (!cards.has(p.id)) {
        const entry = buildCard(p);
        cards.set(p.id, entry);
        list.append(entry.card);
      }
    }
    for (const [id, entry] of cards) {
      if (!seen.has(id)) { entry.card.remove(); cards.delete(id); }
    }
    updateEmpty();
    tick();
  } catch (e) {
    statusLine.textContent = "Cannot reach Keystead: " + e.message;
  }
}

refresh();
setInterval(refresh, 2000);
setInterval(tick, 1000);
