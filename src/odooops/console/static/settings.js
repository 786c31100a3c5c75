// Settings pages: a copy button for a secret shown once, and a confirmation
// before revoking or removing. Every form works without this.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    if (!navigator.clipboard) continue; // stays hidden: select the text instead
    button.hidden = false;
    button.addEventListener("click", async () => {
      const text = document.getElementById(button.dataset.copy).textContent.trim();
      try {
        await navigator.clipboard.writeText(text);
        flash("Copied. Keep it somewhere safe: it will not be shown again.", "ok");
      } catch (err) {
        flash("Could not copy: select the text and copy it yourself.", "bad");
      }
    });
  }
  const once = document.querySelector(".secret-once");
  if (once) once.focus();
});

document.addEventListener("submit", (event) => {
  const message = event.target.dataset ? event.target.dataset.confirm : null;
  if (message && !window.confirm(message)) event.preventDefault();
});
