// trainmq console: local times and live refresh. Pages read fine without it.
(function () {
  "use strict";

  function pad(n) { return String(n).padStart(2, "0"); }

  // <time datetime="...Z" title="UTC ..."> shows the viewer's local time; UTC stays on hover.
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (node) {
      var when = new Date(node.getAttribute("datetime"));
      if (isNaN(when.getTime())) { return; }
      node.textContent = when.getFullYear() + "-" + pad(when.getMonth() + 1) + "-" +
        pad(when.getDate()) + " " + pad(when.getHours()) + ":" + pad(when.getMinutes()) +
        ":" + pad(when.getSeconds());
      node.classList.add("local");
    });
  }

  // Each element with an id and data-refresh="SECONDS" is replaced by its newer self,
  // fetched from the same address, unless the reader is working inside it.
  function refresh(node) {
    var seconds = Number(node.getAttribute("data-refresh")) || 5;
    var id = node.id;
    window.setInterval(function () {
      if (document.hidden) { return; }
      var current = document.getElementById(id);
      if (!current || current.contains(document.activeElement)) { return; }
      fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (text) {
          if (text === null) { return; }
          var fresh = new DOMParser().parseFromString(text, "text/html").getElementById(id);
          var now = document.getElementById(id);
          if (!fresh || !now || now.contains(document.activeElement)) { return; }
          now.innerHTML = fresh.innerHTML;
          now.setAttribute("data-refreshed", String(Date.now()));
          localTimes(now);
        })
        .catch(function () { /* the server is restarting: try again next time */ });
    }, seconds * 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    document.querySelectorAll("[data-refresh][id]").forEach(refresh);
  });
})();
