// The owner's page: copy a link or secret that is shown only once.
(function () {
  "use strict";
  var button = document.getElementById("copy");
  var field = document.getElementById("shown-value");
  if (!button || !field) return;
  button.addEventListener("click", async function () {
    try {
      await navigator.clipboard.writeText(field.value);
    } catch (e) {
      field.focus(); field.select();  // no clipboard permission: selected, ready for Ctrl+C
      return;
    }
    button.textContent = button.getAttribute("data-done");
  });
})();
