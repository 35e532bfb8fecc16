// Poll an export job and move the progress bar until the signed PDF is ready.
(function () {
  "use strict";
  var box = document.getElementById("export-job");
  if (!box) { return; }
  var bar = document.getElementById("export-progress");
  var message = document.getElementById("export-message");
  var download = document.getElementById("export-download");
  var link = document.getElementById("export-link");
  function poll() {
    fetch(box.getAttribute("data-status-url"), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (job) {
        if (!job) { setTimeout(poll, 2000); return; }
        bar.value = job.progress;
        bar.textContent = job.progress + "%";
        message.textContent = job.message;
        if (job.download) { link.href = job.download; download.hidden = false; }
        if (job.status !== "done" && job.status !== "failed") { setTimeout(poll, 700); }
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  poll();
})();
