// Poll an export job and move the progress bar until the signed PDF is ready, or say plainly
// that it failed and offer "Try again" (polling stops either way).
(function () {
  "use strict";
  var box = document.getElementById("export-job");
  if (!box) { return; }
  var bar = document.getElementById("export-progress");
  var message = document.getElementById("export-message");
  var download = document.getElementById("export-download");
  var link = document.getElementById("export-link");
  var retry = document.getElementById("export-retry");
  function show(job) {
    bar.value = job.progress;
    bar.textContent = job.progress + "%";
    message.textContent = job.message;
    if (job.download) { link.href = job.download; download.hidden = false; }
    if (job.failed) {
      bar.hidden = true;
      var title = document.getElementById("export-title");
      if (title) { title.textContent = "The export did not finish"; }
      message.className = "callout callout-warn";
      if (retry) { retry.hidden = false; }
    }
  }
  function poll() {
    fetch(box.getAttribute("data-status-url"), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (job) {
        if (!job) { setTimeout(poll, 2000); return; }
        show(job);
        if (job.active) { setTimeout(poll, 700); }
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  if (box.getAttribute("data-active") === "yes") { poll(); }
})();
