// The logout button on the demo and account pages.
(function () {
  "use strict";
  var button = document.getElementById("logout");
  if (!button) return;
  button.addEventListener("click", async function () {
    button.disabled = true;
    await fetch("/api/logout", { method: "POST", credentials: "same-origin" });
    window.location.assign("/");
  });
})();
