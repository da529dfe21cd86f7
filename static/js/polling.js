// Polling pauses while the tab is hidden. The templates say so with htmx trigger filters
// ("every 2s [document.visibilityState === 'visible']"), but htmx runs those through eval,
// which the Content Security Policy forbids; this listener does the same job without it.
//
// Elapsed times tick here, in the page: the server answers a poll of an unchanged clip
// with 304 Not Modified (videos/conditional.py), so the time it rendered can be old.
(function () {
  "use strict";

  document.addEventListener("htmx:beforeRequest", function (event) {
    var trigger = event.detail.elt.getAttribute("hx-trigger") || "";
    if (document.visibilityState !== "visible" && /^\s*every\s/.test(trigger)) {
      event.preventDefault();
    }
  });

  // The same words as the `seconds` template filter: "12 s", "2 min 5 s", "2 h 1 min".
  function seconds(total) {
    var hours = Math.floor(total / 3600);
    var minutes = Math.floor((total % 3600) / 60);
    var secs = total % 60;
    if (hours) return hours + " h " + minutes + " min";
    if (minutes) return minutes + " min " + secs + " s";
    return secs + " s";
  }

  setInterval(function () {
    var now = Date.now() / 1000;
    document.querySelectorAll("[data-elapsed-since]").forEach(function (element) {
      var since = Number(element.dataset.elapsedSince);
      element.textContent = seconds(Math.max(0, Math.floor(now - since))) + " elapsed";
    });
  }, 1000);
})();
