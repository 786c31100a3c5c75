// A branch's builds: after each refresh or action, say in words what changed
// (the table itself is not a live region: it would read every row again),
// and keep the keyboard where it was when the button under it went away.
"use strict";

(function () {
  let before = {};
  let pressed = null; // the run whose button was used last

  document.addEventListener("htmx:beforeRequest", (event) => {
    const tr = event.detail.elt.closest && event.detail.elt.closest("tr[data-run]");
    if (tr) pressed = tr.dataset.run;
  });

  function statuses(root) {
    const seen = {};
    root.querySelectorAll("tr[data-run]").forEach((tr) => {
      const badge = tr.querySelector(".badge");
      seen[tr.dataset.run] = { status: tr.dataset.status, label: badge ? badge.textContent.trim() : tr.dataset.status };
    });
    return seen;
  }

  function inBuilds(elt) {
    return elt && (elt.id === "builds" || elt.closest("#builds"));
  }

  document.addEventListener("htmx:beforeSwap", (event) => {
    if (!inBuilds(event.detail.target)) return;
    const table = document.getElementById("builds");
    before = table ? statuses(table) : {};
  });

  document.addEventListener("htmx:afterSettle", (event) => {
    const table = document.getElementById("builds");
    if (!table || !inBuilds(event.detail.target)) return;
    const now = statuses(table);
    const news = [];
    for (const [id, run] of Object.entries(now)) {
      if (!before[id]) news.push(`Build ${id} added: ${run.label}.`);
      else if (before[id].status !== run.status) news.push(`Build ${id}: ${run.label}.`);
    }
    if (news.length) document.getElementById("builds-news").textContent = news.join(" ");
    // the button pressed is gone (its build changed state): focus its row's link
    const posted = event.detail.requestConfig && event.detail.requestConfig.verb === "post";
    if (!posted) return; // a refresh: the pressed button's answer is still to come
    if (pressed && (!document.activeElement || document.activeElement === document.body)) {
      const link = document.querySelector(`tr[data-run="${pressed}"] a`);
      if (link) link.focus();
    }
    pressed = null;
  });
})();
