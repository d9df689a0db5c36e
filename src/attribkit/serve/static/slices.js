// The slices page: the items grouped by predicted class, by the source's label (a folder per
// class) or by failure; per slice its size, failures, histograms of the relative gap and the
// mean of each evaluation per method.
import { api, clear, el, fmt, header, pct, ready, showError } from "/static/common.js";

const params = new URLSearchParams(location.search);
const BY = { target_name: "predicted class", label: "label (folder per class)", status: "failure" };
const state = { by: params.get("by") || "target_name" };

function histogram(counts, edges) {
  const top = Math.max(1, ...counts);
  const bars = el("div", { cls: "hist small-hist", role: "img", "aria-label": "relative gap histogram" });
  counts.forEach((c, i) => bars.append(el("div", { cls: "bar", title: `${c} items, 1e${edges[i].toFixed(1)}…1e${edges[i + 1].toFixed(1)}`,
    style: { height: `${(100 * c) / top}%` } })));
  return bars;
}

function card(g, doc) {
  const link = `/?slice=${encodeURIComponent(doc.by)}&value=${encodeURIComponent(g.key)}`;
  const rows = doc.methods.map((m) => {
    const e = g.methods[m] || {};
    return el("tr", {}, el("td", { text: m }), el("td", { cls: "num", text: pct(e.median_relative_gap ?? null) }),
      el("td", { cls: "num", text: fmt(e.aopc ?? null) }), el("td", { cls: "num", text: fmt(e.deletion ?? null) }),
      el("td", { cls: "num", text: fmt(e.insertion ?? null) }),
      el("td", {}, e.counts ? histogram(e.counts, doc.log10_edges[m]) : "–"));
  });
  return el("div", { cls: "card slice", "data-key": g.key },
    el("h3", {}, el("a", { href: link, text: g.key || "(none)" })),
    el("div", { cls: "small", text: `${g.n} items${g.failed ? `, ${g.failed} failed or partial` : ""}` }),
    el("table", { cls: "metrics" },
      el("thead", {}, el("tr", {}, ["method", "median rel. gap", "AOPC", "deletion", "insertion", "|relative gap|"].map((h) => el("th", { text: h })))),
      el("tbody", {}, rows)));
}

async function run() {
  history.replaceState(null, "", `/slices?by=${state.by}`);
  const controls = clear(document.getElementById("controls"));
  const sel = el("select", { id: "slice-by", on: { change: (ev) => { state.by = ev.target.value; run(); } } },
    Object.entries(BY).map(([k, v]) => el("option", { value: k, text: v })));
  sel.value = state.by;
  controls.append(el("h1", { text: "Slices" }), el("div", { cls: "filters" }, el("span", { cls: "label", text: "group the items by" }), sel));
  const box = clear(document.getElementById("aggregate"));
  clear(document.getElementById("detail"));
  try {
    const doc = await api(`/api/slices?by=${state.by}`);
    if (doc.groups.length === 1 && doc.groups[0].key === "") {
      box.append(el("p", { cls: "muted", text: state.by === "label" ? "The sources carry no label (no folder per class)." : "Nothing to group by." }));
    }
    const edges = Object.values(doc.log10_edges)[0];
    if (edges) box.append(el("p", { cls: "muted small", text: `Histograms: log10 |relative gap| from 1e${edges[0]} to 1e${edges[edges.length - 1]}, the same bins in every slice.` }));
    box.append(el("div", { cls: "cards" }, doc.groups.map((g) => card(g, doc))));
    if (doc.more) box.append(el("p", { cls: "muted", text: `${doc.more} smaller slices not shown.` }));
    ready("slices");
  } catch (err) {
    showError(box, err);
  }
}

async function main() {
  try {
    const info = await api("/api/info");
    document.getElementById("top").append(header(info, "slices"));
  } catch (err) {
    showError(document.querySelector("main"), err);
    return;
  }
  await run();
}

main();
