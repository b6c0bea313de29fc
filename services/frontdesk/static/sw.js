// Service worker: keeps the app shell so the desk opens without a network. API calls always go
// to the network (reports wait in the page's IndexedDB queue, never in this cache).
"use strict";
const CACHE = "frontdesk-v1";
const SHELL = ["/", "/static/app.css", "/static/app.js", "/static/i18n.js"];

self.addEventListener("install", (ev) => {
  ev.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (ev) => {
  ev.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});
self.addEventListener("fetch", (ev) => {
  const url = new URL(ev.request.url);
  if (ev.request.method !== "GET" || url.origin !== location.origin || !SHELL.includes(url.pathname)) return;
  // Network first (updates arrive at once), the cached shell when offline.
  ev.respondWith(fetch(ev.request)
    .then((r) => { const copy = r.clone(); caches.open(CACHE).then((c) => c.put(ev.request, copy)); return r; })
    .catch(() => caches.match(ev.request)));
});
