// Keystead passwords: fill a login form in this frame, for this frame's origin.
//
// Runs in every frame but acts only where the frame's origin equals the top
// origin (and every ancestor's): a cross-origin iframe is never filled. The
// background checks the same thing again from the sender it is given.
"use strict";

(() => {
  // keystead:frame-guard-start
  let topOrigin;
  try {
    topOrigin = window.top.location.origin;
  } catch (e) {
    return; // an ancestor is cross-origin
  }
  if (topOrigin !== location.origin) return;
  if (location.ancestorOrigins) {
    for (const ancestor of location.ancestorOrigins) {
      if (ancestor !== location.origin) return;
    }
  }
  // keystead:frame-guard-end
  if (location.protocol !== "http:" && location.protocol !== "https:") return;

  const USER_TYPES = ["text", "email", "tel", ""];
  let asked = false;

  function usable(input) {
    return !input.disabled && !input.readOnly;
  }

  function findLogin() {
    const password = Array.from(document.querySelectorAll('input[type="password"]')).find(usable);
    if (!password) return null;
    const scope = password.form || document;
    const inputs = Array.from(scope.querySelectorAll("input"));
    let user = null;
    for (let i = inputs.indexOf(password) - 1; i >= 0; i--) {
      const type = (inputs[i].getAttribute("type") || "").toLowerCase();
      if (USER_TYPES.includes(type) && usable(inputs[i])) {
        user = inputs[i];
        break;
      }
    }
    return { user, password };
  }

  function setValue(input, value) {
    const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set;
    setter.call(input, value);
    input.dispatchEvent(new Event("input", { bubbles: true }));
    input.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function tryFill() {
    if (asked || !findLogin()) return;
    asked = true;
    chrome.runtime.sendMessage({ type: "keystead-lookup" }, (reply) => {
      if (chrome.runtime.lastError || !reply || reply.origin !== location.origin) return;
      if (!Array.isArray(reply.credentials) || reply.credentials.length === 0) return;
      const login = findLogin();
      if (!login) return;
      const first = reply.credentials[0];
      if (login.user) setValue(login.user, String(first.username));
      setValue(login.password, String(first.password));
    });
  }

  tryFill();
  if (!asked) {
    const observer = new MutationObserver(() => {
      tryFill();
      if (asked) observer.disconnect();
    });
    observer.observe(document.documentElement, { childList: true, subtree: true });
  }
})();
