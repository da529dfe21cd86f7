// Polling pauses while the tab is hidden. The templates say so with htmx trigger filters
// ("every 2s [document.visibilityState === 'visible']"), but htmx runs those through eval,
// which the Content Security Policy forbids; this listener does the same job without it.
(function () {
  "use strict";

  document.addEventListener("htmx:beforeRequest", function (event) {
    var trigger = event.detail.elt.getAttribute("hx-trigger") || "";
    if (document.visibilityState !== "visible" && /^\s*every\s/.test(trigger)) {
      event.preventDefault();
    }
  });
})();
