// maestro-lite dashboard: live updates over server-sent events, without reloading the page.
// Everything inserted comes from the server's own escaped HTML, or is set as text.
"use strict";

function refresh(container, url) {
  const open = new Set(
    Array.from(container.querySelectorAll("details[open][id]")).map((d) => d.id)
  );
  return fetch(url, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
    .then((html) => {
      container.innerHTML = html;
      open.forEach((id) => {
        const d = document.getElementById(id);
        if (d) d.open = true;
      });
      container.dispatchEvent(new CustomEvent("refreshed"));
    });
}

// A step's details are fetched when its section is first opened.
function loadStep(details) {
  if (!details.open || details.dataset.loaded) return;
  details.dataset.loaded = "1";
  const body = details.querySelector(".step-body");
  fetch(details.dataset.src, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
    .then((html) => { body.innerHTML = html; })
    .catch((status) => {
      delete details.dataset.loaded;
      body.textContent = "could not load the step (" + status + ")";
    });
}

document.addEventListener("toggle", (e) => {
  if (e.target.matches && e.target.matches("details[data-src]")) loadStep(e.target);
}, true);

function debounced(fn, ms) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(() => { timer = null; fn(); }, ms);
  };
}

function followRun(container) {
  const runId = container.dataset.run;
  const log = document.getElementById("live-log");
  const state = document.getElementById("live-state");
  const url = "/runs/" + encodeURIComponent(runId) + "?fragment=1";
  const update = debounced(() => refresh(container, url), 200);
  const source = new EventSource(container.dataset.live);
  source.addEventListener("run", (e) => {
    const data = JSON.parse(e.data);
    const item = document.createElement("li");
    item.textContent = data.line;
    log.appendChild(item);
    update();
  });
  source.addEventListener("end", (e) => {
    source.close();
    const data = JSON.parse(e.data);
    refresh(container, url).then(() => {
      state.textContent = "the run is " + data.status;
      document.body.dataset.runEnded = data.status;
    });
  });
}

function followRuns(container) {
  const source = new EventSource(container.dataset.live);
  const url = window.location.pathname + (window.location.search ? window.location.search + "&" : "?") + "fragment=1";
  const update = debounced(() => refresh(container, url), 300);
  source.addEventListener("changed", update);
  window.addEventListener("pagehide", () => source.close());
}

document.addEventListener("DOMContentLoaded", () => {
  const run = document.getElementById("run");
  if (run && run.dataset.live) followRun(run);
  const runs = document.getElementById("runs");
  if (runs && runs.dataset.live) followRuns(runs);
});
