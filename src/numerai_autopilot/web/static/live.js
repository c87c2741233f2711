// Keeps dashboard pages current without reloading: every element with data-poll has its
// content replaced by that URL's HTML fragment every data-poll-ms (until the fragment says
// data-final); countdowns to a round's close and a running stage's elapsed time tick every
// second. Pages work without this.
(function () {
  "use strict";

  function duration(s) {
    s = Math.max(0, s);
    if (s < 60) return s.toFixed(1) + " s";
    var m = Math.floor(s / 60), sec = Math.floor(s % 60);
    if (m < 60) return m + " min " + (sec < 10 ? "0" : "") + sec + " s";
    var h = Math.floor(m / 60); m = m % 60;
    return h + " h " + (m < 10 ? "0" : "") + m + " min";
  }

  function tick() {
    document.querySelectorAll("[data-close]").forEach(function (el) {
      var left = (Date.parse(el.getAttribute("data-close")) - Date.now()) / 1000;
      el.textContent = left > 0 ? "closes in " + duration(Math.floor(left)) : "closed";
    });
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var spent = (Date.now() - Date.parse(el.getAttribute("data-since"))) / 1000;
      el.textContent = "running for " + duration(spent);
    });
  }

  function poll(el) {
    var url = el.getAttribute("data-poll");
    var every = parseInt(el.getAttribute("data-poll-ms"), 10) || 2000;
    function later() { window.setTimeout(load, every); }
    function load() {
      if (document.hidden) { later(); return; }
      fetch(url, { credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          return response.text().then(function (html) {
            el.innerHTML = html;
            tick();
            if (response.ok && !el.querySelector("[data-final]")) later();
          });
        })
        .catch(later);
    }
    if (!el.querySelector("[data-final]")) later();
  }

  document.querySelectorAll("[data-poll]").forEach(poll);
  tick();
  window.setInterval(tick, 1000);
})();
