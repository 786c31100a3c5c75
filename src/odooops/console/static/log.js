// The build log page: the page reads without this; this makes it live.
// Lines stream in over Server-Sent Events as HTML the server rendered, into
// the section of their phase; the view follows the end of the log until the
// reader scrolls up; the level filter, search and folding act on old and
// new lines alike.
"use strict";

(() => {
  const log = document.getElementById("log");
  if (!log) return;
  const $ = (id) => document.getElementById(id);
  const followButton = $("follow");
  const emptyNote = log.querySelector(".log-empty");
  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");
  const LEVELS = ["debug", "info", "warning", "error", "critical"];
  const KEEP_LINES = 20000;  // past this, the oldest lines leave the page (the download has them)
  const TRIM_BATCH = 2000;
  let lineCount = log.querySelectorAll(".line").length;
  let live = log.dataset.live === "true";
  let following = false;

  document.querySelectorAll("[data-js]").forEach((el) => { el.hidden = false; });
  document.querySelectorAll("[data-no-js]").forEach((el) => { el.hidden = true; });

  const motion = () => (reducedMotion.matches ? "auto" : "smooth");
  const atBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < 24;

  // ---- following the end of the log -------------------------------------

  function follow(on) {
    following = on;
    followButton.hidden = on || !live;
    if (on) log.scrollTop = log.scrollHeight;  // at once: a smooth scroll would look like the reader scrolling up
  }

  log.addEventListener("scroll", () => {
    if (atBottom() !== following) follow(atBottom());
  }, { passive: true });
  followButton.addEventListener("click", () => { follow(true); log.focus({ preventScroll: true }); });

  // ---- phase sections ----------------------------------------------------

  const sectionsOf = (name) => log.querySelectorAll(`details.phase[data-phase="${CSS.escape(name)}"]`);
  const firstSkipped = () => log.querySelector("details.phase.skipped");

  function newSection(name, skipped) {
    const details = document.createElement("details");
    details.className = skipped ? "phase skipped" : "phase";
    details.dataset.phase = name;
    details.open = !skipped;
    const summary = document.createElement("summary");
    const label = document.createElement("span");
    label.className = "ph-name";
    label.textContent = name || "runner";
    summary.append(label);
    const lines = document.createElement("div");
    lines.className = "lines";
    details.append(summary, lines);
    log.insertBefore(details, skipped ? emptyNote : (firstSkipped() || emptyNote));
    emptyNote.hidden = true;
    return details;
  }

  // lines go into the last section when it is of their phase, else a new one
  function linesOf(phase) {
    const all = log.querySelectorAll("details.phase:not(.skipped)");
    const last = all[all.length - 1];
    const section = last && last.dataset.phase === phase ? last : newSection(phase, false);
    return section.querySelector(".lines");
  }

  function summarise(phases) {
    for (const p of phases) {
      let found = sectionsOf(p.name);
      if (!found.length && p.status === "skipped") found = [newSection(p.name, true)];
      found.forEach((section) => {
        const summary = section.querySelector("summary");
        const state = part(summary, "ph-status");
        state.className = "ph-status ph-" + p.status;
        state.textContent = p.status;
        part(summary, "ph-time").textContent = p.duration || "";
      });
    }
  }

  function part(summary, name) {
    const found = summary.querySelector("." + name);
    if (found) return found;
    summary.append(" ");  // words apart for screen readers and copying, as in the page's own summaries
    return summary.appendChild(Object.assign(document.createElement("span"), { className: name }));
  }

  function foldAll(open) {
    log.querySelectorAll("details.phase").forEach((d) => { d.open = open; });
    if (following) log.scrollTop = log.scrollHeight;  // still at the live end, however tall the log became
  }
  $("log-fold").addEventListener("click", () => foldAll(false));
  $("log-unfold").addEventListener("click", () => foldAll(true));

  // ---- the level filter --------------------------------------------------

  const levelSelect = $("log-level");
  const shown = (line) => {
    const level = LEVELS.find((l) => line.classList.contains("lvl-" + l)) || "info";
    return LEVELS.indexOf(level) >= LEVELS.indexOf(log.dataset.min || "debug");
  };
  levelSelect.addEventListener("change", () => {
    log.dataset.min = levelSelect.value;
    const url = new URL(window.location.href);
    if (levelSelect.value === "debug") url.searchParams.delete("level");
    else url.searchParams.set("level", levelSelect.value);
    history.replaceState(null, "", url);
    find();
    if (following) log.scrollTop = log.scrollHeight;
  });

  // ---- search ------------------------------------------------------------

  const searchBox = $("log-search");
  const hitCount = $("log-hits");
  const previous = $("log-prev");
  const next = $("log-next");
  let term = "";
  let hits = [];
  let current = -1;

  function unmark() {
    log.querySelectorAll("mark").forEach((mark) => {
      const parent = mark.parentNode;
      mark.replaceWith(mark.textContent);
      parent.normalize();
    });
  }

  // <mark> every case-insensitive occurrence of the term in one line's text
  function mark(line) {
    if (!term || !shown(line)) return [];
    const message = line.querySelector(".msg");
    const walker = document.createTreeWalker(message, NodeFilter.SHOW_TEXT);
    const texts = [];
    while (walker.nextNode()) texts.push(walker.currentNode);
    const found = [];
    for (const node of texts) {
      const text = node.nodeValue;
      const lower = text.toLowerCase();
      let at = lower.indexOf(term);
      if (at < 0) continue;
      const pieces = document.createDocumentFragment();
      let from = 0;
      while (at >= 0) {
        pieces.append(text.slice(from, at));
        const hit = document.createElement("mark");
        hit.textContent = text.slice(at, at + term.length);
        pieces.append(hit);
        found.push(hit);
        from = at + term.length;
        at = lower.indexOf(term, from);
      }
      pieces.append(text.slice(from));
      node.replaceWith(pieces);
    }
    return found;
  }

  function find() {
    unmark();
    term = searchBox.value.trim().toLowerCase();
    hits = [];
    current = -1;
    if (term) log.querySelectorAll(".line").forEach((line) => { hits.push(...mark(line)); });
    tell();
    if (hits.length) go(0);
  }

  function tell() {
    hitCount.value = !term ? "" : hits.length ? `${current + 1} of ${hits.length}` : "no matches";
    previous.disabled = next.disabled = hits.length === 0;
  }

  function go(index) {
    if (!hits.length) return;
    if (hits[current]) hits[current].classList.remove("current");
    current = (index + hits.length) % hits.length;
    const hit = hits[current];
    hit.classList.add("current");
    const section = hit.closest("details");
    if (section && !section.open) section.open = true;
    follow(false);
    hit.scrollIntoView({ block: "center", behavior: motion() });
    tell();
  }

  let typing;
  searchBox.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(find, 150); });
  searchBox.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();  // the tools are a GET form: Enter would reload the page
    clearTimeout(typing);
    if (searchBox.value.trim().toLowerCase() !== term) find();
    else go(current + (event.shiftKey ? -1 : 1));
  });
  previous.addEventListener("click", () => go(current - 1));
  next.addEventListener("click", () => go(current + 1));

  // ---- a link to a line --------------------------------------------------

  function target() {
    const match = /^#L(\d+)$/.exec(window.location.hash);
    const line = match && document.getElementById("L" + match[1]);
    if (!line) return false;
    log.querySelectorAll(".line.target").forEach((el) => el.classList.remove("target"));
    line.classList.add("target");
    const section = line.closest("details");
    if (section) section.open = true;
    follow(false);
    line.scrollIntoView({ block: "center", behavior: motion() });
    return true;
  }
  window.addEventListener("hashchange", target);

  // ---- the live stream ---------------------------------------------------

  let queue = [];
  let drawing = false;

  // lines arrive one event each, maybe thousands a second: draw once a frame
  function take(data) {
    queue.push(data);
    if (!drawing) {
      drawing = true;
      requestAnimationFrame(draw);
    }
  }

  function draw() {
    drawing = false;
    const batch = queue;
    queue = [];
    const template = document.createElement("template");
    let wanted = false;
    for (const { phase, html } of batch) {
      template.innerHTML = html;
      const line = template.content.firstElementChild;
      if (!line || document.getElementById(line.id)) continue;  // a reconnect may resend a line
      linesOf(phase).appendChild(line);
      lineCount++;
      if (term) hits.push(...mark(line));
      if ("#" + line.id === window.location.hash) wanted = true;
    }
    if (term) tell();
    if (following) trim();
    if (wanted) target();
    else if (following) log.scrollTop = log.scrollHeight;
  }

  // a page that follows a huge log for hours must not grow without end
  function trim() {
    if (lineCount <= KEEP_LINES + TRIM_BATCH) return;
    const lines = log.querySelectorAll(".line");
    for (let i = 0; i < lines.length - KEEP_LINES; i++) {
      const section = lines[i].closest("details");
      lines[i].remove();
      if (section && !section.querySelector(".line")) section.remove();
    }
    lineCount = Math.min(lines.length, KEEP_LINES);
    if (term) {  // hits in lines gone are gone; the reader stays where they are
      const at = hits[current];
      hits = hits.filter((hit) => hit.isConnected);
      current = at && at.isConnected ? hits.indexOf(at) : -1;
      tell();
    }
    const note = $("log-trimmed");
    if (note) note.hidden = false;
  }

  function status(s) {
    const box = $("log-status");
    const badge = box.querySelector("[data-status]");
    if (!badge || badge.dataset.status !== s.status) box.innerHTML = s.badge;  // only a change is announced
    $("log-duration").textContent = s.duration || "–";
    summarise(s.phases);
  }

  function end(s) {
    live = false;
    log.dataset.live = "false";
    followButton.hidden = true;
    const box = $("log-status");
    const badge = box.querySelector("[data-status]");
    if (!badge || badge.dataset.status !== s.status) box.innerHTML = s.badge;
    const finished = $("log-finished");
    if (finished && finished.querySelector(".muted")) finished.textContent = "just now";
    const cancel = $("cancel-form");
    const rebuild = $("rebuild-form");
    if (cancel) cancel.hidden = true;
    if (rebuild) rebuild.hidden = false;
    emptyNote.textContent = "This run wrote no log.";
    showTests();
  }

  // a build's tests are recorded as it ends: the page that watched it live takes
  // the Tests section from the page as it is now
  async function showTests() {
    const slot = $("tests-slot");
    if (!slot) return;
    try {
      const answer = await fetch(location.pathname + location.search, {headers: {Accept: "text/html"}});
      const section = new DOMParser().parseFromString(await answer.text(), "text/html").getElementById("tests");
      if (section) slot.replaceWith(document.importNode(section, true));
    } catch (error) {
      // the section is one reload away; the log is whole without it
    }
  }

  function listen() {
    const source = new EventSource(`/runs/${log.dataset.run}/live?after=${log.dataset.after || 0}`);
    source.addEventListener("line", (event) => take(JSON.parse(event.data)));
    source.addEventListener("status", (event) => status(JSON.parse(event.data)));
    source.addEventListener("end", (event) => {
      source.close();
      if (queue.length) draw();
      end(JSON.parse(event.data));
    });
    source.addEventListener("error", () => {
      // the browser retries by itself (from the last line it got); closed means it gave up
      if (source.readyState === EventSource.CLOSED && typeof flash === "function") {
        flash("Live updates stopped: reload the page to see the latest lines.", "bad");
      }
    });
  }

  if (!target() && live) follow(true);
  if (live) listen();
})();
