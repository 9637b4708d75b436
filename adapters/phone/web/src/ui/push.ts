// The service worker and Web Push. Both are optional: without them the app still works while
// it is open (the long poll); nothing here may stop it.

export async function registerWorker(onWake: () => void): Promise<ServiceWorkerRegistration | null> {
  if (!("serviceWorker" in navigator)) return null;
  navigator.serviceWorker.addEventListener("message", (ev: MessageEvent) => {
    if ((ev.data as { type?: unknown } | null)?.type === "wake") onWake();
  });
  try {
    return await navigator.serviceWorker.register("./sw.js", { scope: "./" });
  } catch (err) {
    console.info("service worker not registered:", err);
    return null;
  }
}

function b64urlToBytes(s: string): Uint8Array<ArrayBuffer> {
  const b = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
  return out;
}

/** Whether asking for notification permission makes sense here. */
export function pushAvailable(): boolean {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

/**
 * Subscribe to Web Push with the service's VAPID key and hand the subscription to the device.
 * `ask` requests the permission (needs a tap); otherwise it only subscribes if already granted.
 * Returns a short status for the person, or null when there is nothing worth saying.
 */
export async function subscribePush(
  device: { subscribePush(sub: PushSubscriptionJSON): Promise<void> },
  ask: boolean,
): Promise<string | null> {
  if (!pushAvailable()) return null;
  try {
    if (Notification.permission !== "granted") {
      if (!ask || (await Notification.requestPermission()) !== "granted") return null;
    }
    const reg = await navigator.serviceWorker.ready;
    const res = await fetch(new URL("/v1/push/key", location.origin), { headers: { "Keystead-Protocol": "2" } });
    if (!res.ok) return null;
    const body = (await res.json()) as { vapid_public_key?: unknown }; // docs/PHONE.md §1
    const key = body.vapid_public_key;
    if (typeof key !== "string") return null;
    const sub =
      (await reg.pushManager.getSubscription()) ??
      (await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64urlToBytes(key) }));
    await device.subscribePush(sub.toJSON());
    return "Notifications are on.";
  } catch (err) {
    console.info("push not available:", err);
    return ask ? "Notifications are not available in this browser; keep the app open to see requests." : null;
  }
}
