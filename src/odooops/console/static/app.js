// OdooOps console: pages work without this; it makes them live.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function flash(message, tone) {
  const box = document.getElementById("flash");
  if (!box) return;
  box.innerHTML = "";
  const p = document.createElement("p");
  p.className = "notice " + (tone || "");
  p.textContent = message;
  box.appendChild(p);
}

// htmx: an error answer is a page; show its message instead of swapping it in
document.addEventListener("htmx:responseError", (event) => {
  const xhr = event.detail.xhr;
  const doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
  const text = doc.querySelector(".error-page p, [role=alert]");
  flash(text ? text.textContent : "The server refused: " + xhr.status, "bad");
});
