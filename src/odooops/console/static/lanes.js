// Branch lanes: drag a card to a lane it may go to (the card's data-moves,
// which the server derives from the stage rules; the other lanes do not take
// it). The "Move to" form in each card does the same from the keyboard, or
// without JavaScript. Live updates from
// the server wait while a drag or a choice in a card is under way, and what
// changed is told to screen readers in words.
"use strict";

(() => {
  const lanes = document.getElementById("lanes");
  if (!lanes) return;
  const said = document.getElementById("lanes-status");
  let dragged = null; // the card on the move
  let pending = null; // a live update that came during a drag or a choice

  const laneOf = (node) => (node && node.closest ? node.closest(".lane") : null);
  const titled = (stage) => stage.charAt(0).toUpperCase() + stage.slice(1);
  const busy = () => dragged !== null || Boolean(document.activeElement && document.activeElement.matches("#lanes select"));

  function applyPending() {
    if (pending === null || busy()) return;
    const html = pending;
    pending = null;
    htmx.swap(lanes, html, { swapStyle: "innerHTML" });
  }

  function showNotice(detail) {
    if (!detail || !detail.message) return;
    flash(detail.message, detail.tone);
    const box = document.getElementById("flash");
    if (detail.tone === "ok" && box) {
      const shown = box.firstChild;
      setTimeout(() => { if (box.firstChild === shown) box.innerHTML = ""; }, 6000);
    }
  }

  // ---- drag and drop -------------------------------------------------------

  function endDrag() {
    if (dragged) dragged.classList.remove("moving");
    lanes.classList.remove("dragging");
    lanes.querySelectorAll(".lane.from, .lane.over, .lane.takes")
      .forEach((lane) => lane.classList.remove("from", "over", "takes"));
    dragged = null;
  }

  const movesOf = (card) => (card.dataset.moves || "").split(" ").filter(Boolean);

  function target(event) {
    const lane = laneOf(event.target);
    return dragged && lane && movesOf(dragged).includes(lane.dataset.lane) ? lane : null;
  }

  lanes.addEventListener("dragstart", (event) => {
    const card = event.target.closest && event.target.closest('.card[draggable="true"]');
    if (!card) return;
    dragged = card;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.dataset.branch);
    card.classList.add("moving");
    laneOf(card).classList.add("from");
    movesOf(card).forEach((stage) => {
      const lane = lanes.querySelector(`.lane[data-lane="${stage}"]`);
      if (lane) lane.classList.add("takes");
    });
    lanes.classList.add("dragging");
  });

  lanes.addEventListener("dragover", (event) => {
    const lane = target(event);
    if (!lane) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    lanes.querySelectorAll(".lane.over").forEach((other) => { if (other !== lane) other.classList.remove("over"); });
    lane.classList.add("over");
  });

  lanes.addEventListener("dragleave", (event) => {
    const lane = laneOf(event.target);
    if (lane && !lane.contains(event.relatedTarget)) lane.classList.remove("over");
  });

  lanes.addEventListener("drop", (event) => {
    const lane = target(event);
    if (!lane) return;
    event.preventDefault();
    const branch = dragged.dataset.branch;
    endDrag();
    move(branch, lane.dataset.lane, lane);
  });

  lanes.addEventListener("dragend", () => { endDrag(); applyPending(); });

  // The same request as the "Move to" form: htmx sends the CSRF token (from
  // <body hx-headers>) and HX-Request, swaps in the lanes on success, and on a
  // refusal app.js shows the database's reason in #flash; the card stays put.
  function move(branch, stage, lane) {
    lane.classList.add("waiting");
    htmx.ajax("POST", "/p/" + lanes.dataset.project + "/stage",
              { source: lanes, target: lanes, swap: "innerHTML", values: { branch, stage } })
      .catch(() => flash("The server could not be reached, so " + branch + " was not moved.", "bad"))
      .finally(() => lane.classList.remove("waiting"));
  }

  // ---- notices and live updates --------------------------------------------

  document.body.addEventListener("lanes-notice", (event) => showNotice(event.detail));

  document.addEventListener("click", (event) => {
    if (event.target.closest && event.target.closest("#flash .notice")) document.getElementById("flash").innerHTML = "";
  });

  lanes.addEventListener("htmx:sseBeforeMessage", (event) => {
    if (busy()) { event.preventDefault(); pending = event.detail.data; }
  });

  lanes.addEventListener("focusout", () => setTimeout(applyPending, 0));

  function snapshot() {
    const cards = new Map();
    lanes.querySelectorAll(".card").forEach((card) => {
      const badge = card.querySelector(".badge");
      cards.set(card.dataset.branch, { stage: card.dataset.stage, status: badge ? badge.textContent.trim() : "" });
    });
    return cards;
  }

  let known = snapshot();
  lanes.addEventListener("htmx:afterSwap", (event) => {
    if (event.target !== lanes) return;
    pending = null; // what was just swapped in is at least as new
    const now = snapshot();
    const news = [];
    now.forEach((card, name) => {
      const before = known.get(name);
      if (!before) news.push(name + " is new in " + titled(card.stage));
      else if (before.stage !== card.stage) news.push(name + " moved to " + titled(card.stage));
      if (before && before.status !== card.status) news.push(name + ": " + card.status);
    });
    known.forEach((card, name) => { if (!now.has(name)) news.push(name + " left the lanes"); });
    known = now;
    if (said && news.length) said.textContent = news.join(". ") + ".";
  });
})();
