// The commander's dashboard: keeps ages and countdowns current every second, and asks the
// server every few seconds whether the page changed (ETag / If-None-Match: an unchanged
// page costs a 304). Changed parts ([data-live] regions) are swapped in, keeping which
// <details> were open, except one the person is using (focus in a field, typed text, a
// refused form shown again), which waits for the next round. Without this script the pages
// still work: every form posts and redirects back.
(function () {
  "use strict";

  var body = document.body;
  var serverNow = Date.parse(body.getAttribute("data-server-now") || "");
  // The server's clock decides what is due: measure how far ours is from it, once.
  var skew = isNaN(serverNow) ? 0 : serverNow - Date.now();
  var refreshUrl = body.getAttribute("data-refresh-url");
  var refreshSeconds = parseInt(body.getAttribute("data-refresh-seconds") || "5", 10);
  // What the page as served shows: unchanged, the first refresh is a 304.
  var etag = body.getAttribute("data-etag") || null;
  var inFlight = false;
  var stopped = false;

  function now() {
    return Date.now() + skew;
  }

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  // The same shapes as the server's `duration` filter, with seconds under an hour.
  function duration(ms) {
    var s = Math.floor(Math.abs(ms) / 1000);
    var d = Math.floor(s / 86400);
    var h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60);
    var sec = s % 60;
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + pad(m) + "m";
    if (m) return m + "m " + pad(sec) + "s";
    return sec + "s";
  }

  function tick() {
    var t = now();
    document.querySelectorAll("time[data-countdown]").forEach(function (el) {
      var left = Date.parse(el.getAttribute("datetime")) - t;
      var text = left > 0 ? "in " + duration(left) : "due now";
      if (el.textContent !== text) el.textContent = text;
      el.classList.toggle("due", left <= 60000);
    });
    document.querySelectorAll("time[data-age]").forEach(function (el) {
      var until = el.getAttribute("data-until");
      var end = until ? Date.parse(until) : t;
      var text = duration(end - Date.parse(el.getAttribute("datetime")));
      if (el.textContent !== text) el.textContent = text;
    });
  }

  function setLive(state, text) {
    var el = document.getElementById("live-status");
    if (!el || el.getAttribute("data-state") === state) return;
    el.setAttribute("data-state", state);
    el.textContent = text;
  }

  function changedByPerson(region) {
    var active = document.activeElement;
    if (active && active !== body && region.contains(active) && active.matches("input, textarea, select")) {
      return true;
    }
    // A refused form shown again with what was typed in it.
    if (region.querySelector("[data-keep]")) return true;
    return Array.prototype.some.call(region.querySelectorAll("input, textarea, select"), function (field) {
      if (field.type === "hidden") return false;
      if (field.tagName === "SELECT") {
        return Array.prototype.some.call(field.options, function (o) {
          return o.selected !== o.defaultSelected;
        });
      }
      return field.value !== field.defaultValue;
    });
  }

  function swap(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    var complete = true;
    fresh.querySelectorAll("[data-live][id]").forEach(function (region) {
      var current = document.getElementById(region.id);
      if (!current) return;
      if (changedByPerson(current)) {
        complete = false;
        return;
      }
      var replacement = document.importNode(region, true);
      current.querySelectorAll("details[id]").forEach(function (details) {
        var twin = replacement.querySelector("details#" + CSS.escape(details.id));
        if (twin) twin.open = details.open;
      });
      current.replaceWith(replacement);
    });
    var freshNow = Date.parse(fresh.body.getAttribute("data-server-now") || "");
    if (!isNaN(freshNow)) skew = freshNow - Date.now();
    return complete;
  }

  function refresh() {
    if (stopped || inFlight || document.hidden) return;
    inFlight = true;
    var headers = { "X-Dashboard-Refresh": "1" };
    if (etag) headers["If-None-Match"] = etag;
    fetch(refreshUrl, { headers: headers, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.status === 304) {
          setLive("live", "Live");
          return null;
        }
        if (response.status === 401) {
          stopped = true;
          setLive("expired", "Session ended: reload to log in");
          return null;
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        var tag = response.headers.get("ETag");
        return response.text().then(function (html) {
          // A region left alone keeps the old tag, so the next round tries it again.
          if (swap(html)) etag = tag;
          setLive("live", "Live");
          tick();
        });
      })
      .catch(function () {
        setLive("offline", "Offline: retrying");
      })
      .then(function () {
        inFlight = false;
      });
  }

  tick();
  setInterval(tick, 1000);
  if (refreshUrl && window.fetch && window.DOMParser) {
    setLive("live", "Live");
    setInterval(refresh, Math.max(2, refreshSeconds) * 1000);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) refresh();
    });
  }
})();
