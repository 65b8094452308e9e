// Kiosk: one tile per dock slot, pushed by server-sent events (/api/status/stream).
// Data only ever reaches the page through textContent (never as markup). The stream is
// watched: no event (status or ping) for 40 s, or an error, and it is closed and reopened,
// so the screen stays right across daemon and web restarts and days left open.
"use strict";
(function () {
  var slotsEl = document.getElementById("slots");
  var emptyEl = document.getElementById("empty");
  var bannerEl = document.getElementById("banner");
  var connEl = document.getElementById("conn");
  var discEl = document.getElementById("disc");
  var soundEl = document.getElementById("sound");
  var tiles = {};       // slot -> element
  var lastState = {};   // slot -> "safe" | "alert" | "busy", to play a sound on a change
  var es = null, lastEvent = 0, retryTimer = null;

  soundEl.checked = localStorage.getItem("kiosk.sound") === "1";
  soundEl.addEventListener("change", function () {
    localStorage.setItem("kiosk.sound", soundEl.checked ? "1" : "0");
  });

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function bytes(n) {
    if (typeof n !== "number") return "?";
    var u = ["B", "KB", "MB", "GB", "TB"], i = 0;
    while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
    return (i ? n.toFixed(1) : n.toFixed(0)) + " " + u[i];
  }
  function duration(s) {
    if (typeof s !== "number") return "估算中 / estimating";
    s = Math.round(s);
    if (s < 60) return s + " 秒 / s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + " 分 " + (s % 60) + " 秒 / " + m + " min";
    return Math.floor(m / 60) + " 小时 " + (m % 60) + " 分 / " + Math.floor(m / 60) + " h " + (m % 60) + " min";
  }
  var sndCtx = null;
  function beep(kind) {
    if (!soundEl.checked) return;
    try {
      sndCtx = sndCtx || new (window.AudioContext || window.webkitAudioContext)();
      var tones = kind === "alert" ? [440, 330, 440, 330] : [660, 880];
      tones.forEach(function (f, i) {
        var o = sndCtx.createOscillator(), g = sndCtx.createGain();
        o.frequency.value = f; o.connect(g); g.connect(sndCtx.destination);
        var t = sndCtx.currentTime + i * 0.22;
        g.gain.setValueAtTime(0.2, t); g.gain.setValueAtTime(0, t + 0.18);
        o.start(t); o.stop(t + 0.2);
      });
    } catch (e) { /* no audio on this screen */ }
  }

  function tile(s) {
    var state = s.safe_to_undock ? (s.attention ? "alert" : "safe") : (s.attention ? "alert" : "busy");
    var t = el("section", "tile " + state);
    t.setAttribute("data-slot", s.slot);
    t.setAttribute("data-phase", s.phase);
    t.setAttribute("data-bytes-done", s.bytes_done || 0);
    t.setAttribute("data-bytes-total", s.bytes_total || 0);
    t.setAttribute("data-safe", s.safe_to_undock ? "1" : "0");
    var r1 = el("div", "row");
    r1.appendChild(el("span", "slotname", "插槽 / slot " + s.slot));
    r1.appendChild(el("span", "device", s.device_id ? "记录仪 / recorder " + s.device_id : ""));
    t.appendChild(r1);
    var off = el("div", "officer");
    off.appendChild(document.createTextNode(s.officer_name || (s.officer_id ? "" : "—") + " "));
    if (s.officer_id) off.appendChild(el("span", "cert", " 执法证号 " + s.officer_id));
    t.appendChild(off);
    var ph = el("div", "phase", s.phase_zh + " ");
    ph.appendChild(el("small", "", s.phase_en));
    t.appendChild(ph);
    if (s.phase === "copying" || s.phase === "mounting" || s.phase === "clearing") {
      var total = s.bytes_total || 0, done = s.bytes_done || 0;
      var bar = el("div", "bar"), fill = el("div");
      fill.style.width = (total ? Math.min(100, 100 * done / total) : 0).toFixed(1) + "%";
      bar.appendChild(fill); t.appendChild(bar);
      t.appendChild(el("div", "nums",
        "文件 / files " + (s.files_done || 0) + "/" + (s.files_total === null || s.files_total === undefined ? "?" : s.files_total) +
        " · " + bytes(done) + " / " + bytes(total) +
        (s.phase === "copying" ? " · 剩余 / left " + duration(s.eta_s) : "")));
    }
    var facts = el("div", "facts");
    if (typeof s.battery_pct === "number") {
      facts.appendChild(el("span", s.battery_pct < 20 ? "bad" : "", "电量 / battery " + s.battery_pct + "%"));
    }
    if (typeof s.drift_s === "number") {
      facts.appendChild(el("span", Math.abs(s.drift_s) > 3 ? "bad" : "",
        "时钟偏差 / clock " + (s.drift_s >= 0 ? "+" : "") + s.drift_s.toFixed(1) + " s"));
    }
    if (typeof s.cleared === "number" && s.safe_to_undock) {
      facts.appendChild(el("span", "", "已清除 / cleared " + s.cleared));
    }
    t.appendChild(facts);
    if (s.flags.length) {
      var ul = el("ul", "flags");
      s.flags.forEach(function (f) {
        var li = el("li", f.attention ? "attention" : "", f.message);
        if (f.action) li.appendChild(el("span", "do", "→ " + f.action));
        ul.appendChild(li);
      });
      t.appendChild(ul);
    }
    if (s.safe_to_undock) {
      var u = el("div", "undock", "可以拔出");
      u.appendChild(el("small", "", "safe to undock"));
      t.appendChild(u);
    } else {
      t.appendChild(el("div", "wait", "请勿拔出 / do not undock"));
    }
    return [t, state];
  }

  function render(view) {
    var d = view.daemon || {};
    if (!d.running) {
      bannerEl.hidden = false;
      bannerEl.textContent = "采集站服务未运行，请勿插入记录仪，请联系管理员 / the station's service is not running: do not dock, ask an administrator";
    } else {
      bannerEl.hidden = true;
    }
    var seen = {};
    (view.slots || []).forEach(function (s) {
      seen[s.slot] = true;
      var made = tile(s), t = made[0], state = made[1];
      if (tiles[s.slot]) slotsEl.replaceChild(t, tiles[s.slot]); else slotsEl.appendChild(t);
      tiles[s.slot] = t;
      if (lastState[s.slot] && lastState[s.slot] !== state && state !== "busy") beep(state);
      lastState[s.slot] = state;
    });
    Object.keys(tiles).forEach(function (k) {
      if (!seen[k]) { slotsEl.removeChild(tiles[k]); delete tiles[k]; delete lastState[k]; }
    });
    (view.slots || []).forEach(function (s) { slotsEl.appendChild(tiles[s.slot]); });  // slot order
    emptyEl.hidden = Object.keys(tiles).length > 0;
    if (view.disc) {
      discEl.hidden = false;
      discEl.textContent = "光盘制作 / disc job " + view.disc.job_id + ": " + view.disc.phase_text +
        " " + view.disc.disc_no + view.disc.copy + " " + bytes(view.disc.done) + " / " + bytes(view.disc.total);
    } else { discEl.hidden = true; }
  }

  function connect() {
    if (es) es.close();
    retryTimer = null;
    es = new EventSource("/api/status/stream");
    lastEvent = Date.now();
    es.addEventListener("status", function (ev) {
      lastEvent = Date.now();
      connEl.textContent = "已连接 / live"; connEl.className = "conn";
      try { render(JSON.parse(ev.data)); } catch (e) { /* a bad frame: wait for the next */ }
    });
    es.addEventListener("ping", function () { lastEvent = Date.now(); });
    es.onerror = function () {
      connEl.textContent = "连接中断，正在重连 / reconnecting…"; connEl.className = "conn down";
      if (es.readyState === EventSource.CLOSED && !retryTimer) retryTimer = setTimeout(connect, 2000);
    };
  }
  setInterval(function () {   // watchdog: a silent stream is a dead stream
    if (Date.now() - lastEvent > 40000 && !retryTimer) connect();
  }, 5000);

  var fmt = new Intl.DateTimeFormat("zh-CN", {timeZone: document.body.dataset.tz || "Asia/Shanghai", hour12: false,
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit"});
  var clockEl = document.getElementById("clock");
  var zoneName = fmt.resolvedOptions().timeZone === "Asia/Shanghai" ? " 北京时间" : "";
  function tick() { clockEl.textContent = fmt.format(new Date()) + zoneName; }
  tick(); setInterval(tick, 1000);
  connect();
})();
