/* MelaScan service worker: caches the static shell only (CSS, JS, icons, offline page)
   so the app installs and opens offline. Pages, analyses, images and the API are never
   cached: they are personal and always come from the network. */
var VERSION = "melascan-shell-v2";
var SHELL = [
  "/static/css/app.css",
  "/static/fonts/melascan-hangul.woff",
  "/static/fonts/melascan-hangul-bold.woff",
  "/static/js/app.js",
  "/static/icons/logo.svg",
  "/static/icons/icon-192.png",
  "/static/icons/icon-512.png",
  "/static/offline.html",
  "/manifest.webmanifest"
];

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(VERSION).then(function (cache) { return cache.addAll(SHELL); }));
  self.skipWaiting();
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k !== VERSION; }).map(function (k) { return caches.delete(k); }));
  }));
  self.clients.claim();
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.indexOf("/static/") === 0 || url.pathname === "/manifest.webmanifest") {
    // Static shell: cache first (the ?v= query changes with each release).
    event.respondWith(caches.match(request, { ignoreSearch: true }).then(function (hit) {
      return hit || fetch(request);
    }));
    return;
  }
  if (request.mode === "navigate") {
    // Pages: always the network; the offline page only when there is none.
    event.respondWith(fetch(request).catch(function () { return caches.match("/static/offline.html"); }));
  }
  // Everything else (API, result images, reports): straight to the network, never cached.
});
