// The phone app: join, unlock, prompts, TOTP codes, passwords, and the removed screen.

import {
  type Invite,
  type Prompt,
  DEFAULT_REMEMBER_SECONDS,
  PhoneDevice,
  browserPrf,
  configureUmbral,
  parseInvite,
  rememberedKind,
} from "../protocol/device.js";
import { umbralReady } from "../protocol/umbral.js";
import { codeOf, describe, fill, h } from "./dom.js";
import { PromptFeed } from "./feed.js";
import { pushAvailable, registerWorker, subscribePush } from "./push.js";
import { passwordsView, totpView } from "./vault.js";

const app = document.getElementById("app")!;
let feed: PromptFeed | null = null;
let stopTab: () => void = () => {};

/** The one place errors are shown: visible, announced, and never stored. */
const errorBox = (): HTMLElement => h("p", { class: "error", role: "alert", hidden: true });
function showError(box: HTMLElement, err: unknown): void {
  box.textContent = describe(err);
  box.hidden = false;
}

function screen(name: string, title: string, ...body: (Node | null)[]): void {
  stopTab();
  stopTab = () => {};
  document.body.dataset["screen"] = name;
  document.title = `Keystead — ${title}`;
  fill(app, h("h1", {}, title), ...body);
}

function field(label: string, input: HTMLInputElement): HTMLElement {
  return h("label", { class: "field" }, h("span", {}, label), input);
}

// --------------------------------------------------------------------- remembered unlock

/** "Keep unlocked on this phone": how long a typed passphrase spares the next ones (docs/PHONE.md
 * section 7). The select's value is seconds; 0 asks the passphrase at every start. */
function keepField(): { el: HTMLElement; seconds: () => number } {
  const day = 86400;
  const select = h(
    "select",
    { name: "keep", "aria-label": "Keep unlocked on this phone" },
    h("option", { value: String(day) }, "for 1 day"),
    h("option", { value: String(DEFAULT_REMEMBER_SECONDS), selected: true }, "for 7 days"),
    h("option", { value: String(30 * day) }, "for 30 days"),
    h("option", { value: "0" }, "no: ask at every start"),
  );
  const el = h("label", { class: "field" }, h("span", {}, "Keep unlocked on this phone"), select);
  return { el, seconds: () => Number(select.value) };
}

const prfFor = (device: PhoneDevice | null): ReturnType<typeof browserPrf> =>
  browserPrf({ rpId: location.hostname, name: device ? `${device.name} · ${device.account}` : "Keystead" });

/** After the passphrase opened the keystore: keep its key wrapped (or forget it). A failure here
 * costs only the convenience: the passphrase is asked next time. */
async function keepUnlocked(device: PhoneDevice, seconds: number): Promise<void> {
  try {
    if (seconds > 0) await device.remember(seconds, await prfFor(device));
    else await PhoneDevice.lock();
  } catch {
    await PhoneDevice.lock().catch(() => {});
  }
}

/** Tabs of the app tell each other about "Lock now": every one drops its keys. */
const lockChannel = typeof BroadcastChannel === "function" ? new BroadcastChannel("keystead-lock") : null;
lockChannel?.addEventListener("message", () => location.replace(location.pathname));

function lockNow(): void {
  feed?.stop();
  feed = null;
  void PhoneDevice.lock().finally(() => {
    lockChannel?.postMessage("lock");
    location.replace(location.pathname); // a new page: the keys leave this one's memory
  });
}

function isRemoved(err: unknown): boolean {
  return codeOf(err) === "device_removed";
}

// ------------------------------------------------------------------------------------- join

