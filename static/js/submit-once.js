// A form is sent once: a second click (or Enter) while the first request is on its way does
// nothing, so a slow upload or signing is never sent twice. The clicked button is disabled
// only after the browser has read the form, so its name and value still go with it. Coming
// back to the page (the back button), or ten seconds without a new page (a form that answers
// with a download), makes the form usable again.
(function () {
  "use strict";
  function release(form) {
    delete form.dataset.sending;
    // Buttons may sit outside their form (the `form` attribute), so look in the whole page.
    document.querySelectorAll("button[aria-disabled=true], input[aria-disabled=true]")
      .forEach(function (button) {
        button.disabled = false;
        button.removeAttribute("aria-disabled");
      });
  }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || (form.method || "").toLowerCase() !== "post") {
      return;
    }
    if (form.dataset.sending === "yes") {
      event.preventDefault();
      return;
    }
    form.dataset.sending = "yes";
    var button = event.submitter;
    window.setTimeout(function () {
      if (button) {
        button.setAttribute("aria-disabled", "true");
        button.disabled = true;
      }
    }, 0);
    window.setTimeout(function () { release(form); }, 10000);
  });
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-sending]").forEach(release);
  });
})();
