// Keystead passwords: ask the native host for the sending frame's own origin.
//
// The origin comes from the browser (sender), never from the message: a page
// cannot ask for another site's passwords. A frame whose origin differs from
// its tab's top-level origin gets nothing, even if its content script asks.
"use strict";

const HOST = "org.keystead.passwords";
const PROTOCOL_VERSION = 1;

function originOf(url) {
  try {
    const origin = new URL(url).origin;
    return /^https?:\/\//.test(origin) ? origin : null;
  } catch (e) {
    return null;
  }
}

function senderOrigin(sender) {
  if (typeof sender.origin === "string") {
    return /^https?:\/\//.test(sender.origin) ? sender.origin : null;
  }
  return sender.url ? originOf(sender.url) : null;
}

chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
  if (!message || message.type !== "keystead-lookup" || sender.id !== chrome.runtime.id) {
    return false;
  }
  const origin = senderOrigin(sender);
  const top = sender.tab && sender.tab.url ? originOf(sender.tab.url) : null;
  if (!origin || !top || origin !== top) {
    sendResponse({ credentials: [] });
    return false;
  }
  chrome.runtime.sendNativeMessage(
    HOST,
    { v: PROTOCOL_VERSION, type: "lookup", origin: origin },
    (reply) => {
      if (
        chrome.runtime.lastError ||
        !reply ||
        reply.type !== "credentials" ||
        reply.origin !== origin ||
        !Array.isArray(reply.credentials)
      ) {
        sendResponse({ credentials: [] });
        return;
      }
      sendResponse({ origin: origin, credentials: reply.credentials });
    }
  );
  return true; // answer asynchronously
});
