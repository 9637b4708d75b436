// TOTP codes and passwords: read-only views with copy buttons.

import type { PasswordEntry, TotpEntry } from "../protocol/device.js";
import { fill, h } from "./dom.js";

export const CLIPBOARD_CLEAR_MS = 30_000;
let clearTimer: ReturnType<typeof setTimeout> | undefined;

/** Copy `text`, then clear the clipboard 30 s later (unless something else was copied since). */
export async function copySecret(text: string, status: (msg: string) => void, what: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    status(`Could not copy the ${what}: this browser refused the clipboard.`);
    return;
  }
  status(`${what[0]!.toUpperCase()}${what.slice(1)} copied; the clipboard is cleared in 30 s.`);
  clearTimeout(clearTimer);
  clearTimer = setTimeout(() => {
    void navigator.clipboard.writeText("").then(
      () => status("Clipboard cleared."),
      () => status("Could not clear the clipboard."),
    );
  }, CLIPBOARD_CLEAR_MS);
}

/** The TOTP list; returns a function that stops its one-second timer. */
export function totpView(root: HTMLElement, entries: TotpEntry[], status: (m: string) => void): () => void {
  if (!entries.length) {
    fill(root, h("p", {}, "No TOTP codes yet. Add them on a computer with `keystead totp add`."));
    return () => {};
  }
  const rows = entries.map((e) => {
    const name = e.issuer ? `${e.issuer} (${e.label})` : e.label;
    const code = h("output", { class: "code", "aria-label": `Code for ${name}` });
    const left = h("span", { class: "left" });
    const bar = h("progress", { max: e.period, "aria-hidden": "true" });
    const copy = h("button", { type: "button", class: "secondary", "aria-label": `Copy code for ${name}` }, "Copy");
    copy.addEventListener("click", () => void copySecret(e.code(), status, "code"));
    const li = h("li", { class: "card totp" }, h("div", { class: "name" }, name), code, left, bar, copy);
    return { e, code, left, bar, li };
  });
  const tick = (): void => {
    const now = Date.now();
    for (const r of rows) {
      const remain = r.e.period - (Math.floor(now / 1000) % r.e.period);
      const c = r.e.code(now / 1000); // the library counts in seconds
      if (r.code.textContent !== c) r.code.textContent = c;
      r.left.textContent = `${remain} s`;
      r.bar.value = remain;
    }
  };
  tick();
  fill(root, h("ul", { class: "list", "aria-label": "TOTP codes" }, ...rows.map((r) => r.li)));
  const timer = setInterval(tick, 1000);
  return () => clearInterval(timer);
}

function matches(e: PasswordEntry, q: string): boolean {
  if (!q) return true;
  const hay = `${e.title}\n${e.url}\n${e.username}\n${e.notes}`.toLowerCase();
  return q.toLowerCase().split(/\s+/).every((w) => hay.includes(w));
}

export function passwordsView(root: HTMLElement, entries: PasswordEntry[], status: (m: string) => void): void {
  const list = h("ul", { class: "list", "aria-label": "Passwords" });
  const search = h("input", {
    type: "search",
    "aria-label": "Search passwords",
    placeholder: "Search",
    autocomplete: "off",
    autocapitalize: "none",
  });
  const render = (): void => {
    const shown = entries.filter((e) => matches(e, search.value.trim()));
    const items = shown.map((e) => {
      const secret = h("output", { class: "secret", "aria-label": `Password for ${e.title}` }, "••••••••");
      const reveal = h("button", { type: "button", class: "secondary", "aria-pressed": "false", "aria-label": `Show password for ${e.title}` }, "Show");
      reveal.addEventListener("click", () => {
        const on = reveal.getAttribute("aria-pressed") !== "true";
        reveal.setAttribute("aria-pressed", String(on));
        secret.textContent = on ? e.password : "••••••••";
        reveal.textContent = on ? "Hide" : "Show";
      });
      const copyPw = h("button", { type: "button", "aria-label": `Copy password for ${e.title}` }, "Copy password");
      copyPw.addEventListener("click", () => void copySecret(e.password, status, "password"));
      const copyUser = h("button", { type: "button", class: "secondary", "aria-label": `Copy username for ${e.title}` }, "Copy username");
      copyUser.addEventListener("click", () => void copySecret(e.username, status, "username"));
      return h(
        "li",
        { class: "card", "aria-label": e.title },
        h("div", { class: "name" }, e.title),
        e.username ? h("div", { class: "muted" }, e.username) : null,
        e.url ? h("div", { class: "muted small" }, e.url) : null,
        h("div", { class: "row" }, secret, reveal),
        h("div", { class: "row" }, copyPw, copyUser),
      );
    });
    fill(list, ...(items.length ? items : [h("li", { class: "muted" }, entries.length ? "Nothing matches." : "No passwords yet.")]));
  };
  search.addEventListener("input", render);
  render();
  fill(root, search, list);
}
