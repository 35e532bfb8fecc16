// Poll a background import of learners and move its progress bar; when it ends, reload the
// page, which then shows what was imported (or why it stopped).
(function () {
  "use strict";
  var box = document.getElementById("import-job");
  if (!box) { return; }
  if (box.getAttribute("data-active") !== "yes") { return; }
  var bar = document.getElementById("import-progress");
  var message = document.getElementById("import-message");
  function poll() {
    fetch(box.getAttribute("data-progress-url"), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (job) {
        if (!job) { setTimeout(poll, 2000); return; }
        if (bar) {
          bar.max = Math.max(job.total, 1);
          bar.value = job.done;
          bar.textContent = job.done + " of " + job.total;
        }
        message.textContent = job.message;
        if (job.working) { setTimeout(poll, 800); }
        else { window.location.reload(); }
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  poll();
})();
