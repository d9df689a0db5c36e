// The data-set page: overview, summaries, and the sortable, filterable, paged item table.
import { api, clear, el, fmt, header, pct, ready, showError, shown } from "/static/common.js";

const params = new URLSearchParams(location.search);
const state = {
  sort: params.get("sort") || "item",
  desc: params.get("desc") === "1" || params.get("desc") === "true",
  page: Number(params.get("page") || 0),
  q: params.get("q") || "",
  status: params.get("status") || "all",
  per: Number(params.get("per") || 50),
  slice: params.get("slice") || "",
  value: params.get("value") || "",
};
let info = null;
let seq = 0;

function saveState() {
  const p = new URLSearchParams();
  if (state.sort !== "item") p.set("sort", state.sort);
  if (state.desc) p.set("desc", "1");
  if (state.page) p.set("page", String(state.page));
  if (state.q) p.set("q", state.q);
  if (state.status !== "all") p.set("status", state.status);
  if (state.per !== 50) p.set("per", String(state.per));
  if (state.slice) { p.set("slice", state.slice); p.set("value", state.value); }
  const query = p.toString();
  history.replaceState(null, "", query ? `/?${query}` : "/");
}

// The badge shows the relative gap, the number its colour comes from (the absolute gap in
// its tooltip): green below 1 %, amber below 5 %, red above.
function gapBadge(gap, rel) {
  if (gap === null && rel === null) return el("span", { cls: "muted", text: "–" });
  if (rel === null) return el("span", { cls: "gap", title: "no relative gap (F(x) = F(x′))", text: fmt(gap, 2) });
  const level = Math.abs(rel) < 0.01 ? "good" : Math.abs(rel) < 0.05 ? "fair" : "poor";
  return el("span", { cls: `gap ${level}`, title: `gap ${fmt(gap, 3)} (relative ${pct(rel)})`,
    text: pct(rel) });
}

const CURVE_LABELS = { aopc: ["AOPC", "higher is better"], deletion: ["del.", "deletion area, lower is better"],
  insertion: ["ins.", "insertion area, higher is better"] };

function curvesOf(m) {
  return ((info && info.curves) || []).filter((c) => c.endsWith(`:${m}`)).map((c) => c.split(":")[0]);
}

// The query of the current view (sort, filter, slice), carried to the item page and exports.
function viewQuery() {
  const p = new URLSearchParams({ sort: state.sort, desc: state.desc ? "true" : "false",
    q: state.q, status: state.status });
  if (state.slice) { p.set("slice", state.slice); p.set("value", state.value); }
  return p.toString();
}

function sortHeader(label, key, title) {
  const active = state.sort === key;
  const arrow = active ? (state.desc ? " ▼" : " ▲") : "";
  return el("th", { cls: active ? "sortable active" : "sortable", title: title || `sort by ${label}`,
    "data-sort": key, "aria-sort": active ? (state.desc ? "descending" : "ascending") : "none" },
    el("button", { type: "button", text: label + arrow, on: { click: () => {
      if (state.sort === key) state.desc = !state.desc;
      // worst first: large gaps, errors and deletion areas; small AOPC and insertion areas
      else { state.sort = key; state.desc = /^(gap|rel_gap|error|deletion):/.test(key) || key === "output"; }
      state.page = 0;
      load();
    } } }));
}

function renderHead(methods) {
  const head = clear(document.querySelector("#items thead"));
  const top = el("tr", {},
    el("th", { colspan: 4, cls: "group", text: "" }),
    methods.map((m) => el("th", { colspan: 2 + curvesOf(m).length, cls: "group method", text: m })),
    el("th", { cls: "group", text: "" }));
  const row = el("tr", {},
    sortHeader("#", "item"), el("th", { text: "input" }),
    sortHeader(info && info.kind === "generation" ? "answer" : "class", "target_name"),
    sortHeader("F(x)", "output", "the model's score for the explained class"),
    methods.map((m) => [
      sortHeader("rel. gap", `rel_gap:${m}`, `sort by |relative completeness gap| of ${m}`),
      sortHeader("error", `error:${m}`, `sort by error estimate of ${m}`),
      curvesOf(m).map((c) => sortHeader(CURVE_LABELS[c][0], `${c}:${m}`, `sort by ${c} of ${m} (${CURVE_LABELS[c][1]})`))]),
    sortHeader("status", "status"));
  head.append(top, row);
}

function inputCell(r) {
  if (r.thumbnail) {
    return el("td", { cls: "thumb" }, el("img", { src: `/api/items/${r.item}/input.png`,
      alt: r.item_id, loading: "lazy", width: 48, height: 48 }));
  }
  return el("td", { cls: "snippet", text: r.text || r.item_id });
}

