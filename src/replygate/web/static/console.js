// Progressive enhancement only: every page works without this file.
// Forms marked data-busy="text" disable their button and say so while the server works
// (Test Email Configuration can take up to a minute), so nobody submits twice.
document.addEventListener("submit", function (event) {
  var form = event.target;
  var text = form.getAttribute("data-busy");
  if (!text) { return; }
  var button = form.querySelector("button[type=submit]");
  if (button) {
    button.disabled = true;
    button.textContent = text;
  }
  var status = form.querySelector("[data-busy-status]");
  if (status) { status.textContent = text; }
});
