/* nextmonth-health admin widget: <nmh-health-alerts> — calm alerts inside any admin panel.
 *
 * <script src="/admin/system-health/widget.js" defer></script>
 * places one badge where the script tag is, unless the page already has an
 * <nmh-health-alerts> element (put it wherever the badge belongs). The API defaults to the
 * script's own directory + "api"; override with data-api on the script or api="…" on the
 * element. Polls gently (every 60 s, only while the tab is visible); no push notifications.
 * Alert texts are set with textContent only. Times are UTC, written as the admin pages
 * write them. Each alert links to its incident's page. Fires "nmh-unread" with {detail: {unread}}.
 */
(function () {
  "use strict";
  if (window.customElements === undefined || customElements.get("nmh-health-alerts")) return;

  var script = document.currentScript;
  var scriptBase = script && script.src ? script.src.replace(/widget\.js(\?.*)?$/, "") : "";
  var defaultApi = (script && script.dataset.api) || (scriptBase ? scriptBase + "api" : "");
  var POLL_MS = 60000;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  /* "5 Jan, 09:05 UTC": the admin pages' one way of writing a moment, zone shown. */
  function when(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    if (isNaN(d)) return "";
    var hh = d.getUTCHours(), mm = d.getUTCMinutes();
    return d.getUTCDate() + " " + MONTHS[d.getUTCMonth()] + ", " + (hh < 10 ? "0" : "") + hh + ":" +
      (mm < 10 ? "0" : "") + mm + " UTC";
  }

  class HealthAlerts extends HTMLElement {
    constructor() {
      super();
      this._timer = null;
      this._csrf = "";
      this._onVisible = this.refresh.bind(this);
      var root = this.attachShadow({ mode: "open" });
      this._css = el("link");
      this._css.rel = "stylesheet";
      root.appendChild(this._css);

      this._button = el("button", "badge");
      this._button.type = "button";
      this._button.setAttribute("aria-expanded", "false");
      this._button.setAttribute("aria-haspopup", "true");
      this._label = el("span", "label", "System health");
      this._count = el("span", "count", "0");
      this._button.append(this._label, this._count);
      this._button.addEventListener("click", this.toggle.bind(this));

      this._panel = el("div", "panel");
      this._panel.hidden = true;
      this._panel.setAttribute("role", "region");
      this._panel.setAttribute("aria-label", "Health alerts");
      this._status = el("p", "status");
      this._status.setAttribute("aria-live", "polite");
      this._list = el("ul", "list");
      this._link = el("a", "more", "Open system health");
      this._panel.append(this._status, this._list, this._link);

      var wrap = el("div", "wrap");
      wrap.append(this._button, this._panel);
      root.appendChild(wrap);
    }

    api() {
      return (this.getAttribute("api") || defaultApi).replace(/\/$/, "");
    }

    base() {
      return this.api().replace(/\/api$/, "");
    }

    connectedCallback() {
      this._css.href = this.base() + "/static/widget.css";
      this._link.href = this.base() + "/";
      this.refresh();
      clearInterval(this._timer);
      this._timer = setInterval(this.refresh.bind(this), POLL_MS);
      document.addEventListener("visibilitychange", this._onVisible);
    }

    disconnectedCallback() {
      clearInterval(this._timer);
      document.removeEventListener("visibilitychange", this._onVisible);
    }

    toggle() {
      var open = this._panel.hidden;
      if (open) {
        // Open towards the side with room: under the badge, or leftwards near the right edge.
        var box = this.getBoundingClientRect();
        this._panel.classList.toggle("end", box.left + 360 > document.documentElement.clientWidth);
      }
      this._panel.hidden = !open;
      this._button.setAttribute("aria-expanded", String(open));
    }

    refresh() {
      if (document.hidden) return Promise.resolve();
      var self = this;
      return fetch(this.api() + "/alerts", {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (response) {
          if (response.status === 401) throw new Error("Sign in to see health alerts.");
          if (response.status === 503) throw new Error("The health store is not answering; retrying.");
          if (!response.ok) throw new Error("Health alerts are unavailable right now.");
          return response.json();
        })
        .then(function (data) { self.render(data); })
        .catch(function (error) {
          self.setAttribute("data-state", "error");
          self._status.textContent = error.message || "Health alerts are unavailable right now.";
        });
    }

    render(data) {
      this._csrf = data.csrf || "";
      var unread = Number(data.unread) || 0;
      this.setAttribute("data-state", "ready");
      this.setAttribute("data-unread", String(unread));
      this._count.textContent = String(unread);
      this._count.hidden = unread === 0;
      this._button.setAttribute(
        "aria-label",
        unread ? "System health: " + unread + " unread alert" + (unread === 1 ? "" : "s") : "System health: all calm"
      );
      this._button.classList.toggle("has-unread", unread > 0);
      var alerts = Array.isArray(data.alerts) ? data.alerts : [];
      this._status.textContent = alerts.length ? "" : "All calm. No alerts.";
      this._list.replaceChildren();
      for (var i = 0; i < alerts.length; i++) this._list.appendChild(this.item(alerts[i]));
      this.dispatchEvent(new CustomEvent("nmh-unread", { detail: { unread: unread }, bubbles: true }));
    }

    item(alert) {
      var li = el("li", "item" + (alert.unread ? " unread" : "") + (alert.active ? "" : " resolved"));
      li.appendChild(el("p", "text", String(alert.message || "")));
      var foot = el("div", "foot");
      foot.appendChild(el("span", "meta", String(alert.site || "") + " · " + when(alert.updated_at)));
      if (alert.id) {
        var detail = el("a", "detail", "What happened");
        detail.href = this.base() + "/incidents/" + encodeURIComponent(String(alert.id));
        foot.appendChild(detail);
      }
      if (alert.unread) {
        var ack = el("button", "ack", "Mark as read");
        ack.type = "button";
        ack.addEventListener("click", this.acknowledge.bind(this, String(alert.id), ack));
        foot.appendChild(ack);
      }
      li.appendChild(foot);
      return li;
    }

    acknowledge(id, button) {
      var self = this;
      button.disabled = true;
      return fetch(this.api() + "/ack", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": this._csrf },
        body: JSON.stringify({ id: id }),
      })
        .then(function (response) {
          if (!response.ok) throw new Error("Could not mark the alert as read; please try again.");
          return self.refresh();
        })
        .catch(function (error) {
          button.disabled = false;
          self._status.textContent = error.message;
        });
    }
  }

  customElements.define("nmh-health-alerts", HealthAlerts);

  if (script && !document.querySelector("nmh-health-alerts")) {
    var widget = document.createElement("nmh-health-alerts");
    if (script.dataset.api) widget.setAttribute("api", script.dataset.api);
    script.insertAdjacentElement("afterend", widget);
  }
})();
