/* MelaScan page script: upload (picker, camera, drag & drop) through the JSON API,
   this session's results in localStorage, confirmations, service worker.
   Plain JavaScript, no framework; every page also works without it. */
(function () {
  "use strict";

  var strings = {};
  try { strings = JSON.parse(document.getElementById("i18n").textContent); } catch (e) { /* no strings */ }
  function t(key) { return strings[key] || key; }

  /* ---------- this session's results (localStorage) ---------- */
  var STORE = "melascan.session";
  function loadSession() {
    // A new browser session (sessionStorage empty) starts a new list.
    var data = null;
    try {
      if (!sessionStorage.getItem(STORE + ".active")) {
        sessionStorage.setItem(STORE + ".active", "1");
        localStorage.removeItem(STORE);
      }
      data = JSON.parse(localStorage.getItem(STORE) || "[]");
    } catch (e) { data = []; }
    return Array.isArray(data) ? data : [];
  }
  function saveSession(items) {
    try { localStorage.setItem(STORE, JSON.stringify(items.slice(0, 50))); } catch (e) { /* storage full or disabled */ }
  }
  function rememberResult(item) {
    var items = loadSession().filter(function (x) { return x.id !== item.id; });
    items.unshift(item);
    saveSession(items);
  }
  function forgetResult(id) {
    saveSession(loadSession().filter(function (x) { return x.id !== id; }));
  }

  function renderSession() {
    var box = document.getElementById("session-results");
    if (!box) return;
    var items = loadSession();
    var list = box.querySelector(".session-list");
    list.textContent = "";
    items.forEach(function (item) {
      var li = document.createElement("li");
      var link = document.createElement("a");
      link.href = item.page;
      link.textContent = item.filename;
      var info = document.createElement("span");
      info.className = "muted";
      info.textContent = Math.round(item.probability * 100) + "% · " + t("level." + item.level);
      li.appendChild(link);
      li.appendChild(info);
      list.appendChild(li);
    });
    box.hidden = items.length === 0;
  }

  /* ---------- upload ---------- */
  function setupUpload(form) {
    var chosen = null;
    var dropzone = form.querySelector(".dropzone");
    var preview = form.querySelector(".preview");
    var nameBox = form.querySelector(".file-name");
    var errorBox = form.querySelector(".form-error");
    var progress = form.querySelector(".progress");
    var button = form.querySelector(".analyse-button");
    var maxBytes = parseInt(form.getAttribute("data-max-bytes"), 10) || 15 * 1024 * 1024;

    function showError(text) {
      errorBox.textContent = text;
      errorBox.hidden = !text;
    }

    function choose(file) {
      showError("");
      chosen = null;
      if (!file) return;
      if (file.type && file.type.indexOf("image/") !== 0) { showError(t("js.error.not_image")); return; }
      if (file.size > maxBytes) { showError(t("js.error.too_large")); return; }
      chosen = file;
      nameBox.textContent = file.name;
      if (preview) {
        if (preview.src && preview.src.indexOf("blob:") === 0) URL.revokeObjectURL(preview.src);
        preview.onerror = function () { preview.hidden = true; };
        preview.src = URL.createObjectURL(file);
        preview.hidden = false;
      }
    }

    form.querySelectorAll(".file-input").forEach(function (input) {
      input.addEventListener("change", function () { choose(input.files && input.files[0]); });
    });

    ["dragenter", "dragover"].forEach(function (name) {
      dropzone.addEventListener(name, function (e) { e.preventDefault(); dropzone.classList.add("dragover"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      dropzone.addEventListener(name, function (e) { e.preventDefault(); dropzone.classList.remove("dragover"); });
    });
    dropzone.addEventListener("drop", function (e) {
      var files = e.dataTransfer && e.dataTransfer.files;
      if (files && files.length) choose(files[0]);
    });

    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (!chosen) { if (!errorBox.textContent) showError(t("js.error.no_file")); return; }
      var body = new FormData();
      body.append("image", chosen, chosen.name || "photo.jpg");
      var lesion = form.querySelector("[name=lesion_id]");
      if (lesion && lesion.value) body.append("lesion_id", lesion.value);
      ["ruler_mm", "ruler_px", "mm_per_px"].forEach(function (name) {  // the optional image scale
        var field = form.querySelector("[name=" + name + "]");
        if (field && field.value.trim()) body.append(name, field.value.trim());
      });
      showError("");
      button.disabled = true;
      progress.hidden = false;
      fetch(form.getAttribute("data-api"), {
        method: "POST", body: body, credentials: "same-origin", headers: { "Accept": "application/json", "X-Requested-With": "fetch" }
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (response.status === 201 && data.links) {
            window.location.assign(data.links.page);
            return;
          }
          var err = data.error || {};
          var title = strings["error." + err.code + ".title"] || t("js.error.prefix");
          showError(title + (err.message ? ": " + err.message : ""));
          button.disabled = false;
          progress.hidden = true;
        });
      }).catch(function () {
        showError(navigator.onLine === false ? t("js.offline") : t("js.error.network"));
        button.disabled = false;
        progress.hidden = true;
      });
    });
  }

  /* ---------- confirmations, result registration ---------- */
  function setupConfirms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { e.preventDefault(); return; }
        var item = form.closest("[data-analysis]") || form.closest("[data-analysis-id]");
        if (item) forgetResult(item.getAttribute("data-analysis") || item.getAttribute("data-analysis-id"));
        if (form.querySelector("[name=confirm]")) saveSession([]);
      });
    });
  }

  function registerResult() {
    var result = document.querySelector(".result[data-analysis-id]");
    if (!result) return;
    var fileCell = document.querySelector(".kv dd");
    rememberResult({
      id: result.getAttribute("data-analysis-id"),
      page: window.location.pathname,
      filename: fileCell ? fileCell.textContent : "",
      probability: parseFloat(result.getAttribute("data-probability")) || 0,
      level: result.getAttribute("data-level")
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.js-upload").forEach(setupUpload);
    setupConfirms();
    registerResult();
    renderSession();
    if ("serviceWorker" in navigator && window.isSecureContext) {
      navigator.serviceWorker.register("/sw.js").catch(function () { /* optional */ });
    }
  });
})();
