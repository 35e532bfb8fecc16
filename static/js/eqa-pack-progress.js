// Poll an EQA pack job and move its progress bar until the ZIP is ready (then show the
// download button), or say plainly that it failed and offer "Try again". Polling stops either way.
(function () {
  "use strict";
  var box = document.getElementById("pack-job");
  if (!box || box.getAttribute("data-active") !== "yes") { return; }
  var bar = document.getElementById("pack-progress");
  var title = document.getElementById("pack-job-title");
  var message = document.getElementById("pack-message");
  var download = document.getElementById("pack-download");
  var link = document.getElementById("pack-link");
  var retry = document.getElementById("pack-retry");
  var hint = document.getElementById("pack-hint");
  function show(job) {
    if (!job.active) { hint.hidden = true; }
    bar.value = job.progress;
    bar.textContent = job.progress + "%";
    message.textContent = job.message;
    if (job.download) {
      link.href = job.download;
      download.hidden = false;
      bar.hidden = true;
      title.textContent = "Your pack is ready";
    }
    if (job.failed) {
      bar.hidden = true;
      title.textContent = "The pack was not made";
      message.className = "callout callout-warn";
      retry.hidden = false;
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
  poll();
})();
