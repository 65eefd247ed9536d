// seq2attn serve: the page. Plain JavaScript, no libraries, no network but this server's /v1 API.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { info: null, result: null, active: -1 };

// viridis at the five stops the terminal heatmap uses (seq2attn.inference.alignment._SHADES)
const SHADES = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function shade(w) {
  const x = Math.min(Math.max(w, 0), 1) * (SHADES.length - 1);
  const i = Math.min(Math.floor(x), SHADES.length - 2);
  const f = x - i;
  return SHADES[i].map((a, k) => Math.round(a + (SHADES[i + 1][k] - a) * f));
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "style") node.setAttribute("style", v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function pct(w) { return `${Math.round(w * 100)}%`; }

async function api(path, body) {
  const response = await fetch(path, body === undefined ? {} : {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) {
    const message = data && data.error ? data.error : `HTTP ${response.status}`;
    throw new Error(message);
  }
  return data;
}

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function loadInfo() {
  try {
    const info = await api("/v1/info");
    state.info = info;
    const langs = info.languages.src && info.languages.tgt ? `${info.languages.src} → ${info.languages.tgt}, ` : "";
    const dev = info.weights && info.weights.dev_bleu != null ? `, dev BLEU ${Number(info.weights.dev_bleu).toFixed(2)}` : "";
    $("model-info").textContent = `${info.name}: ${langs}${info.backend}${info.decoder ? " + " + info.decoder : ""} ` +
      `(${info.engine})${dev}`;
    $("beam").placeholder = String(info.decode.beam);
    $("beam").max = String(info.limits.max_beam);
    if (info.alignment.selectable) {
      const layer = $("layer"), head = $("head");
      layer.append(el("option", { value: "" }, "last"));
      for (let i = 0; i < info.alignment.layers; i++) layer.append(el("option", { value: String(i) }, String(i)));
      head.append(el("option", { value: "" }, "average"));
      for (let i = 0; i < info.alignment.heads; i++) head.append(el("option", { value: String(i) }, String(i)));
      if (info.alignment.layer != null) layer.value = String(info.alignment.layer);
      if (info.alignment.head != null) head.value = String(info.alignment.head);
      $("selector").hidden = false;
    }
  } catch (e) {
    $("model-info").textContent = "";
    showError(`cannot describe the model: ${e.message}`);
  }
}

function selection() {
  const out = {};
  if (state.info && state.info.alignment.selectable) {
    if ($("layer").value !== "") out.layer = Number($("layer").value);
    if ($("head").value !== "") out.head = Number($("head").value);
  }
  return out;
}

async function run() {
  const source = $("source").value.trim();
  if (!source) { showError("Type a source sentence."); return; }
  const forced = $("forced").checked;
  const target = $("target").value.trim();
  if (forced && !target) { showError("Type the translation to align, or untick forced alignment."); return; }
  showError("");
  $("go").disabled = true;
  try {
    let result;
    if (forced) {
      const data = await api("/v1/align", { source, target, ...selection() });
      const a = data.alignments[0];
      result = { forced: true, hyp: a.hyp, score: a.score, pieces: a.pieces, words: a.words, nbest: null };
    } else {
      const body = { text: source, attention: true, ...selection() };
      if ($("beam").value !== "") body.beam = Number($("beam").value);
      const nbest = Number($("nbest").value || "1");
      if (nbest > 1) body.nbest = nbest;
      const data = await api("/v1/translate", body);
      const t = data.translations[0];
      result = { forced: false, hyp: t.hyp, score: t.score, pieces: t.pieces, words: t.words, nbest: t.nbest,
                 options: data.options };
    }
    state.result = result;
    render();
  } catch (e) {
    showError(e.message);
  } finally {
    $("go").disabled = false;
  }
}

function matrix() {
  if (!state.result) return null;
  return $("subword").checked ? state.result.pieces : state.result.words;
}

function render() {
  const r = state.result;
  $("result").hidden = false;
  $("result-title").textContent = r.forced ? "Given translation (forced alignment)" : "Translation";
  $("score").textContent = `log-probability ${r.score.toFixed(3)}` +
    (r.options ? ` · beam ${r.options.beam}${r.options.beam === 1 ? " (greedy)" : ""}` : "");
  const list = $("nbest-list");
  list.replaceChildren();
  if (r.nbest && r.nbest.length > 1) {
    for (const h of r.nbest) list.append(el("li", {}, h.hyp, el("span", { class: "score" }, h.score.toFixed(3))));
    list.hidden = false;
  } else {
    list.hidden = true;
  }
  state.active = -1;
  drawSentence();
  drawHeatmap();
  focus(-1);
}

function drawSentence() {
  const m = matrix();
  const box = $("translation");
  box.replaceChildren();
  if (!m || m.tgt.length === 0) { box.textContent = state.result.hyp || "(empty)"; return; }
  m.tgt.forEach((word, i) => {
    const span = el("span", { class: "word", "data-row": String(i), tabindex: "0" }, word);
    span.addEventListener("mouseenter", () => focus(i));
    span.addEventListener("click", () => focus(i));
    span.addEventListener("focus", () => focus(i));
    box.append(span, $("subword").checked ? "\u2009" : " ");
  });
}

function drawHeatmap() {
  const m = matrix();
  const table = $("heatmap");
  table.replaceChildren();
  if (!m || m.tgt.length === 0 || m.src.length === 0) {
    table.append(el("tr", {}, el("td", { class: "muted" }, "no attention to show (empty sentence)")));
    return;
  }
  table.classList.toggle("vertical", m.src.some((w) => w.length > 3));  // short labels stay upright
  const head = el("tr", {}, el("th", { class: "corner" }));
  m.src.forEach((word, j) => head.append(el("th", { class: "src", "data-col": String(j), title: word, scope: "col" },
                                            el("span", {}, word))));
  table.append(el("thead", {}, head));
  const body = el("tbody");
  m.weights.forEach((row, i) => {
    const tr = el("tr", { "data-row": String(i) },
                  el("th", { class: "tgt", scope: "row", title: m.tgt[i], tabindex: "0" }, m.tgt[i]));
    row.forEach((w, j) => {
      const [r, g, b] = shade(w);
      const dark = 0.299 * r + 0.587 * g + 0.114 * b > 140;
      const td = el("td", { title: `${m.tgt[i]} → ${m.src[j]}: ${pct(w)}`,
                            style: w < 0.005 ? "" : `background: rgb(${r},${g},${b}); color: ${dark ? "#000" : "#fff"}` },
                    w < 0.005 ? "·" : String(Math.round(w * 100)));
      tr.append(td);
    });
    tr.addEventListener("mouseenter", () => focus(i));
    tr.addEventListener("click", () => focus(i));
    tr.firstChild.addEventListener("focus", () => focus(i));
    body.append(tr);
  });
  table.append(body);
}

// highlight the source words target word i attended to, with their weights
function focus(i) {
  const m = matrix();
  state.active = i;
  for (const node of document.querySelectorAll("#heatmap tr.active, #translation .word.active")) {
    node.classList.remove("active");
  }
  for (const th of document.querySelectorAll("#heatmap th.src")) {
    th.classList.remove("hl", "best");
    th.style.removeProperty("--w");
  }
  const box = $("focus");
  box.replaceChildren();
  if (!m || i < 0 || i >= m.tgt.length) {
    box.textContent = "No target word chosen.";
    return;
  }
  const row = m.weights[i];
  document.querySelector(`#heatmap tbody tr[data-row="${i}"]`)?.classList.add("active");
  document.querySelector(`#translation .word[data-row="${i}"]`)?.classList.add("active");
  let best = -1;
  row.forEach((w, j) => { if (best < 0 || w > row[best]) best = j; });
  const heads = document.querySelectorAll("#heatmap th.src");
  row.forEach((w, j) => {
    if (w >= 0.05) {
      heads[j].classList.add("hl");
      heads[j].style.setProperty("--w", String(Math.min(1, 0.25 + w)));
    }
  });
  if (best >= 0 && row[best] > 0) heads[best].classList.add("best");
  box.append(el("span", {}, `“${m.tgt[i]}” attended to:`));
  const order = row.map((w, j) => [w, j]).filter(([w]) => w >= 0.01).sort((a, b) => b[0] - a[0]);
  for (const [w, j] of order.slice(0, 8)) {
    box.append(el("span", { class: "chip", style: `background: rgba(255, 176, 0, ${Math.min(1, 0.15 + w)})` },
                  `${m.src[j]} `, el("b", {}, pct(w))));
  }
  if (order.length === 0) box.append(el("span", {}, "mostly the end of the source (</s>)"));
}

$("form").addEventListener("submit", (e) => { e.preventDefault(); run(); });
for (const id of ["source", "target"]) {
  $(id).addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); run(); }
  });
}
$("forced").addEventListener("change", () => {
  const forced = $("forced").checked;
  $("target-box").hidden = !forced;
  $("search-options").hidden = forced;
  $("go").textContent = forced ? "Align" : "Translate";
});
$("subword").addEventListener("change", () => { if (state.result) { const i = state.active; drawSentence(); drawHeatmap(); focus(i); } });
for (const id of ["layer", "head"]) {
  $(id).addEventListener("change", () => { if (state.result && $("source").value.trim()) run(); });
}
loadInfo();
