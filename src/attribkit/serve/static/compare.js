// The compare page: two runs (or two methods of one run) matched item by item; the change of
// each evaluation with its bootstrap interval, the items that changed most, and the
// difference map of one item.
import { api, clear, el, fmt, header, pct, ready, showError } from "/static/common.js";

const params = new URLSearchParams(location.search);
const state = { a: Number(params.get("a") || 0), b: Number(params.get("b") ?? 1),
  ma: params.get("ma") || "", mb: params.get("mb") || "", measure: params.get("measure") || "rel_gap",
  item: params.get("item") || "" };
let stores = null;

function saveState() {
  const p = new URLSearchParams({ a: state.a, b: state.b, ma: state.ma, mb: state.mb, measure: state.measure });
  if (state.item) p.set("item", state.item);
  history.replaceState(null, "", `/compare?${p}`);
}

function select(id, options, value, onChange) {
  const s = el("select", { id, on: { change: (ev) => onChange(ev.target.value) } },
    options.map(([v, label]) => el("option", { value: v, text: label })));
  s.value = String(value);
  return s;
}

function renderControls() {
  const box = clear(document.getElementById("controls"));
  const storeOpts = stores.stores.map((s, i) => [i, `${s.name} (${s.model}, ${s.items} items)`]);
  const methodOpts = (i) => (stores.stores[i] || stores.stores[0]).methods.map((m) => [m, m]);
  const side = (label, key, mkey) => el("div", { cls: "side" }, el("span", { cls: "label", text: label }),
    select(`store-${key}`, storeOpts, state[key], (v) => { state[key] = Number(v); state[mkey] = ""; state.item = ""; run(); }),
    select(`method-${key}`, methodOpts(state[key]), state[mkey], (v) => { state[mkey] = v; state.item = ""; run(); }));
  box.append(el("h1", { text: "Compare runs" }),
    el("p", { cls: "muted small", text: "Items are matched by their id. Each change is B − A, averaged over the items both runs scored, with a 95 % percentile bootstrap interval over items. Pick the same store twice to compare two methods, another store for the same method at other settings or another model." }),
    el("div", { cls: "filters" }, side("A", "a", "ma"), side("B", "b", "mb"),
      el("span", { cls: "label", text: "order items by the change of" }),
      select("measure", Object.entries(stores.measures).map(([k, v]) => [k, v]), state.measure, (v) => { state.measure = v; run(); })));
}

function renderAggregate(doc) {
  const box = clear(document.getElementById("aggregate"));
  box.append(el("h2", { text: `${doc.a.store} · ${doc.a.method}  →  ${doc.b.store} · ${doc.b.method}` }),
    el("p", { cls: "muted", text: `${doc.matched} items in both runs` }));
  const rows = doc.aggregate.map((r) => {
    const sig = r.ci[0] !== null && (r.ci[0] > 0 || r.ci[1] < 0);
    return el("tr", {}, el("td", { text: r.label }), el("td", { cls: "num", text: String(r.n) }),
      el("td", { cls: "num", text: fmt(r.mean_a) }), el("td", { cls: "num", text: fmt(r.mean_b) }),
      el("td", { cls: `num ${sig ? "changed" : ""}`, text: fmt(r.mean_diff) }),
      el("td", { cls: "num", text: r.ci[0] === null ? "–" : `[${fmt(r.ci[0])}, ${fmt(r.ci[1])}]` }),
      el("td", { cls: "small", text: sig ? "the interval excludes 0" : "no clear change" }));
  });
  box.append(el("table", { cls: "metrics", id: "aggregate-table" },
    el("thead", {}, el("tr", {}, ["evaluation", "items", "mean A", "mean B", "B − A", "95 % interval", ""].map((h) => el("th", { text: h })))),
    el("tbody", {}, rows)));
}

