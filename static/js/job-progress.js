// Poll a background job (a PDF export, an EQA pack) and move its progress bar until what it
// makes is ready (then show the download), or say plainly that it failed and offer "Try again".
// Polling stops either way.
//
// The page marks the job's box with data-job-progress, data-status-url (JSON: progress,
// message, active, failed, download) and data-active="yes" while it runs; data-failed-title and,
// optionally, data-ready-title are the heading's words then (a ready job's bar gives way to its
// heading). The parts are marked data-job-part="title | bar | message | download | link | retry |
// hint" (retry: the "Try again" button, whose form is shown); any but bar and message may be
// left out.
(function () {
  "use strict";
  var box = document.querySelector("[data-job-progress]");
  if (!box || box.getAttribute("data-active") !== "yes") { return; }
  function part(name) { return document.querySelector('[data-job-part="' + name + '"]'); }
  var title = part("title");
  var bar = part("bar");
  var message = part("message");
  var download = part("download");
  var link = part("link");
  var retry = part("retry");
  if (retry && retry.form) { retry = retry.form; }
  var hint = part("hint");
  var readyTitle = box.getAttribute("data-ready-title");
  var failedTitle = box.getAttribute("data-failed-title");
  function show(job) {
    if (!job.active && hint) { hint.hidden = true; }
    bar.value = job.progress;
    bar.textContent = job.progress + "%";
    message.textContent = job.message;
    if (job.download && link && download) {
      link.href = job.download;
      download.hidden = false;
      if (readyTitle) {
        bar.hidden = true;
        if (title) { title.textContent = readyTitle; }
      }
    }
    if (job.failed) {
      bar.hidden = true;
      if (title && failedTitle) { title.textContent = failedTitle; }
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
  poll();
})();
