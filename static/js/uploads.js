// Evidence files: drag and drop, paste, and a progress bar for each file.
//
// Progressive: without this script the form is a plain multipart form with a file picker, and
// it still works. With it, files can be dropped on the box or pasted (a screenshot, a photo
// copied on a phone), several at a time and in several goes; each is listed with its size, a
// "Remove" button and, while the form is sent, its own progress bar. A file over the size
// limit, or one too many, is refused in the list with the reason before anything is sent. The
// form is then sent with XMLHttpRequest, whose upload events say how many bytes have gone; as a
// multipart body carries the files in order, those bytes tell how far each file has got. The
// server answers a redirect as JSON to this script (header X-Upload), so the next page and its
// message open as usual; a form with errors replaces the page, as a normal post would.
(function () {
  "use strict";
  var box = document.querySelector("[data-dropzone]");
  var input = box && box.querySelector("input[type=file]");
  if (!input || !window.FormData || !window.DataTransfer) { return; }
  var form = input.form;
  var maxBytes = parseInt(box.dataset.maxBytes, 10) || 0;
  var maxFiles = parseInt(box.dataset.maxFiles, 10) || 0;
  var chosen = [];  // {file, row, bar, status, error}
  var pasted = 0;

  var zone = document.createElement("div");
  zone.className = "dropzone";
  zone.innerHTML = '<p class="dropzone-text"><strong>Drag files here</strong> or paste a ' +
    'photo or screenshot, or <span class="dropzone-choose"></span></p>';
  var list = document.createElement("ul");
  list.className = "upload-list";
  list.setAttribute("aria-live", "polite");
  input.parentNode.insertBefore(zone, input);
  // The browser's own picker button says "1 file" or the last name picked, which is wrong once
  // files are dropped and pasted too: keep it out of sight and offer a button of ours instead.
  var choose = document.createElement("button");
  choose.type = "button";
  choose.className = "button button-small";
  choose.textContent = "choose files";
  choose.addEventListener("click", function () { input.click(); });
  zone.querySelector(".dropzone-choose").appendChild(choose);
  zone.appendChild(input);
  // A phone's camera or recorder, straight away: a second picker with `capture`. Desktop
  // browsers ignore `capture` and open the file picker, so the button is for touch screens.
  if (box.dataset.captureAccept && window.matchMedia("(pointer: coarse)").matches) {
    var camera = document.createElement("input");
    camera.type = "file";
    camera.accept = box.dataset.captureAccept;
    camera.setAttribute("capture", box.dataset.captureFacing || "environment");
    camera.className = "visually-hidden";
    camera.tabIndex = -1;
    camera.setAttribute("aria-hidden", "true");
    camera.addEventListener("change", function () {
      add(Array.prototype.slice.call(camera.files));
      camera.value = "";
    });
    var shoot = document.createElement("button");
    shoot.type = "button";
    shoot.className = "button button-small dropzone-capture";
    shoot.textContent = box.dataset.captureLabel || "Take a photo";
    shoot.addEventListener("click", function () { camera.click(); });
    zone.insertBefore(shoot, zone.querySelector(".dropzone-text").nextSibling);
    zone.appendChild(camera);
  }
  zone.appendChild(list);
  input.classList.add("visually-hidden");
  input.tabIndex = -1;

  function sizeText(bytes) {
    if (bytes >= 1048576) { return (bytes / 1048576).toFixed(1) + " MB"; }
    if (bytes >= 1024) { return Math.round(bytes / 1024) + " KB"; }
    return bytes + " bytes";
  }

  function sync() {
    var transfer = new DataTransfer();
    chosen.forEach(function (item) { if (!item.error) { transfer.items.add(item.file); } });
    input.files = transfer.files;
    zone.classList.toggle("has-files", chosen.length > 0);
  }

  function remove(item) {
    chosen.splice(chosen.indexOf(item), 1);
    list.removeChild(item.row);
    sync();
    input.focus();
  }

  function add(files) {
    Array.prototype.forEach.call(files, function (file) {
      if (chosen.some(function (c) {
        return c.file.name === file.name && c.file.size === file.size &&
          c.file.lastModified === file.lastModified;
      })) { return; }  // the same file picked twice
      var item = {file: file, error: ""};
      var accepted = chosen.filter(function (c) { return !c.error; }).length;
      if (file.size === 0) {
        item.error = "This file is empty.";
      } else if (maxBytes && file.size > maxBytes) {
        item.error = "Too large: the limit is " + sizeText(maxBytes) + " a file.";
      } else if (maxFiles && accepted >= maxFiles) {
        item.error = "Too many files: up to " + maxFiles + " at a time.";
      }
      var row = document.createElement("li");
      row.className = "upload-item" + (item.error ? " upload-refused" : "");
      var name = document.createElement("span");
      name.className = "upload-name";
      name.textContent = file.name;
      var size = document.createElement("span");
      size.className = "upload-size";
      size.textContent = sizeText(file.size);
      var status = document.createElement("span");
      status.className = "upload-status";
      status.textContent = item.error || "Ready to upload";
      var bar = document.createElement("progress");
      bar.max = 100;
      bar.value = 0;
      bar.hidden = true;
      bar.setAttribute("aria-label", "Upload of " + file.name);
      var button = document.createElement("button");
      button.type = "button";
      button.className = "link-button upload-remove";
      button.textContent = "Remove";
      var hidden = document.createElement("span");
      hidden.className = "visually-hidden";
      hidden.textContent = " " + file.name;
      button.appendChild(hidden);
      button.addEventListener("click", function () { remove(item); });
      row.appendChild(name);
      row.appendChild(size);
      row.appendChild(status);
      row.appendChild(bar);
      row.appendChild(button);
      list.appendChild(row);
      item.row = row;
      item.bar = bar;
      item.status = status;
      chosen.push(item);
    });
    sync();
  }

  input.addEventListener("change", function () {
    // The picker replaces the input's files: keep what was chosen before and add the new ones.
    var picked = Array.prototype.slice.call(input.files);
    add(picked);
  });
  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (event) {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (type) {
    zone.addEventListener(type, function () { zone.classList.remove("dragging"); });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files.length) { add(event.dataTransfer.files); }
  });
  // A file dropped beside the box must not make the browser leave the half-filled form.
  window.addEventListener("dragover", function (event) { event.preventDefault(); });
  window.addEventListener("drop", function (event) { event.preventDefault(); });
  document.addEventListener("paste", function (event) {
    var files = event.clipboardData && event.clipboardData.files;
    if (!files || !files.length) { return; }
    event.preventDefault();
    var named = Array.prototype.map.call(files, function (file) {
      // Pasted images are all called "image.png": give each its own name.
      pasted += 1;
      var extension = (file.type.split("/")[1] || "png").replace("jpeg", "jpg");
      return new File([file], "pasted-" + pasted + "." + extension,
                      {type: file.type, lastModified: Date.now()});
    });
    add(named);
  });

  function showProgress(loaded, total) {
    // The body is the other fields (small) and then the files in order: spread the bytes sent
    // over the files, from the end of the body backwards.
    var sending = chosen.filter(function (c) { return !c.error; });
    var filesBytes = sending.reduce(function (sum, c) { return sum + c.file.size; }, 0);
    var offset = Math.max(0, total - filesBytes);
    sending.forEach(function (item) {
      var done = Math.min(item.file.size, Math.max(0, loaded - offset));
      var percent = item.file.size ? Math.round(100 * done / item.file.size) : 100;
      item.bar.value = percent;
      item.status.textContent = percent >= 100 ? "Uploaded, checking…" : "Uploading " + percent + "%";
      offset += item.file.size;
    });
  }

  function failed(message) {
    chosen.forEach(function (item) {
      if (!item.error) { item.status.textContent = message; item.bar.hidden = true; }
    });
    delete form.dataset.sending;
    form.querySelectorAll("button[aria-disabled=true]").forEach(function (b) {
      b.disabled = false;
      b.removeAttribute("aria-disabled");
    });
  }

  form.addEventListener("submit", function (event) {
    if (form.dataset.sending === "yes" || !chosen.some(function (c) { return !c.error; })) {
      return;  // nothing to upload: the plain post (and the double-send guard) do the job
    }
    event.preventDefault();
    var data = new FormData(form, event.submitter || undefined);
    var request = new XMLHttpRequest();
    request.open("POST", form.action || window.location.href);
    request.setRequestHeader("X-Upload", "1");
    chosen.forEach(function (item) {
      if (!item.error) { item.bar.hidden = false; item.status.textContent = "Uploading 0%"; }
    });
    request.upload.addEventListener("progress", function (progress) {
      if (progress.lengthComputable) { showProgress(progress.loaded, progress.total); }
    });
    request.addEventListener("load", function () {
      var type = request.getResponseHeader("Content-Type") || "";
      if (type.indexOf("application/json") === 0) {
        var answer = JSON.parse(request.responseText);
        if (answer.redirect) { window.location.assign(answer.redirect); return; }
      }
      if (type.indexOf("text/html") === 0) {
        document.open();
        document.write(request.responseText);
        document.close();
        return;
      }
      failed(request.status === 413 ? "Too large to send: choose fewer or smaller files."
        : "The upload was not accepted (" + request.status + "). Try again.");
    });
    request.addEventListener("error", function () {
      failed("The upload stopped: check your connection, then save again.");
    });
    request.send(data);
  });
})();
