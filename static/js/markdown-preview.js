// Live preview for Markdown text areas: <textarea data-markdown-preview="ID">. The server renders
// with the same sanitiser as the saved page, so the preview shows exactly what will be kept.
(function () {
  "use strict";
  var token = document.querySelector('meta[name="csrf-token"]');
  document.querySelectorAll("textarea[data-markdown-preview]").forEach(function (area) {
    var box = document.getElementById(area.getAttribute("data-markdown-preview"));
    if (!box || !token) { return; }
    var body = box.querySelector(".md-preview-body");
    var timer = null;
    var last = null;
    var leaving = false;
    // Once the form is sent, no preview request may start: its response would carry the
    // session as it was before the save and could bring back a message already shown.
    if (area.form) {
      area.form.addEventListener("submit", function () { leaving = true; clearTimeout(timer); });
    }
    function render() {
      if (leaving) { return; }
      var text = area.value;
      if (text === last) { return; }
      last = text;
      if (!text.trim()) { box.hidden = true; return; }
      fetch(box.getAttribute("data-url") || "/markdown-preview", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": token.content },
        body: JSON.stringify({ text: text })
      }).then(function (response) {
        return response.ok ? response.json() : null;
      }).then(function (data) {
        if (data && area.value === text) {
          body.innerHTML = data.html; // sanitised by the server's allow-list
          box.hidden = false;
        }
      }).catch(function () { /* the form still works without a preview */ });
    }
    area.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(render, 350);
    });
    render();
  });
})();
