// The logout button on the demo and account pages.
(function () {
  "use strict";
  var button = document.getElementById("logout");
  if (!button) return;
  var base = JSON.parse(document.getElementById("wxlogin-data").textContent).base || "";
  button.addEventListener("click", async function () {
    button.disabled = true;
    try {
      var response = await fetch(base + "/api/logout", { method: "POST", credentials: "same-origin" });
      if (response.ok) { window.location.assign(base + "/"); return; }
    } catch (e) { /* offline: let them try again */ }
    button.disabled = false;
  });
})();
