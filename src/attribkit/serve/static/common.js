// Shared helpers of the explorer's pages. Every piece of data reaches the DOM through
// textContent or attribute setters, never as HTML.

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "cls") node.className = value;
    else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else if (key === "style") Object.assign(node.style, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export async function api(url, options = {}) {
  const response = await fetch(url, options);
  let body = null;
  try { body = await response.json(); } catch (err) { body = null; }
  if (!response.ok) {
    const message = body && body.error ? body.error : `${response.status} ${response.statusText}`;
    throw new Error(message);
  }
  return body;
}

export function fmt(x, digits = 3) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 1e4 || a < 1e-3) return x.toExponential(digits - 1).replace("e", "e");
  return x.toPrecision(digits).replace(/\.?0+$/, "");
}

// A byte-level BPE token (or tokens joined) as read: Ġ is a space (dropped at the start), Ċ a newline.
export function shown(tok) {
  const s = String(tok).replace(/^Ġ/, "").replace(/Ġ/g, " ").replace(/Ċ/g, "↵");
  return s.trim() === "" ? "␣" : s;
}

export function pct(x) {
  if (x === null || x === undefined) return "–";
  const a = Math.abs(x) * 100;
  if (a === 0) return "0 %";
  return (a < 0.01 ? a.toExponential(1) : a.toPrecision(2)) + " %";
}

// Colours matching the server's PNG scales: RdBu reversed (signed) and inferno (absolute).
const SIGNED = [[5, 48, 97], [33, 102, 172], [67, 147, 195], [146, 197, 222], [209, 229, 240],
  [247, 247, 247], [253, 219, 199], [244, 165, 130], [214, 96, 77], [178, 24, 43], [103, 0, 31]];
const ABSOLUTE = [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
  [245, 125, 21], [250, 193, 39], [252, 255, 164]];

function ramp(stops, u) {
  const t = Math.min(1, Math.max(0, u)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(t));
  const f = t - i;
  return stops[i].map((c, k) => Math.round(c + f * (stops[i + 1][k] - c)));
}

// Background colour for a value under a scale; light colours keep text readable.
export function colour(value, scale, sign) {
  if (value === null || !scale) return "rgb(255,255,255)";
  if (sign === "absolute") {
    const u = Math.min(1, Math.abs(value) / scale);
    const [r, g, b] = ramp(ABSOLUTE.slice(3), u);
    const w = 1 - 0.75 * u;  // blend towards white so small values stay light
    return `rgb(${Math.round(255 * w + r * (1 - w))},${Math.round(255 * w + g * (1 - w))},${Math.round(255 * w + b * (1 - w))})`;
  }
  const u = Math.max(-1, Math.min(1, value / scale));
  const [r, g, b] = ramp(SIGNED, (u * 0.8 + 1) / 2);
  return `rgb(${r},${g},${b})`;
}

// A colour key: gradient bar with its numbers.
export function colourKey(scale, sign, label = "") {
  const left = sign === "signed" ? `−${fmt(scale)}` : "0";
  return el("div", { cls: "key" },
    el("span", { cls: "key-num", text: left }),
    el("span", { cls: `key-bar key-${sign}` }),
    el("span", { cls: "key-num", text: `+${fmt(scale)}` }),
    label ? el("span", { cls: "key-label", text: label }) : null);
}

export function header(info, here) {
  const nav = el("nav", { cls: "top" },
    el("a", { href: "/", cls: "brand", text: "attribkit explorer" }),
    el("span", { cls: "crumb", text: info ? `${info.name} · ${info.model} · ${info.kind}` : "" }),
    el("span", { cls: "spacer" }),
    el("a", { href: "/slices", cls: here === "slices" ? "navlink here" : "navlink", text: "Slices" }),
    el("a", { href: "/compare", cls: here === "compare" ? "navlink here" : "navlink",
      text: info && info.stores > 1 ? `Compare ${info.stores} runs` : "Compare methods" }),
    info && info.live ? el("a", { href: "/live", cls: here === "live" ? "navlink here" : "navlink", text: "Explain a new input" }) : null);
  return nav;
}

export function showError(where, err) {
  where.append(el("div", { cls: "error", role: "alert", text: String(err.message || err) }));
}

export function ready(name) {
  window.__akReady = window.__akReady || {};
  window.__akReady[name] = performance.now();
  document.body.dataset.ready = (document.body.dataset.ready || "") + ` ${name}`;
}
