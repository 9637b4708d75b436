// The service worker: the offline shell, and a wake-up on push. A push carries no prompt (the
// service sends only an opaque wake-up), so nothing of its payload is read or shown.

// The project's tsconfig checks every file with the DOM library; the few service-worker types
// used here are declared instead of pulling in lib.webworker (which clashes with DOM).
export {};
interface ExtendableEvent extends Event {
  waitUntil(p: Promise<unknown>): void;
}
interface FetchEvent extends ExtendableEvent {
  readonly request: Request;
  respondWith(r: Promise<Response> | Response): void;
}
interface SwClient {
  readonly url: string;
  postMessage(message: unknown): void;
  focus(): Promise<unknown>;
}
interface SwEvents {
  install: ExtendableEvent;
  activate: ExtendableEvent;
  fetch: FetchEvent;
  push: ExtendableEvent;
  notificationclick: ExtendableEvent & { readonly notification: Notification };
}
declare const self: {
  readonly location: Location;
  readonly registration: ServiceWorkerRegistration;
  readonly clients: {
    matchAll(o: { type: "window"; includeUncontrolled: boolean }): Promise<readonly SwClient[]>;
    openWindow(url: string): Promise<unknown>;
    claim(): Promise<void>;
  };
  skipWaiting(): Promise<void>;
  addEventListener<K extends keyof SwEvents>(type: K, listener: (ev: SwEvents[K]) => void): void;
};
declare const __PRECACHE__: string[]; // filled in by build.mjs
declare const __VERSION__: string;

const CACHE = `keystead-app-${__VERSION__}`;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((c) => c.addAll(__PRECACHE__))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("keystead-app-") && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  // Only the app's own files come from the cache; the API always goes to the network.
  if (req.method !== "GET" || url.origin !== self.location.origin || !url.pathname.startsWith(new URL("./", self.location.href).pathname)) return;
  const isPage = req.mode === "navigate";
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      if (isPage) {
        // The shell: network first (a new build shows at once), the cached copy offline.
        try {
          return await fetch(req);
        } catch {
          return (await cache.match("./index.html")) ?? (await cache.match("./")) ?? Response.error();
        }
      }
      return (await cache.match(req)) ?? fetch(req);
    })(),
  );
});

self.addEventListener("push", (event) => {
  event.waitUntil(
    (async () => {
      const clients = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      for (const c of clients) c.postMessage({ type: "wake" });
      await self.registration.showNotification("Keystead: a request is waiting", {
        body: "Open Keystead to see it.",
        tag: "keystead-wake",
        icon: "./icons/icon-192.png",
      });
    })(),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(
    (async () => {
      const scope = new URL("./", self.location.href).href;
      const clients = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      for (const c of clients) {
        if (c.url.startsWith(scope)) {
          c.postMessage({ type: "wake" });
          await c.focus();
          return;
        }
      }
      await self.clients.openWindow(scope);
    })(),
  );
});
