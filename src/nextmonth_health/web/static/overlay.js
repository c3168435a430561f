/* nextmonth-health: a calm notice for this page's area, and the page-load beacon.
 * <script src="/health/static/overlay.js" data-area="uploads" defer></script>
 * data-area (or <body data-health-area>), data-poll (seconds, default 20), data-site,
 * data-beacon="off". Text only via textContent; no inline styles (strict CSP is fine). */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__nmhOverlay) return;
  window.__nmhOverlay = true;

  var data = script.dataset;
  var base = data.prefix || script.src.replace(/\/static\/overlay\.js(?:[?#].*)?$/, "");
  var site = data.site ? "site=" + encodeURIComponent(data.site) : "";
  var every = Math.max(0.2, parseFloat(data.poll) || 20) * 1000;
  var MAX_DELAY = 300000;
  var sameOrigin = base.indexOf(location.origin + "/") === 0 || base.charAt(0) === "/";
  var reduced = window.matchMedia && matchMedia("(prefers-reduced-motion: reduce)");

  var area, root, card, title, message, shown, etag, timer, delay = every, paused = false;

  function store(kind) {
    try { var s = window[kind]; s.setItem("nmh-probe", "1"); s.removeItem("nmh-probe"); return s; }
    catch (e) { return null; }
  }
  var local = store("localStorage"), session = store("sessionStorage");

  function sessionId() {
    var id = local && local.getItem("nmh-session");
    if (!id || !/^[A-Za-z0-9_-]{8,64}$/.test(id)) {
      id = Array.prototype.map.call(crypto.getRandomValues(new Uint8Array(16)), function (b) {
        return (b + 256).toString(16).slice(1);
      }).join("");
      if (local) local.setItem("nmh-session", id);
    }
    return id;
  }

  function dismissed() {
    try { return JSON.parse((session && session.getItem("nmh-dismissed")) || "[]"); } catch (e) { return []; }
  }

  function el(tag, cls, parent) {
    var node = document.createElement(tag);
    node.className = cls;
    if (parent) parent.appendChild(node);
    return node;
  }

  function build() {
    root = el("div", "nmh-overlay");
    root.setAttribute("role", "status");
    root.setAttribute("aria-live", "polite");
    root.setAttribute("aria-atomic", "true");
    el("div", "nmh-veil", root).setAttribute("aria-hidden", "true");
    card = el("div", "nmh-card", root);
    el("span", "nmh-glow", card).setAttribute("aria-hidden", "true");
    var text = el("div", "nmh-text", card);
    title = el("p", "nmh-title", text);
    message = el("p", "nmh-message", text);
    var close = el("button", "nmh-dismiss", card);
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss this notice");
    close.textContent = "\u00d7";
    close.addEventListener("click", function () {
      if (!shown) return;
      var list = dismissed();
      list.push(shown);
      if (session) session.setItem("nmh-dismissed", JSON.stringify(list.slice(-20)));
      hide();
    });
    document.body.appendChild(root);
  }

  function show(n) {
    var key = n.title + "\n" + n.message;
    if (dismissed().indexOf(key) >= 0) { hide(); return; }
    if (key === shown) return;
    shown = key;
    title.textContent = String(n.title || "");
    message.textContent = String(n.message || "");
    card.className = "nmh-card nmh-" + (n.kind === "maintenance" ? "maintenance" : n.severity === "critical" ? "critical" : "degraded");
    root.classList.add("nmh-present");
    requestAnimationFrame(function () { requestAnimationFrame(function () { root.classList.add("nmh-shown"); }); });
  }

  function hide() {
    if (!shown) return;
    shown = null;
    root.classList.remove("nmh-shown");
    setTimeout(function () {
      if (shown) return;
      root.classList.remove("nmh-present");
      title.textContent = message.textContent = "";
    }, reduced && reduced.matches ? 0 : 700);
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(poll, ms * (0.9 + Math.random() * 0.2));
  }

  function poll() {
    if (document.hidden) { paused = true; return; }
    var headers = {};
    if (etag && sameOrigin) headers["If-None-Match"] = etag;
    fetch(base + "/notices?area=" + encodeURIComponent(area) + (site ? "&" + site : ""), {
      headers: headers, cache: "no-store", credentials: "same-origin"
    }).then(function (r) {
      if (r.status === 304) return null;
      if (!r.ok) throw new Error("notices " + r.status);
      etag = r.headers.get("ETag");
      return r.json();
    }).then(function (body) {
      if (body) {
        var list = body.notices || [];
        if (list.length) show(list[0]); else hide();
      }
      delay = every;
      schedule(delay);
    }, function () {
      delay = Math.min(delay * 2, MAX_DELAY);
      schedule(delay);
    });
  }

  function beacon() {
    if (data.beacon === "off" || !window.performance || !performance.getEntriesByType) return;
    var nav = performance.getEntriesByType("navigation")[0];
    if (!nav || !(nav.loadEventEnd > 0)) return;
    var seconds = Math.round(nav.loadEventEnd - nav.startTime) / 1000;
    if (!(seconds > 0 && seconds <= 600)) return;
    var body = JSON.stringify({ page: location.pathname.slice(0, 200), seconds: seconds, session: sessionId() });
    var url = base + "/beacon" + (site ? "?" + site : "");
    if (navigator.sendBeacon && navigator.sendBeacon(url, body)) return;
    fetch(url, { method: "POST", body: body, keepalive: true, headers: { "Content-Type": "text/plain" } });
  }

  function start() {
    area = data.area || document.body.getAttribute("data-health-area");
    if (area) {
      var link = document.createElement("link");
      link.rel = "stylesheet";
      link.href = base + "/static/overlay.css";
      link.onload = function () { build(); poll(); };
      document.head.appendChild(link);
      document.addEventListener("visibilitychange", function () {
        if (!document.hidden && paused) { paused = false; delay = every; poll(); }
      });
    }
    if (document.readyState === "complete") setTimeout(beacon, 0);
    else window.addEventListener("load", function () { setTimeout(beacon, 0); });
  }

  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
})();
