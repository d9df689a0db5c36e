// The item page: the input, every method's map side by side, the numbers, interior gradients.
import { api, clear, colour, colourKey, el, fmt, header, pct, ready, showError, shown } from "/static/common.js";
import { renderInterior } from "/static/interior.js";
import { renderGeneration } from "/static/generation.js";

const n = Number(location.pathname.split("/").pop());
const view = { sign: "signed", opacity: 0.75, target: null };
let item = null;

// The table's query (sort, filter, page) without the generation view's own keys.
function tableSearch(drop) {
  const q = new URLSearchParams(location.search);
  drop.forEach((k) => q.delete(k));
  const s = q.toString();
  return s ? `?${s}` : "";
}

function numbersTable(rows) {
  const cols = [["method", (r) => r.method], item.kind === "generation" ? ["answer", (r) => (r.target_name === null ? "–" : shown(r.target_name))]
    : ["class", (r) => r.target_name ?? r.target ?? "–"],
    ["F(x)", (r) => fmt(r.output, 4)], ["F(x′)", (r) => fmt(r.baseline_output, 4)],
    ["gap", (r) => fmt(r.gap, 3)], ["relative gap", (r) => pct(r.relative_gap)],
    ["error estimate", (r) => fmt(r.error_estimate, 2)], ["steps", (r) => r.steps_used ?? "–"],
    ["seconds", (r) => fmt(r.seconds, 2)], ["status", (r) => r.status === "failed" ? `failed: ${r.error || ""}` : "ok"]];
  return el("table", { cls: "metrics numbers" },
    el("thead", {}, el("tr", {}, cols.map(([h]) => el("th", { text: h })))),
    el("tbody", {}, rows.map((r) => el("tr", { cls: r.status === "failed" ? "failed" : "" },
      cols.map(([h, f], i) => el("td", { cls: i > 1 && i < 9 ? "num" : "", text: f(r) }))))));
}

function renderInteractions() {
  // The strongest pairs stored by `attribkit run ... -m interactions` (none: the panel stays hidden).
  const box = clear(document.getElementById("interactions")), x = item.interactions;
  box.hidden = !x;
  if (!x) return;
  const how = x.exact ? "exact" : `estimated from ${x.evaluations} evaluations`;
  box.append(el("h2", { text: `Interactions (${x.index}, order ${x.order})` }),
    el("div", { cls: "muted small", text: x.error ? "" : `${x.players} players · ${how}` }));
  if (x.error) { box.append(el("div", { cls: "error", text: x.error })); return; }
  const pairs = x.top.filter((t) => t.players.length === 2);
  if (!pairs.length) { box.append(el("p", { cls: "muted", text: "No pairs stored (order 1)." })); return; }
  box.append(el("table", { cls: "metrics interactions" },
    el("thead", {}, el("tr", {}, ["pair", "value", "± 95 %"].map((h) => el("th", { text: h })))),
    el("tbody", {}, pairs.map((t) => el("tr", {}, el("td", { text: t.names.join(" × ") }),
      el("td", { cls: "num", text: fmt(t.value, 4) }),
      el("td", { cls: "num", text: t.stderr === null ? "–" : fmt(1.96 * t.stderr, 2) }))))));
}

function pictureStack(overlaySrc, method) {
  const fig = el("div", { cls: "stack" },
    el("img", { cls: overlaySrc ? "base dim" : "base", src: `/api/items/${n}/input.png`, alt: `input ${item.item_id}` }));
  if (overlaySrc) {
    const over = el("img", { cls: "overlay", src: overlaySrc, alt: `${method} attribution`,
      "data-method": method, style: { opacity: String(view.opacity) } });
    fig.append(over);
  }
  return fig;
}

function mapUrl(r) {
  const q = new URLSearchParams({ method: r.method, sign: view.sign, v: item.version });
  if (r.target !== null) q.set("target", r.target);
  return `/api/items/${n}/map.png?${q}`;
}

function tokens(r) {
  const words = item.tokens && item.tokens.length === r.vector.length ? item.tokens
    : r.vector.map((_, i) => `#${i}`);
  const scale = r.scale[view.sign];
  return el("div", { cls: "tokens" }, words.map((w, i) => {
    const v = view.sign === "absolute" ? Math.abs(r.vector[i] ?? 0) : r.vector[i];
    return el("span", { cls: "tok", title: `${w}: ${fmt(r.vector[i], 4)}`, text: w,
      style: { background: colour(v, scale, view.sign) } });
  }));
}

function bars(r) {
  const names = item.feature_names && item.feature_names.length === r.vector.length
    ? item.feature_names : r.vector.map((_, i) => `feature ${i}`);
  const scale = r.scale[view.sign] || 1;
  const order = r.vector.map((v, i) => i).sort((a, b) => Math.abs(r.vector[b]) - Math.abs(r.vector[a])).slice(0, 30);
  return el("div", { cls: "bars" }, order.map((i) => {
    const v = view.sign === "absolute" ? Math.abs(r.vector[i] ?? 0) : (r.vector[i] ?? 0);
    const w = `${(50 * Math.min(1, Math.abs(v) / scale)).toFixed(1)}%`;
    const bar = el("span", { cls: v >= 0 ? "b pos" : "b neg", style: v >= 0 ? { left: "50%", width: w } : { right: "50%", width: w } });
    return el("div", { cls: "barrow" }, el("span", { cls: "bname", text: names[i], title: names[i] }),
      el("span", { cls: "btrack" }, el("span", { cls: "bzero" }), bar),
      el("span", { cls: "bval", text: fmt(r.vector[i], 3) }));
  }));
}