function renderRows(page) {
  const body = clear(document.querySelector("#items tbody"));
  for (const r of page.rows) {
    const link = `/item/${r.item}?${viewQuery()}`;
    const tr = el("tr", { cls: r.status, "data-item": r.item,
      on: { click: (ev) => { if (!ev.target.closest("a")) location.href = link; } } },
      el("td", { cls: "num" }, el("a", { href: link, text: String(r.item) })),
      inputCell(r),
      el("td", {}, el("div", { cls: "cls", text: r.target_name != null && info && info.kind === "generation"
        ? shown(r.target_name) : r.target_name ?? (r.target ?? "–") }),
        el("div", { cls: "muted small", text: r.item_id })),
      el("td", { cls: "num", text: fmt(r.output) }),
      page.methods.map((m) => {
        const v = r.methods[m] || {};
        return [el("td", { cls: "num" }, gapBadge(v.gap ?? null, v.relative_gap ?? null)),
          el("td", { cls: "num muted", text: fmt(v.error_estimate ?? null, 2) }),
          curvesOf(m).map((c) => el("td", { cls: "num", text: fmt(v[c] ?? null) }))];
      }),
      el("td", {}, el("span", { cls: `status ${r.status}`, title: r.error || "",
        text: r.status === "partial" ? "a method failed" : r.status })));
    body.append(tr);
  }
  if (!page.rows.length) body.append(el("tr", {}, el("td", { colspan: 5 + 2 * page.methods.length,
    cls: "empty", text: "No items match." })));
}

function renderPager(page) {
  const pager = clear(document.getElementById("pager"));
  const pages = Math.max(1, Math.ceil(page.total / page.per_page));
  const go = (p) => { state.page = p; load(); };
  pager.append(
    el("button", { type: "button", disabled: page.page === 0, text: "« first", on: { click: () => go(0) } }),
    el("button", { type: "button", disabled: page.page === 0, text: "‹ previous", on: { click: () => go(page.page - 1) } }),
    el("span", { cls: "muted", text: `page ${page.page + 1} of ${pages}` }),
    el("button", { type: "button", disabled: page.page + 1 >= pages, text: "next ›", on: { click: () => go(page.page + 1) } }),
    el("button", { type: "button", disabled: page.page + 1 >= pages, text: "last »", on: { click: () => go(pages - 1) } }));
  document.getElementById("count").textContent =
    `${page.total.toLocaleString()} of ${info.items.toLocaleString()} items`;
  const exports = clear(document.getElementById("export"));
  exports.append(el("span", { cls: "muted", text: "export this table: " }),
    el("a", { href: `/api/export.csv?${viewQuery()}`, download: "", id: "export-csv", text: "CSV" }), " · ",
    el("a", { href: `/api/export.parquet?${viewQuery()}`, download: "", id: "export-parquet", text: "Parquet" }));
  const chip = clear(document.getElementById("slice-chip"));
  if (state.slice) {
    chip.append(el("span", { cls: "chip", text: `${state.slice === "target_name" ? "class" : state.slice} = ${state.value || "(none)"}` }),
      el("button", { type: "button", text: "×", title: "show every item", on: { click: () => {
        state.slice = ""; state.value = ""; state.page = 0; load(); } } }));
  }
}

let first = null;  // the first page's request, started with /api/info

function itemsUrl() {
  const q = new URLSearchParams({ page: state.page, per_page: state.per, sort: state.sort,
    desc: state.desc ? "true" : "false", q: state.q, status: state.status });
  if (state.slice) { q.set("slice", state.slice); q.set("value", state.value); }
  return `/api/items?${q}`;
}

async function load() {
  saveState();
  const mine = ++seq;
  try {
    const request = first || api(itemsUrl());
    first = null;
    const page = await request;
    if (mine !== seq) return;  // a newer request superseded this one
    renderHead(page.methods);
    renderRows(page);
    renderPager(page);
    ready("table");
  } catch (err) {
    showError(document.getElementById("pager"), err);
  }
}

function renderOverview() {
  const box = document.getElementById("overview");
  const methods = info.method_params.map((m) => `${m.name}${m.params && Object.keys(m.params).length ? " " + JSON.stringify(m.params) : ""}`);
  box.append(el("h1", { text: info.name }),
    el("dl", { cls: "facts" },
      el("dt", { text: "model" }), el("dd", { text: info.model }),
      el("dt", { text: "items" }), el("dd", { text: `${info.items.toLocaleString()}${info.expected_items !== null && info.expected_items !== undefined && info.expected_items !== info.items ? ` (run planned ${info.expected_items})` : ""}, ${info.failed} failed${info.partial ? `, ${info.partial} with a failed method` : ""}` }),
      el("dt", { text: "methods" }), el("dd", { text: methods.join(" · ") || "none yet" }),
      el("dt", { text: "written" }), el("dd", { text: `${info.created || "?"} by attribkit ${info.attribkit || "?"}` })));
  for (const p of info.problems) box.append(el("div", { cls: "warning", text: p }));
}

