// The field pages' service worker: pages and their assets are fetched from the network when there is
// one (and kept), and served from this cache when there is none, so a checklist opens with no network.
// API calls are never cached: answers wait in IndexedDB (checklist.js) until they can be sent.
"use strict";
const CACHE = "afm-field-v1";
const ASSETS = [
  "/static/css/afm.css", "/static/js/checklist.js", "/static/js/field.js", "/static/vendor/htmx-2.0.11.min.js",
  "/static/favicon.svg",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(ASSETS)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("afm-field-") && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  const cacheable = url.pathname.startsWith("/field/") || url.pathname.startsWith("/static/");
  if (!cacheable || url.pathname === "/field/sw.js") return;
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok && !response.redirected) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(request, copy));
        }
        return response;
      })
      .catch(() =>
        caches.match(request, { ignoreVary: true }).then((hit) => hit || (request.mode === "navigate" ? offlinePage() : Response.error())),
      ),
  );
});

function offlinePage() {
  const body = "<!doctype html><meta charset=utf-8><title>Offline</title><p>This page was not opened before the network went away, so it is not on this device.</p>";
  return new Response(body, { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } });
}