function methodCard(r) {
  const card = el("figure", { cls: "card map-card", "data-method": r.method });
  const about = r.status === "failed" ? " failed" : ` gap ${fmt(r.gap, 2)} · ${r.target_name ?? r.target ?? ""}`;
  card.append(el("figcaption", {}, el("b", { text: r.method }), el("span", { cls: "muted small", text: about })));
  if (r.status === "failed") {
    card.append(el("div", { cls: "error", text: r.error || "failed" }));
    return card;
  }
  const scale = r.scale ? r.scale[view.sign] : 0;
  if (r.view === "map") card.append(pictureStack(mapUrl(r), r.method));
  else if (r.view === "tokens") card.append(tokens(r));
  else if (r.view === "molecule") {
    const q = new URLSearchParams({ method: r.method, sign: view.sign });
    if (r.target !== null) q.set("target", r.target);
    const img = el("img", { cls: "molecule", src: `/api/items/${n}/molecule.png?${q}`, alt: `${r.method} on the molecule` });
    img.addEventListener("error", () => img.replaceWith(bars(r)), { once: true });
    card.append(img);
  } else card.append(bars(r));
  card.append(colourKey(scale, view.sign, r.view === "map" ? "99th percentile" : "max"));
  return card;
}

function renderMaps() {
  const box = clear(document.getElementById("maps"));
  const rows = item.results.filter((r) => view.target === null || r.target === view.target || r.status === "failed");
  const cards = rows.filter((r) => r.view !== "generation");
  box.hidden = item.kind === "generation";  // its matrices: the generation panel
  box.append(el("h2", { text: "Attributions" }));
  const grid = el("div", { cls: "cards maps" });
  if (item.picture && rows.some((r) => r.view === "map")) {
    grid.append(el("figure", { cls: "card map-card" }, el("figcaption", {}, el("b", { text: "input" })),
      pictureStack(null, "")));
  }
  cards.forEach((r) => grid.append(methodCard(r)));
  if (!rows.length) grid.append(el("p", { cls: "muted", text: "No attributions stored for this item." }));
  box.append(grid);
  const numbers = clear(document.getElementById("numbers"));
  numbers.append(el("h2", { text: "Numbers" }), numbersTable(rows));
}

function renderTitle() {
  const box = clear(document.getElementById("title"));
  const table = tableSearch(["method", "token", "scale"]), keep = tableSearch(["token"]);
  const nav = el("div", { cls: "itemnav" },
    el("a", { href: `/${table}`, id: "back", text: "← data set" }),
    item.previous !== null ? el("a", { href: `/item/${item.previous}${keep}`, id: "prev", text: "‹ previous" }) : null,
    item.position >= 0 && table ? el("span", { cls: "muted small", text: `${item.position + 1} of ${item.in_view} in the table's order` }) : null,
    item.next !== null ? el("a", { href: `/item/${item.next}${keep}`, id: "next", text: "next ›" }) : null);
  box.append(nav, el("h1", { text: item.item_id }),
    el("div", { cls: "muted", text: `item ${item.item} · ${item.kind} · ${item.source || ""}` }));
  if (item.status === "failed") box.append(el("div", { cls: "error", text: `This item failed: ${item.error || "no reason recorded"}` }));
  if (item.text && item.kind !== "image" && item.kind !== "generation") box.append(el("p", { cls: "input-text", text: item.text }));
}

function bindControls() {
  const controls = document.getElementById("controls");
  controls.hidden = false;
  const signed = document.getElementById("sign-signed"), absolute = document.getElementById("sign-absolute");
  const setSign = (s) => {
    view.sign = s;
    signed.setAttribute("aria-pressed", String(s === "signed"));
    absolute.setAttribute("aria-pressed", String(s === "absolute"));
    renderMaps();
    document.dispatchEvent(new CustomEvent("ak-sign", { detail: s }));
  };
  signed.addEventListener("click", () => setSign("signed"));
  absolute.addEventListener("click", () => setSign("absolute"));
  document.getElementById("opacity-box").hidden =
    !item.results.some((r) => r.view === "map") && !item.interior.length && !item.can_compute_interior;
  const opacity = document.getElementById("opacity"), label = document.getElementById("opacity-value");
  opacity.addEventListener("input", () => {
    view.opacity = Number(opacity.value) / 100;
    label.textContent = `${opacity.value} %`;
    document.querySelectorAll("img.overlay").forEach((img) => { img.style.opacity = String(view.opacity); });
  });
  const targets = [...new Set(item.results.filter((r) => r.status === "ok").map((r) => r.target))];
  if (targets.length > 1) {
    const box = document.getElementById("target-box"), select = document.getElementById("target");
    box.hidden = false;
    for (const t of targets) {
      const r = item.results.find((x) => x.target === t);
      select.append(el("option", { value: String(t), text: r.target_name ?? String(t) }));
    }
    view.target = targets[0];
    select.addEventListener("change", () => { view.target = Number(select.value); renderMaps(); });
  }
}

async function main() {
  let info = null;
  try {
    [info, item] = await Promise.all([api("/api/info"), api(`/api/items/${n}${location.search}`)]);
  } catch (err) {
    showError(document.querySelector("main"), err);
    return;
  }
  document.getElementById("top").append(header(info, "item"));
  document.title = `${item.item_id} · attribkit explorer`;
  renderTitle();
  if (item.kind === "generation") {
    document.addEventListener("ak-url", renderTitle);  // previous / next keep the method and scale
    await renderGeneration(n);
  } else bindControls();
  renderMaps();
  renderInteractions();
  renderInterior(item, view, () => main2());
  ready("item");
}

async function main2() {
  item = await api(`/api/items/${n}${location.search}`);
  renderMaps();
  renderInterior(item, view, () => main2());
}

main();