function renderItems(doc) {
  const box = clear(document.getElementById("detail"));
  const m = doc.measure;
  box.append(el("h2", { text: `Items, largest change of ${stores.measures[m]} first` }));
  const view = el("div", { id: "diff-view", cls: "diffview" });
  const tbody = el("tbody", {}, doc.rows.map((r) => el("tr", { cls: state.item === r.item_id ? "picked" : "", "data-id": r.item_id,
    on: { click: () => { state.item = r.item_id; showDiff(r); saveState(); for (const t of tbody.children) t.classList.toggle("picked", t.dataset.id === r.item_id); } } },
    el("td", { text: r.item_id }), el("td", { text: r.class_a ?? "–" }), el("td", { text: r.class_b ?? "–" }),
    el("td", { cls: "num", text: m === "rel_gap" ? pct(r[`${m}:a`]) : fmt(r[`${m}:a`]) }),
    el("td", { cls: "num", text: m === "rel_gap" ? pct(r[`${m}:b`]) : fmt(r[`${m}:b`]) }),
    el("td", { cls: "num", text: m === "rel_gap" && r[`${m}:diff`] !== null ? `${r[`${m}:diff`] >= 0 ? "+" : "−"}${pct(r[`${m}:diff`])}` : fmt(r[`${m}:diff`]) }))));
  box.append(el("div", { cls: "split" },
    el("div", { cls: "table-wrap" }, el("table", { cls: "items", id: "compare-items" },
      el("thead", {}, el("tr", {}, ["item", "class A", "class B", "A", "B", "B − A"].map((h) => el("th", { text: h })))), tbody)),
    view));
  const first = doc.rows.find((r) => r.item_id === state.item) || doc.rows[0];
  if (first) showDiff(first);
}

function showDiff(r) {
  const view = clear(document.getElementById("diff-view"));
  const q = new URLSearchParams({ item_a: r.item_a, item_b: r.item_b, a: state.a, b: state.b, ma: state.ma, mb: state.mb });
  const img = el("img", { id: "diff-map", src: `/api/compare/diff.png?${q}`, alt: `difference map of ${r.item_id}`, width: 280, height: 280 });
  img.addEventListener("error", () => { img.replaceWith(el("p", { cls: "muted", text: "No difference map: the maps differ in shape or are not images." })); });
  const links = [el("a", { href: `/item/${r.item_a}`, text: `${r.item_id} in A` })];
  if (state.a === state.b || state.b === 0) links.push(" · ", el("a", { href: `/item/${r.item_b}`, text: "in B" }));
  view.append(el("h3", { text: `${r.item_id}: map B − map A` }), img,
    el("div", { cls: "key" }, el("span", { cls: "key-num", text: "A more" }), el("span", { cls: "key-bar key-signed" }),
      el("span", { cls: "key-num", text: "B more" })),
    el("p", { cls: "muted small", text: "Signed maps (channel sums); the colour scale ends at the 99th percentile of |B − A|." }),
    el("p", { cls: "small" }, links));
}

function compareUrl() {
  const q = new URLSearchParams({ a: state.a, b: state.b, ma: state.ma, mb: state.mb, measure: state.measure, per_page: 100 });
  return `/api/compare?${q}`;
}

async function run(pending = null) {
  saveState();
  renderControls();
  try {
    const doc = await (pending || api(compareUrl()));
    state.ma = doc.a.method; state.mb = doc.b.method;
    saveState();
    renderControls();
    renderAggregate(doc);
    renderItems(doc);
    ready("compare");
  } catch (err) {
    showError(clear(document.getElementById("aggregate")), err);
  }
}

async function main() {
  // the comparison is asked for at once, beside the stores (the server compares a store with
  // itself when it serves only one, as the page then does)
  const first = api(compareUrl());
  first.catch(() => {});  // its error, if any, is shown by run()
  try {
    const [info, s] = await Promise.all([api("/api/info"), api("/api/stores")]);
    stores = s;
    if (stores.stores.length < 2 && !params.has("b")) state.b = 0;
    document.getElementById("top").append(header(info, "compare"));
  } catch (err) {
    showError(document.querySelector("main"), err);
    return;
  }
  await run(first);
}

main();