function histogram(method, g) {
  const top = Math.max(1, ...g.counts);
  const bars = el("div", { cls: "hist", role: "img",
    "aria-label": `distribution of the relative completeness gap of ${method}` });
  g.counts.forEach((c, i) => {
    const lo = g.log10_edges[i], hi = g.log10_edges[i + 1];
    bars.append(el("div", { cls: "bar", title: `${c} items with relative gap 1e${lo.toFixed(1)}…1e${hi.toFixed(1)}`,
      style: { height: `${(100 * c) / top}%` } }));
  });
  const first = g.log10_edges[0], last = g.log10_edges[g.log10_edges.length - 1];
  return el("div", { cls: "card" },
    el("h3", { text: method }),
    bars,
    el("div", { cls: "axis" }, el("span", { text: `1e${first}` }), el("span", { text: "|relative gap|" }), el("span", { text: `1e${last}` })),
    el("div", { cls: "small", text: `median ${pct(g.median_relative_gap)} · 90th percentile ${pct(g.p90_relative_gap)} · ${g.n} items` }));
}

// summary.json: any {mean, low/high | ci} objects found up to three levels deep, as a table.
function metricRows(obj, path = [], out = []) {
  if (!obj || typeof obj !== "object" || path.length > 3) return out;
  if (typeof obj.mean === "number") {
    const lo = obj.low ?? obj.ci_low ?? obj.lower ?? (Array.isArray(obj.ci) ? obj.ci[0] : Array.isArray(obj.interval) ? obj.interval[0] : null);
    const hi = obj.high ?? obj.ci_high ?? obj.upper ?? (Array.isArray(obj.ci) ? obj.ci[1] : Array.isArray(obj.interval) ? obj.interval[1] : null);
    out.push({ path, mean: obj.mean, lo, hi, n: obj.n ?? null });
    return out;
  }
  for (const [k, v] of Object.entries(obj)) metricRows(v, [...path, k], out);
  return out;
}

function renderSummaries(data) {
  const box = document.getElementById("summaries");
  box.append(el("h2", { text: "Summaries" }));
  const cards = el("div", { cls: "cards" });
  for (const [m, g] of Object.entries(data.gaps)) cards.append(histogram(m, g));
  if (!cards.childNodes.length) cards.append(el("p", { cls: "muted", text: "No completeness gaps stored (methods without a baseline, or no finished items)." }));
  box.append(el("h3", { cls: "sub", text: "Completeness gap, |sum of attributions − (F(x) − F(x′))| / |F(x) − F(x′)|" }), cards);
  const rows = metricRows(data.summary);
  if (rows.length) {
    box.append(el("h3", { cls: "sub", text: "Evaluations (mean with interval)" }),
      el("table", { cls: "metrics" },
        el("thead", {}, el("tr", {}, el("th", { text: "method / metric" }), el("th", { text: "mean" }), el("th", { text: "interval" }))),
        el("tbody", {}, rows.map((r) => el("tr", {},
          el("td", { text: r.path.filter((p) => p !== "methods").join(" · ") }),
          el("td", { cls: "num", text: fmt(r.mean) }),
          el("td", { cls: "num", text: r.lo !== null && r.hi !== null ? `[${fmt(r.lo)}, ${fmt(r.hi)}]` : "–" }))))));
  }
  const methods = data.summary && data.summary.methods && typeof data.summary.methods === "object" ? data.summary.methods : {};
  for (const [m, s] of Object.entries(methods)) {
    const worst = Array.isArray(s.worst_gap) ? s.worst_gap.filter((w) => Number.isInteger(w.item)).slice(0, 8) : [];
    if (worst.length) {
      box.append(el("p", { cls: "small worst" }, el("span", { cls: "muted", text: `Largest gaps, ${m}: ` }),
        worst.map((w) => [el("a", { href: `/item/${w.item}`, text: w.item_id ?? String(w.item),
          title: w.relative_gap !== undefined ? `relative gap ${pct(w.relative_gap)}` : "" }), " "])));
    }
  }
  if (!data.summary) {
    box.append(el("p", { cls: "muted small", text: "No summary.json yet: `attribkit report` writes AOPC / deletion / insertion with intervals." }));
  }
}

function bindFilters() {
  const q = document.getElementById("q"), status = document.getElementById("status"),
    per = document.getElementById("per-page");
  q.value = state.q; status.value = state.status; per.value = String(state.per);
  let timer = 0;
  q.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { state.q = q.value.trim(); state.page = 0; load(); }, 150);
  });
  status.addEventListener("change", () => { state.status = status.value; state.page = 0; load(); });
  per.addEventListener("change", () => { state.per = Number(per.value); state.page = 0; load(); });
  document.getElementById("filters").addEventListener("submit", (ev) => ev.preventDefault());
}

async function main() {
  first = api(itemsUrl());  // in parallel with /api/info
  first.catch(() => {});
  try {
    info = await api("/api/info");
  } catch (err) {
    showError(document.querySelector("main"), err);
    return;
  }
  document.getElementById("top").append(header(info, "data"));
  document.title = `${info.name} · attribkit explorer`;
  renderOverview();
  bindFilters();
  const table = load();
  api("/api/summary").then(renderSummaries).then(() => ready("summary"))
    .catch((err) => showError(document.getElementById("summaries"), err));
  await table;
}

main();
