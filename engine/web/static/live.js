// Live updates: the server pushes the parts of the page that changed (server-sent events) and this swaps them
// in place. No polling, no reload; without JavaScript the page is complete as served.
"use strict";
(function () {
  const url = document.body.dataset.stream;
  const status = document.getElementById("live-status");
  let received = performance.now();
  const shown = new Map();

  function ages() {
    const since = (performance.now() - received) / 1000;
    for (const el of document.querySelectorAll("[data-age]")) {
      const seconds = Math.max(0, Number(el.dataset.age) + since);
      el.textContent = seconds < 2 ? "computed just now" : "computed " + Math.round(seconds) + " s ago";
    }
  }
  setInterval(ages, 1000);

  if (!url || !window.EventSource) {
    return;
  }
  const source = new EventSource(url);
  source.addEventListener("update", function (event) {
    const parts = JSON.parse(event.data);
    for (const name of Object.keys(parts)) {
      const el = document.querySelector('[data-live="' + name + '"]');
      if (el && shown.get(name) !== parts[name]) {
        el.innerHTML = parts[name];
        shown.set(name, parts[name]);
      }
    }
    received = performance.now();
    ages();
    if (status) {
      status.textContent = "Live: this page updates as events arrive.";
    }
  });
  source.addEventListener("error", function () {
    if (status) {
      status.textContent = "Live updates paused; reconnecting…";
    }
  });
})();
