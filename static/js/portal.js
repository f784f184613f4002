// Progressive enhancement only: every page works without this file.
// Copy buttons: <button data-copy-target="input-id" aria-describedby="status-id">.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy-target]");
  if (!button) return;
  const input = document.getElementById(button.dataset.copyTarget);
  const status = document.getElementById(button.getAttribute("aria-describedby"));
  if (!input) return;
  let copied = false;
  try {
    await navigator.clipboard.writeText(input.value);
    copied = true;
  } catch (e) {
    // Clipboard API refused (e.g. plain http): select the text so Ctrl+C works.
    input.focus();
    input.select();
    copied = document.execCommand && document.execCommand("copy");
  }
  if (status) status.textContent = copied ? "Copied." : "Selected: press Ctrl+C to copy.";
});

// After a reorder the page names the button that was pressed (data-focus): put the keyboard back
// on it, or on the item's other arrow when it moved to the end of the list.
document.addEventListener("DOMContentLoaded", () => {
  const list = document.querySelector("[data-focus]");
  if (!list) return;
  const id = list.dataset.focus;
  const item = id.split("-")[1];
  const target = document.getElementById(id) ||
    document.getElementById(`move-${item}-up`) || document.getElementById(`move-${item}-down`);
  if (target) target.focus();
});

// UTC / local time toggle: every <time data-utc> holds its UTC instant; the choice is kept in
// localStorage. CSV downloads are always UTC (SPEC section 9).
(() => {
  const pad = (n) => String(n).padStart(2, "0");
  const local = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  const zone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "local";
  function apply(mode) {
    document.querySelectorAll("time[data-utc]").forEach((el) => {
      if (!el.dataset.utcText) el.dataset.utcText = el.textContent;
      el.textContent = mode === "local" ? `${local(new Date(el.dateTime))} ${zone()}` : el.dataset.utcText;
    });
    const label = document.getElementById("tz-label");
    const button = document.getElementById("tz-switch");
    if (label) label.textContent = mode === "local" ? `local (${zone()})` : "UTC";
    if (button) {
      button.textContent = mode === "local" ? "show UTC" : "show local time";
      button.hidden = false;
    }
  }
  document.addEventListener("DOMContentLoaded", () => {
    let mode = "utc";
    try { mode = localStorage.getItem("dls-times") || "utc"; } catch (e) { /* storage refused */ }
    apply(mode);
    const button = document.getElementById("tz-switch");
    if (button) button.addEventListener("click", () => {
      mode = mode === "local" ? "utc" : "local";
      try { localStorage.setItem("dls-times", mode); } catch (e) { /* storage refused */ }
      apply(mode);
    });
  });
})();

// A table or chart wider than the screen scrolls inside its box: make that box reachable and
// scrollable with the keyboard, and name it (WCAG 2.1.1; axe "scrollable-region-focusable").
function markScrollableRegions() {
  document.querySelectorAll(".table-wrap, .heat-wrap").forEach((box) => {
    const scrolls = box.scrollWidth > box.clientWidth + 1;
    if (scrolls && !box.hasAttribute("tabindex")) {
      const named = box.querySelector("caption") || box.closest("section")?.querySelector("h2, h3");
      box.setAttribute("tabindex", "0");
      box.setAttribute("role", "region");
      box.setAttribute("aria-label", `${(named && named.textContent.trim()) || "Table"} (scrolls sideways)`);
    } else if (!scrolls && box.getAttribute("role") === "region") {
      box.removeAttribute("tabindex");
      box.removeAttribute("role");
      box.removeAttribute("aria-label");
    }
  });
}
document.addEventListener("DOMContentLoaded", markScrollableRegions);
window.addEventListener("resize", markScrollableRegions);
document.addEventListener("toggle", markScrollableRegions, true);