function joinScreen(invite: Invite | null, note?: string): void {
  const err = errorBox();
  const account = h("input", { name: "account", required: true, autocapitalize: "none", autocomplete: "off" });
  const name = h("input", { name: "device", required: true, value: "phone", autocapitalize: "none" });
  const pass = h("input", { name: "passphrase", type: "password", required: true, autocomplete: "new-password", minlength: 8 });
  const again = h("input", { name: "again", type: "password", required: true, autocomplete: "new-password" });
  const keep = keepField();
  const submit = h("button", { type: "submit" }, "Join");
  const form = h(
    "form",
    { "aria-label": "Join an account" },
    invite
      ? h("p", {}, "Join account ", h("strong", {}, invite.account), " at ", h("strong", {}, invite.server))
      : h("div", {}, h("p", {}, "Join an account of ", h("strong", {}, location.origin)), field("Account", account)),
    invite?.fingerprint ? h("p", { class: "muted small" }, `Account key ${invite.fingerprint}`) : null,
    field("Device name", name),
    field("Passphrase", pass),
    field("Repeat passphrase", again),
    keep.el,
    err,
    submit,
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (pass.value !== again.value) return showError(err, new Error("The two passphrases differ."));
    // the app talks to the service that serves it, and only to it (docs/PHONE.md, its CSP)
    const inv: Invite = invite ?? { server: location.origin, account: account.value.trim() };
    submit.disabled = true;
    submit.textContent = "Creating this device's keys…";
    PhoneDevice.join(inv, name.value.trim(), pass.value).then(
      async ({ device, ticket }) => {
        pass.value = again.value = "";
        await keepUnlocked(device, keep.seconds());
        pairingScreen(device, ticket.code, ticket.verification);
      },
      (e: unknown) => {
        submit.disabled = false;
        submit.textContent = "Join";
        showError(err, e);
      },
    );
  });
  screen("join", "Add this phone", note ? h("p", { class: "muted" }, note) : null, form);
}

/** A button that erases this browser's device and starts again at the join screen. */
function startOver(device: PhoneDevice | null, label = "Start over"): HTMLButtonElement {
  const b = h("button", { type: "button", class: "secondary" }, label);
  b.addEventListener("click", () => {
    b.disabled = true;
    void (device ? device.wipe() : PhoneDevice.wipe()).finally(() => location.replace(location.pathname));
  });
  return b;
}

/** `verification` is null when the app was reopened during pairing (the number was shown then). */
function pairingScreen(device: PhoneDevice, code: string, verification: string | null): void {
  const err = errorBox();
  const state = h("p", { role: "status" }, "Waiting for approval…");
  screen(
    "pairing",
    "Approve this phone",
    h("p", {}, "On a device of the account that can approve (your computer), run:"),
    h("pre", {}, `keystead device approve ${code}`),
    h("p", {}, "Pairing code"),
    h("output", { class: "big", "aria-label": "Pairing code" }, code),
    verification ? h("p", {}, "Check that the computer shows this verification number:") : null,
    verification ? h("output", { class: "big", "aria-label": "Verification number" }, verification) : null,
    state,
    err,
  );
  const wait = async (): Promise<void> => {
    for (;;) {
      try {
        if ((await device.waitForApproval()) === "approved") break;
      } catch (e) {
        if (isRemoved(e)) return removedScreen(device);
        showError(err, e);
        const code = codeOf(e);
        if (code === "verification_failed" || code === "pairing_expired" || code === "pairing_refused") {
          state.textContent = "Pairing failed: this phone's new keys are not used.";
          state.after(startOver(device));
          return;
        }
        await new Promise((r) => setTimeout(r, 2000)); // the network: try again
      }
    }
    await home(device);
  };
  void wait();
}

// ----------------------------------------------------------------------------------- unlock

function opened(device: PhoneDevice): void {
  performance.mark("keystead:unlocked");
  const pending = device.pairing; // reopened before an admin approved it
  if (pending) pairingScreen(device, pending.code, null);
  else void home(device);
}

const REASONS: Record<string, string> = {
  expired: "Keystead asks for the passphrase again after the time chosen at the last unlock.",
  invalid: "The remembered unlock could not be used; type the passphrase.",
  cancelled: "The screen lock was not confirmed; type the passphrase or try the screen lock again.",
};

