/* nextmonth-health admin pages: keep the page live without a reload.
 *
 * Every live page has <main id="live" data-live="<its JSON twin>" data-etag="…"
 * data-interval="<seconds>">. While the tab is visible this script asks the JSON twin
 * "anything new?" with If-None-Match: an unchanged page costs a bodiless 304. When the
 * answer changed, it fetches the page again and swaps the new <main> in (parsed with
 * DOMParser, so nothing in it runs), keeping the filter the person is typing in and
 * any form marked data-keep they have started filling in (the maintenance form).
 * It says how fresh the page is, in UTC like every time on these pages, and says so
 * plainly when the store is not answering or the session has ended.
 * A static file: it runs under the pages' CSP (script-src 'self', no inline code).
 */
(function () {
  "use strict";
  var main = document.getElementById("live");
  if (!main || !main.dataset.live || !window.fetch) return;

  var api = main.dataset.live;
  var etag = main.dataset.etag || "";
  var interval = Math.max(0.2, Number(main.dataset.interval) || 15) * 1000;
  var freshness = document.querySelector("[data-live-freshness]");
  var status = document.querySelector("[data-live-status]");
  var timer = null;
  var stopped = false;
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  /* "5 Jan, 09:05:12 UTC": the pages' one way of writing a moment, with seconds. */
  function utc(iso) {
    var d = new Date(iso);
    if (isNaN(d)) return "";
    return d.getUTCDate() + " " + MONTHS[d.getUTCMonth()] + ", " + pad(d.getUTCHours()) + ":" +
      pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds()) + " UTC";
  }

  function fresh(asOf) {
    if (!freshness) return;
    var time = document.createElement("time");
    if (asOf) time.setAttribute("datetime", asOf);
    time.textContent = asOf ? utc(asOf) : "just now";
    var every = interval < 10000 ? (interval / 1000).toFixed(1).replace(/\.0$/, "") : String(Math.round(interval / 1000));
    freshness.replaceChildren("Live · as of ", time, " · checks every " + every + " s");
    freshness.classList.remove("stale");
    document.documentElement.dataset.live = "fresh";
  }

  function say(text, stale) {
    if (status) status.textContent = text;
    if (stale && freshness) freshness.classList.add("stale");
    document.documentElement.dataset.live = stale ? "stale" : "fresh";
  }

  /* A form marked data-keep that the person has typed in is carried over as it is. */
  main.addEventListener("input", function (event) {
    var form = event.target.closest && event.target.closest("[data-keep]");
    if (form) form.dataset.touched = "1";
  });

  function swap(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var next = doc.getElementById("live");
    if (!next) throw new Error("unexpected page");
    var active = document.activeElement;
    var keep = active && main.contains(active) && active.id ? active.id : null;
    var touched = Array.prototype.slice.call(main.querySelectorAll("[data-keep][data-touched][id]"));
    main.replaceChildren.apply(main, Array.prototype.slice.call(next.childNodes));
    touched.forEach(function (form) {
      var fresh = document.getElementById(form.id);
      if (fresh && main.contains(fresh)) fresh.replaceWith(form);
    });
    main.dataset.etag = next.dataset.etag || "";
    var pill = document.querySelector(".top-actions .pill");
    var newPill = doc.querySelector(".top-actions .pill");
    if (pill && newPill) pill.replaceWith(newPill);
    if (keep && document.getElementById(keep)) document.getElementById(keep).focus();
    return main.dataset.etag;
  }

  function schedule() {
    clearTimeout(timer);
    if (!stopped) timer = setTimeout(poll, interval);
  }

  function poll() {
    if (document.hidden) return schedule();
    var headers = { Accept: "application/json" };
    if (etag) headers["If-None-Match"] = etag;
    return fetch(api, { credentials: "same-origin", cache: "no-store", headers: headers })
      .then(function (response) {
        var asOf = response.headers.get("x-health-as-of");
        if (response.status === 304) {
          fresh(asOf);
          return;
        }
        if (response.status === 401 || response.status === 403) {
          stopped = true;
          say("You are signed out. Reload the page to sign in again.", true);
          return;
        }
        if (response.status === 503) {
          say("The store is not answering: this is what was known before. Retrying.", true);
          return;
        }
        if (!response.ok) {
          say("The health view is unavailable right now. Retrying.", true);
          return;
        }
        var tag = response.headers.get("etag") || "";
        if (tag && tag === etag) {
          fresh(asOf);
          return;
        }
        return fetch(location.href, { credentials: "same-origin", cache: "no-store", headers: { Accept: "text/html" } })
          .then(function (page) {
            if (!page.ok) throw new Error("page " + page.status);
            return page.text();
          })
          .then(function (html) {
            etag = swap(html) || tag;
            fresh(asOf);
            say("Updated with new information at " + utc(asOf || new Date().toISOString()) + ".", false);
            main.dispatchEvent(new CustomEvent("nmh-updated", { bubbles: true }));
          });
      })
      .catch(function () {
        say("Cannot reach the site right now. Retrying.", true);
      })
      .then(schedule, schedule);
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && !stopped) poll();
  });
  document.documentElement.dataset.live = "fresh";
  schedule();
})();
