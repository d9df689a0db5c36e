// Interior gradients: a slider over alpha showing the gradient at x' + alpha (x - x'), and the
// point on the saturation curve F(alpha) ("Gradients of Counterfactuals", Figures 2 and 3).
import { api, clear, el, fmt, showError } from "/static/common.js";

const SVG = "http://www.w3.org/2000/svg";
let signListener = null;

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function curve(alphas, scores, mags) {
  const W = 340, H = 180, L = 44, R = 12, T = 12, B = 30;
  const x = (a) => L + (W - L - R) * a;
  const plot = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "curve", role: "img",
    "aria-label": "saturation curve F(alpha) and mean absolute gradient" });
  plot.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }),
    svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }));
  const addText = (tx, ty, s, cls = "tick", anchor = "middle") => {
    const t = svg("text", { x: tx, y: ty, class: cls, "text-anchor": anchor });
    t.textContent = s;
    plot.append(t);
  };
  [0, 0.5, 1].forEach((a) => addText(x(a), H - B + 14, String(a)));
  addText((L + W - R) / 2, H - 2, "α (scaling of the input)", "label");
  const series = (vals, cls) => {
    const finite = vals.filter((v) => v !== null);
    const lo = Math.min(...finite), hi = Math.max(...finite);
    const y = (v) => H - B - (H - B - T) * (hi > lo ? (v - lo) / (hi - lo) : 0.5);
    const pts = alphas.map((a, i) => (vals[i] === null ? null : `${x(a).toFixed(1)},${y(vals[i]).toFixed(1)}`)).filter(Boolean);
    plot.append(svg("polyline", { points: pts.join(" "), class: cls }));
    return { y, lo, hi };
  };
  const m = series(mags, "line grad");
  let f = null;
  if (scores) {
    f = series(scores, "line score");
    addText(L - 4, f.y(f.hi) + 4, fmt(f.hi, 2), "tick score", "end");
    addText(L - 4, f.y(f.lo) + 4, fmt(f.lo, 2), "tick score", "end");
  }
  const marker = svg("circle", { r: 5, class: "marker" });
  const gmark = svg("circle", { r: 4, class: "marker grad" });
  const guide = svg("line", { y1: T, y2: H - B, class: "guide" });
  plot.append(guide, gmark, marker);
  const move = (k) => {
    const cx = x(alphas[k]);
    guide.setAttribute("x1", cx); guide.setAttribute("x2", cx);
    gmark.setAttribute("cx", cx); gmark.setAttribute("cy", m.y(mags[k]));
    if (f && scores[k] !== null) { marker.setAttribute("cx", cx); marker.setAttribute("cy", f.y(scores[k])); }
    else marker.setAttribute("visibility", "hidden");
  };
  return { plot, move };
}

async function computeButton(box, item, reload) {
  const status = el("span", { cls: "muted", role: "status" });
  const button = el("button", { type: "button", id: "compute-interior", text: "Compute interior gradients" });
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const target = item.results.length ? item.results[0].target : null;
      const q = target === null ? "" : `?target=${target}`;
      let job = await api(`/api/items/${item.item}/interior${q}`, { method: "POST", headers: { "X-Attribkit": "1" } });
      while (job.state === "queued" || job.state === "running") {
        status.textContent = `${job.stage} · ${Math.round(job.progress * 100)} %`;
        await new Promise((r) => setTimeout(r, 300));
        job = await api(`/api/live/jobs/${job.id}`);
      }
      if (job.state === "failed") throw new Error(job.error);
      reload();
    } catch (err) { showError(box, err); button.disabled = false; }
  });
  box.append(el("p", { cls: "muted", text: "No interior gradients are stored for this item; the live model can compute them." }), button, status);
}

export async function renderInterior(item, view, reload) {
  const box = clear(document.getElementById("interior"));
  if (signListener) document.removeEventListener("ak-sign", signListener);
  box.append(el("h2", { text: "Interior gradients" }));
  if (!item.interior.length) {
    box.hidden = !item.can_compute_interior;
    if (item.can_compute_interior) computeButton(box, item, reload);
    return;
  }
  box.hidden = false;
  const target = item.interior[0].target;
  const tq = target === null ? "" : `target=${target}&`;
  let data;
  try { data = await api(`/api/items/${item.item}/interior?${tq}`); } catch (err) { showError(box, err); return; }
  const common = el("input", { type: "checkbox", id: "common-scale" });
  const url = (k) => `/api/items/${item.item}/interior/${k}.png?${tq}sign=${view.sign}&scale=${common.checked ? "common" : "own"}&v=${item.version}`;
  const last = data.frames - 1;
  const slider = el("input", { type: "range", id: "alpha", min: 0, max: last, value: last, step: 1, "aria-label": "alpha" });
  const label = el("span", { cls: "alpha-value", id: "alpha-value" });
  const frame = el("img", { cls: "overlay", id: "frame", alt: "interior gradient", src: url(last), style: { opacity: String(view.opacity) } });
  const stack = el("div", { cls: "stack big" }, el("img", { cls: "base dim", src: `/api/items/${item.item}/input.png`, alt: "input" }), frame);
  const { plot, move } = curve(data.alphas, data.scores, data.mean_abs_gradient);
  const cache = new Map();
  const prefetch = () => { cache.clear(); for (let k = 0; k <= last; k++) { const im = new Image(); im.src = url(k); cache.set(k, im); } };
  let t0 = 0;
  frame.addEventListener("load", () => { if (t0) { window.__akSlider = performance.now() - t0; t0 = 0; } });
  const show = (k) => {
    label.textContent = `α = ${fmt(data.alphas[k], 3)}${data.scores && data.scores[k] !== null ? ` · F = ${fmt(data.scores[k], 3)}` : ""}`;
    move(k);
    t0 = performance.now();
    frame.src = url(k);
  };
  slider.addEventListener("input", () => show(Number(slider.value)));
  common.addEventListener("change", () => { prefetch(); show(Number(slider.value)); });
  signListener = () => { prefetch(); show(Number(slider.value)); };
  document.addEventListener("ak-sign", signListener);
  box.append(
    el("p", { cls: "muted small", text: "The gradient of the explained score at the scaled input x′ + α(x − x′). Near α = 1 the model saturates: the score stops changing and gradients vanish, which is why plain gradients mislead and integrated gradients sum them along the path." }),
    el("div", { cls: "interior" },
      el("div", {}, stack, el("div", { cls: "slider-row" }, el("label", { for: "alpha", text: "α" }), slider, label),
        el("label", { cls: "small" }, common, " one colour scale for all α (shows how the gradients shrink)")),
      el("div", {}, plot, el("div", { cls: "legend small" },
        el("span", { cls: "sw score" }), " F(α), the saturation curve  ",
        el("span", { cls: "sw grad" }), " mean |gradient|"))));
  show(last);
  // fetch every frame once the page's own pictures are in, so the slider only swaps images
  if (document.readyState === "complete") setTimeout(prefetch, 50);
  else window.addEventListener("load", () => setTimeout(prefetch, 50), { once: true });
}