function unlockScreen(note?: string, withScreenLock = false): void {
  const err = errorBox();
  const pass = h("input", { name: "passphrase", type: "password", required: true, autocomplete: "current-password" });
  const keep = keepField();
  const submit = h("button", { type: "submit" }, "Unlock");
  const form = h("form", { "aria-label": "Unlock" }, field("Passphrase", pass), keep.el, err, submit);
  const screenLock = withScreenLock ? h("button", { type: "button", class: "secondary" }, "Unlock with the screen lock") : null;
  screenLock?.addEventListener("click", () => {
    screenLock.disabled = true;
    performance.mark("keystead:unlock");
    void (async () => {
      const got = await PhoneDevice.unlockRemembered({ prf: await prfFor(null) });
      if (got.device) return opened(got.device);
      screenLock.disabled = false;
      if (got.reason !== "cancelled") screenLock.remove();
      showError(err, new Error(REASONS[got.reason] ?? "Type the passphrase."));
    })().catch((e: unknown) => showError(err, e));
  });
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    submit.textContent = "Unlocking…";
    performance.mark("keystead:unlock");
    PhoneDevice.unlock(pass.value).then(
      async (device) => {
        pass.value = "";
        await keepUnlocked(device, keep.seconds());
        opened(device);
      },
      (e: unknown) => {
        submit.disabled = false;
        submit.textContent = "Unlock";
        pass.select();
        showError(err, e);
      },
    );
  });
  screen("unlock", "Unlock Keystead", note ? h("p", { class: "muted" }, note) : null, screenLock, form);
  pass.focus();
}

// ---------------------------------------------------------------------------------- removed

let removed = false;

function removedScreen(device: PhoneDevice): void {
  if (removed) return; // the feed and an open tab may both find out
  removed = true;
  feed?.stop();
  feed = null;
  const state = h("p", { role: "status" }, "Erasing this phone's keys…");
  screen(
    "removed",
    "This phone was removed",
    h("p", {}, `This device (${device.name}) was removed from the account ${device.account}. It can no longer read or answer anything.`),
    state,
  );
  device.wipe().then(
    () => {
      state.textContent = "Its keys and data were erased from this phone.";
      state.after(startOver(null, "Add this phone again"));
      document.body.dataset["wiped"] = "true";
    },
    (e: unknown) => (state.textContent = `Erasing failed: ${describe(e)}`),
  );
}

// ------------------------------------------------------------------------------------- home

type Tab = "prompts" | "codes" | "passwords";

