// The featx serve page: search by image (drop or pick a file) or by text, show the nearest rows.
// Plain JavaScript served by featx itself: no CDN, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("featx-token") || "", info: null, thumbs: [] };

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (state.token) h["Authorization"] = "Bearer " + state.token;
  return h;
}

async function api(path, options) {
  const opts = Object.assign({}, options || {});
  opts.headers = headers(opts.headers);
  const response = await fetch(path, opts);
  if (response.status === 401) {
    $("token-form").hidden = false;
    $("token").focus();
    throw new Error("this service needs a token: enter it above");
  }
  return response;
}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").classList.toggle("error", Boolean(isError));
}

function formatTime(seconds) {
  const s = Number(seconds);
  const m = Math.floor(s / 60);
  const rest = (s - 60 * m).toFixed(2).padStart(5, "0");
  return m + ":" + rest;
}

async function loadInfo() {
  try {
    const response = await api("/v1/info");
    if (!response.ok) throw new Error("cannot read /v1/info (" + response.status + ")");
    const info = await response.json();
    state.info = info;
    const rows = info.rows === null ? "embeddings only (no rows to search)" : info.rows + " rows";
    $("info").textContent = "model " + info.model + " · " + rows + " · " + (info.row_dim || info.dim) + " dims";
    $("text-form").hidden = !info.text_search;
    $("query").hidden = info.rows === null;
    $("token-form").hidden = true;
  } catch (err) {
    $("info").textContent = "";
    setStatus(err.message, true);
  }
}

// When in its file a row is: a video frame's time, a sound-track window, a frame number.
function whenText(hit) {
  if (hit.time_s !== undefined) return formatTime(hit.time_s);
  if (hit.start_s !== undefined) return formatTime(hit.start_s) + "\u2013" + formatTime(hit.end_s);
  if (hit.frame !== undefined) return "frame " + hit.frame;
  return "";
}

function clearResults() {
  for (const url of state.thumbs) URL.revokeObjectURL(url);
  state.thumbs = [];
  $("results").replaceChildren();
}

async function loadThumb(img, id) {
  try {
    const response = await api("/v1/rows/" + id + "/thumbnail");
    if (!response.ok) { img.alt = "no thumbnail"; img.classList.add("missing"); return; }
    const url = URL.createObjectURL(await response.blob());
    state.thumbs.push(url);
    img.src = url;
  } catch (err) {
    img.alt = "no thumbnail";
  }
}

function showResults(results) {
  clearResults();
  const list = $("results");
  results.forEach((hit, rank) => {
    const item = document.createElement("li");
    item.tabIndex = 0;
    const when = whenText(hit);
    const time = when ? " at " + when : "";
    item.setAttribute("aria-label", "Result " + (rank + 1) + ", score " + hit.score.toFixed(4) + ", " + hit.path + time);
    let img = null;
    if (hit.text !== undefined) {  // a row of text: the text instead of a picture
      const quote = document.createElement("blockquote");
      quote.className = "text";
      quote.textContent = hit.text;
      item.appendChild(quote);
    } else {
      img = document.createElement("img");
      img.className = "thumb";
      img.alt = hit.path;
      item.appendChild(img);
    }
    const score = document.createElement("div");
    score.className = "score";
    score.textContent = (rank + 1) + ". " + hit.score.toFixed(4);
    item.appendChild(score);
    if (when) {
      const t = document.createElement("div");
      t.className = "time";
      t.textContent = when;
      item.appendChild(t);
    }
    const path = document.createElement("div");
    path.className = "path";
    path.textContent = hit.path;
    item.appendChild(path);
    list.appendChild(item);
    if (img) loadThumb(img, hit.id);
  });
}

function searchOptions() {
  const k = Math.max(1, parseInt($("k").value, 10) || 12);
  const prefix = $("prefix").value.trim();
  return { k: k, prefix: prefix };
}

async function runSearch(body, what) {
  setStatus("Searching " + what + "…");
  try {
    const response = await api("/v1/search", body);
    const data = await response.json();
    if (!response.ok) {
      const detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
      throw new Error(detail || ("search failed (" + response.status + ")"));
    }
    showResults(data.results);
    setStatus(data.results.length + " results for " + what + " in " + data.took_ms + " ms");
  } catch (err) {
    setStatus(err.message, true);
  }
}

function searchImage(file) {
  if (!file) return;
  const preview = $("query-preview");
  preview.src = URL.createObjectURL(file);
  preview.alt = "query: " + file.name;
  preview.hidden = false;
  const form = new FormData();
  const opts = searchOptions();
  form.append("image", file, file.name);
  form.append("k", String(opts.k));
  if (opts.prefix) form.append("prefix", opts.prefix);
  runSearch({ method: "POST", body: form }, file.name);
}

function searchText(text) {
  const opts = searchOptions();
  const body = { text: text, k: opts.k };
  if (opts.prefix) body.prefix = opts.prefix;
  runSearch({ method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) },
            "\u201c" + text + "\u201d");
}

function setup() {
  const drop = $("drop");
  const file = $("file");
  drop.addEventListener("click", (event) => { if (event.target !== file) file.click(); });
  drop.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); file.click(); }
  });
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) searchImage(event.dataTransfer.files[0]);
  });
  file.addEventListener("change", () => searchImage(file.files[0]));
  $("text-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("text").value.trim();
    if (text) searchText(text);
  });
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("token").value;
    sessionStorage.setItem("featx-token", state.token);
    setStatus("");
    loadInfo();
  });
  // keyboard: arrow keys move between results
  $("results").addEventListener("keydown", (event) => {
    const items = Array.from($("results").children);
    const at = items.indexOf(document.activeElement);
    if (at < 0) return;
    if (event.key === "ArrowRight" || event.key === "ArrowDown") { event.preventDefault(); (items[at + 1] || items[at]).focus(); }
    if (event.key === "ArrowLeft" || event.key === "ArrowUp") { event.preventDefault(); (items[at - 1] || items[at]).focus(); }
  });
  loadInfo();
}

setup();
