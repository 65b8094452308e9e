// Search page: "select all" ticks every result (link a whole officer + time span at once).
"use strict";
(function () {
  var all = document.getElementById("select-all");
  if (!all) return;
  all.addEventListener("change", function () {
    document.querySelectorAll("#results input[name=sha]").forEach(function (c) {
      c.checked = all.checked;
    });
  });
})();
// Discs page: follow a running disc job (the kiosk's status includes run/disc-status.json),
// reload once the job has finished so the images and labels show.
(function () {
  var live = document.getElementById("disc-live");
  if (!live || live.getAttribute("data-running") !== "1") return;
  var text = document.getElementById("disc-text"), bar = document.getElementById("disc-bar");
  function poll() {
    fetch("/api/status", {cache: "no-store"}).then(function (r) { return r.json(); }).then(function (v) {
      var d = v.disc;
      if (d) {
        text.textContent = "任务 / job " + d.job_id + ": " + d.phase_text + " " + d.disc_no + d.copy;
        bar.style.width = (d.total ? Math.min(100, 100 * d.done / d.total) : 0).toFixed(1) + "%";
        setTimeout(poll, 700);
      } else {
        location.reload();
      }
    }).catch(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 500);
})();