async function home(device: PhoneDevice): Promise<void> {
  history.replaceState(null, "", location.pathname); // the invite's fragment is done with
  const err = errorBox();
  const status = h("p", { class: "status", role: "status", "aria-live": "polite", "aria-label": "Status" });
  const say = (m: string): void => void (status.textContent = m);
  const body = h("section", { class: "tab" });
  const tabs: Record<Tab, HTMLButtonElement> = {
    prompts: h("button", { type: "button" }, "Requests"),
    codes: h("button", { type: "button" }, "Codes"),
    passwords: h("button", { type: "button" }, "Passwords"),
  };
  const fatal = (e: unknown): boolean => {
    if (isRemoved(e)) {
      removedScreen(device);
      return true;
    }
    return false;
  };

  const promptList = h("ul", { class: "list", "aria-label": "Requests" });
  const connection = h("p", { class: "muted small", hidden: true });
  let rendered: string | null = null;
  const renderPrompts = (prompts: Prompt[]): void => {
    const key = prompts.map((p) => p.id).join();
    if (key === rendered) return;
    rendered = key;
    fill(
      promptList,
      ...(prompts.length
        ? prompts.map((p) => promptCard(device, p, err, say, fatal))
        : [h("li", { class: "muted empty" }, "No requests are waiting.")]),
    );
    if (!document.body.dataset["prompts"]) performance.mark("keystead:prompts-shown");
    document.body.dataset["prompts"] = String(prompts.length);
  };
  feed?.stop();
  feed = new PromptFeed(device, {
    change: renderPrompts,
    offline: (e) => {
      connection.hidden = e === null;
      connection.textContent = e === null ? "" : `Offline, reconnecting… (${describe(e)})`;
    },
    refused: (errs) => showError(err, new Error(`Refused and not shown: ${errs.map(describe).join("; ")}`)),
    fatal,
  });
  const expiry = setInterval(() => {
    if (feed?.loaded) renderPrompts(feed.list());
    for (const el of promptList.querySelectorAll<HTMLElement>("[data-expires]")) {
      el.textContent = expiresIn(Number(el.dataset["expires"]));
    }
  }, 1000);

  const show = (tab: Tab): void => {
    stopTab();
    stopTab = () => {};
    for (const [name, b] of Object.entries(tabs)) b.setAttribute("aria-current", String(name === tab));
    err.hidden = true;
    if (!/clears? in 30 s|copied/.test(status.textContent ?? "")) status.textContent = "";
    if (tab === "prompts") {
      const notify = pushAvailable() && Notification.permission === "default"
        ? h("button", { type: "button", class: "secondary" }, "Turn on notifications")
        : null;
      notify?.addEventListener("click", () => {
        void subscribePush(device, true).then((m) => {
          if (m) say(m);
          notify.remove();
        });
      });
      if (!feed?.loaded) fill(promptList, h("li", { class: "muted" }, "Loading…"));
      fill(body, h("h2", {}, "Requests"), connection, promptList, notify);
      return;
    }
    fill(body, h("h2", {}, tab === "codes" ? "Codes" : "Passwords"), h("p", { class: "muted" }, "Loading…"));
    let live = true;
    stopTab = () => void (live = false);
    void (async () => {
      try {
        // each read brings the chain and that collection up to date first
        if (tab === "codes") {
          const entries = await device.totp();
          if (!live) return;
          const title = h("h2", {}, "Codes");
          const holder = h("div");
          fill(body, title, holder);
          const stop = totpView(holder, entries, say);
          stopTab = () => {
            live = false;
            stop();
          };
        } else {
          const entries = await device.passwords();
          if (!live) return;
          const holder = h("div");
          fill(body, h("h2", {}, "Passwords"), holder);
          passwordsView(holder, entries, say);
        }
        if (device.offline) holderNote(body, "Offline: shown from this phone's last sync.");
        const refused = device.problems();
        if (refused.length) showError(err, new Error(`Refused and not shown: ${refused.map(describe).join("; ")}`));
      } catch (e) {
        if (fatal(e) || !live) return;
        showError(err, e);
        fill(body, h("h2", {}, tab === "codes" ? "Codes" : "Passwords"), h("p", { class: "muted" }, "Nothing is shown: see the error above."));
      }
    })();
  };
  for (const [name, b] of Object.entries(tabs)) b.addEventListener("click", () => show(name as Tab));

  const lock = h("button", { type: "button", class: "secondary" }, "Lock now");
  lock.addEventListener("click", () => {
    lock.disabled = true;
    lockNow();
  });
  screen(
    "home",
    "Keystead",
    h("div", { class: "bar" }, h("p", { class: "muted small" }, `${device.name} · ${device.account}`), lock),
    h("nav", { "aria-label": "Sections" }, tabs.prompts, tabs.codes, tabs.passwords),
    err,
    status,
    body,
  );
  const stopExpiry = (): void => clearInterval(expiry);
  window.addEventListener("pagehide", stopExpiry, { once: true });
  show("prompts");
  feed.start();
  void subscribePush(device, false).then((m) => m && say(m));
}

