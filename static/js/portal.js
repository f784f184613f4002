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