function expiresIn(expires: number): string {
  const left = Math.max(0, Math.round(expires - Date.now() / 1000));
  return `Expires in ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
}

function holderNote(body: HTMLElement, text: string): void {
  body.querySelector("h2")?.after(h("p", { class: "muted small", role: "note" }, text));
}

function promptCard(
  device: PhoneDevice,
  p: Prompt,
  err: HTMLElement,
  say: (m: string) => void,
  fatal: (e: unknown) => boolean,
): HTMLElement {
  const buttons: HTMLButtonElement[] = [];
  const act = (decision: "approve" | "deny" | "report", n?: number): void => {
    for (const b of buttons) b.disabled = true;
    device.answer(p, decision, n).then(
      () => {
        feed?.settle(p.id);
        say(decision === "approve" ? `Approved: ${p.rp}` : decision === "deny" ? `Denied: ${p.rp}` : `Reported: ${p.rp}`);
      },
      (e: unknown) => {
        if (fatal(e)) return;
        showError(err, e);
        if (p.expires <= Date.now() / 1000) feed?.settle(p.id);
        else for (const b of buttons) b.disabled = false;
      },
    );
  };
  const button = (label: string, cls: string, aria: string, onClick: () => void): HTMLButtonElement => {
    const b = h("button", { type: "button", class: cls, "aria-label": aria }, label);
    b.addEventListener("click", onClick);
    buttons.push(b);
    return b;
  };
  const choices = p.numbers
    ? h(
        "div",
        { class: "numbers", role: "group", "aria-label": "Pick the number shown where you started" },
        ...[...p.numbers].sort((a, b) => a - b).map((n) => button(String(n), "number", `Approve with ${n}`, () => act("approve", n))),
      )
    : button("Approve", "approve", "Approve", () => act("approve"));
  return h(
    "li",
    { class: "card prompt", "aria-label": `Request from ${p.rp}` },
    h("h3", {}, p.rp),
    h("p", { class: "message" }, p.message),
    h("p", { class: "muted small", "data-expires": p.expires }, expiresIn(p.expires)),
    p.numbers ? h("p", { class: "muted" }, "Tap the number shown where you started, to approve:") : null,
    choices,
    h(
      "div",
      { class: "row" },
      button("Deny", "deny", "Deny", () => act("deny")),
      button("This wasn't me", "report", "This wasn't me", () => act("report")),
    ),
  );
}

// ------------------------------------------------------------------------------------- boot

declare const __UMBRAL_WASM__: string; // the hashed file name, from build.mjs

async function boot(): Promise<void> {
  configureUmbral(() => new URL(`./${__UMBRAL_WASM__}`, import.meta.url));
  void umbralReady().catch(() => {}); // compile the WASM while the passphrase is typed
  void registerWorker(() => feed?.poke());
  // an invite link opened in a tab that already shows the app: start over with it
  window.addEventListener("hashchange", () => location.hash.includes("join=") && location.reload());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") feed?.poke();
  });
  const fragment = location.hash.replace(/^#/, "");
  let invite: Invite | null = null;
  let note: string | undefined;
  if (fragment.includes("join=")) {
    try {
      invite = parseInvite(fragment, location.origin);
    } catch (e) {
      note = `The invitation link is not valid (${describe(e)}); type the account instead.`;
    }
  }
  if (await PhoneDevice.exists()) {
    history.replaceState(null, "", location.pathname);
    const already = invite ? "This phone is already a device of an account; unlock it." : undefined;
    const kind = await rememberedKind();
    if (kind === "key") {
      // the remembered unlock: no passphrase, no scrypt (docs/PHONE.md section 7)
      performance.mark("keystead:unlock");
      try {
        const got = await PhoneDevice.unlockRemembered();
        if (got.device) return opened(got.device);
        return unlockScreen(already ?? REASONS[got.reason]);
      } catch (e) {
        return unlockScreen(describe(e)); // the stored chain did not verify: the passphrase says the same
      }
    }
    // guarded by the screen lock too: asked on a tap (browsers want a gesture for WebAuthn)
    unlockScreen(already, kind === "prf");
  } else {
    joinScreen(invite, note);
  }
}

boot().catch((e: unknown) => {
  const err = errorBox();
  screen("error", "Keystead could not start", err);
  showError(err, e);
});
