// The item page of a generation run: the prompt's tokens coloured by what they contributed to
// the selected generated token (row t of the method's generated x prompt matrix). Click a
// generated token (or use the arrow keys on it) to switch; the method, token and colour scale
// are kept in the address (?method=&token=&scale=) beside the table's own query.
import { api, clear, colour, colourKey, el, fmt, pct, showError, shown } from "/static/common.js";

const SCALES = {
  token: ["this token", "99th percentile of |a| for this generated token"],
  matrix: ["whole answer", "99th percentile of |a| over every generated token"],
};

function readState(data) {
  const q = new URLSearchParams(location.search);
  const ok = data.methods.filter((m) => m.status === "ok");
  const m = ok.find((x) => x.method === q.get("method")) || ok[0] || null;
  const rows = m ? m.generated_tokens.length : 0;
  const token = Number.parseInt(q.get("token") ?? "0", 10);
  return { method: m ? m.method : null, token: Number.isFinite(token) ? Math.max(0, Math.min(rows - 1, token)) : 0,
    scale: q.get("scale") === "matrix" ? "matrix" : "token" };
}

function writeState(state) {
  const q = new URLSearchParams(location.search);
  q.set("method", state.method);
  q.set("token", String(state.token));
  q.set("scale", state.scale);
  history.replaceState(null, "", `${location.pathname}?${q}`);
  document.dispatchEvent(new CustomEvent("ak-url"));
}

function methodSelect(data, state, redraw) {
  const ok = data.methods.filter((m) => m.status === "ok");
  const select = el("select", { id: "gen-method", "aria-label": "method" },
    ok.map((m) => el("option", { value: m.method, text: m.method, selected: m.method === state.method })));
  select.addEventListener("change", () => { state.method = select.value; redraw(); });
  return el("label", { cls: "slider" }, el("span", { cls: "label", text: "Method" }), select);
}

function scaleToggle(state, redraw) {
  return el("div", { cls: "toggle", role: "group", "aria-label": "colour scale" },
    el("span", { cls: "label", text: "Colour scale" }),
    Object.entries(SCALES).map(([key, [name]]) => el("button", {
      id: `gen-scale-${key}`, type: "button", "aria-pressed": String(state.scale === key), text: name,
      on: { click: () => { state.scale = key; redraw(); } } })));
}

function promptTokens(m, row, top) {
  return el("div", { cls: "tokens gen-prompt", id: "gen-prompt" }, m.prompt_tokens.map((tok, j) => {
    const v = row[j];
    const strong = v !== null && top > 0 && Math.abs(v) > 0.6 * top;  // white text on dark colours
    return el("span", { cls: strong ? "tok strong" : "tok", text: shown(tok), title: `${tok}: ${fmt(v, 4)}`, "data-value": v ?? "",
      style: { background: colour(v, top, "signed") } });
  }));
}

function answerTokens(m, state, redraw) {
  const box = el("div", { cls: "gen-answer", id: "gen-answer", role: "group", "aria-label": "generated tokens" });
  m.generated_tokens.forEach((tok, t) => {
    const lp = m.logprobs ? ` · log p ${fmt(m.logprobs[t], 3)}` : "";
    const b = el("button", { type: "button", cls: "gen-tok", "data-token": t, "aria-pressed": String(t === state.token),
      text: shown(tok), title: `${tok}${lp}` });
    const select = (k) => {  // the answer is drawn again: keep the keyboard on it
      state.token = Math.max(0, Math.min(m.generated_tokens.length - 1, k));
      redraw();
      document.querySelector(`#gen-answer [data-token="${state.token}"]`)?.focus();
    };
    b.addEventListener("click", () => select(t));
    b.addEventListener("keydown", (ev) => {
      const step = ev.key === "ArrowRight" ? 1 : ev.key === "ArrowLeft" ? -1 : 0;
      if (!step) return;
      ev.preventDefault();
      select(state.token + step);
    });
    box.append(b);
  });
  return box;
}

function readout(m, t) {
  const bits = [`“${shown(m.generated_tokens[t])}” (token ${t + 1} of ${m.generated_tokens.length})`];
  if (m.logprobs && m.logprobs[t] !== null) bits.push(`log p ${fmt(m.logprobs[t], 3)}`);
  bits.push(`the prompt's tokens add up to ${fmt(m.totals[t], 3)}`);
  if (m.relative_gap && m.relative_gap[t] !== null) bits.push(`relative completeness gap ${pct(m.relative_gap[t])}`);
  return el("p", { cls: "muted", id: "gen-readout", text: bits.join(" · ") });
}

export async function renderGeneration(n) {
  const box = clear(document.getElementById("generation"));
  box.hidden = false;
  box.append(el("h2", { text: "The answer, token by token" }));
  let data;
  try {
    data = await api(`/api/items/${n}/generation`);
  } catch (err) {
    showError(box, err);
    return;
  }
  const state = readState(data);
  if (state.method === null) {
    box.append(el("p", { cls: "muted", text: "No method succeeded on this prompt." }));
    return;
  }
  const body = el("div", {});
  box.append(body);
  const redraw = () => {
    const m = data.methods.find((x) => x.method === state.method);
    state.token = Math.max(0, Math.min(m.generated_tokens.length - 1, state.token));
    writeState(state);
    const row = m.matrix[state.token];
    const top = state.scale === "matrix" ? m.scale.matrix : m.scale.token[state.token];
    clear(body).append(
      el("div", { cls: "controls" }, methodSelect(data, state, redraw), scaleToggle(state, redraw)),
      el("h3", { cls: "sub", text: "Answer (click a token)" }), answerTokens(m, state, redraw),
      readout(m, state.token),
      el("h3", { cls: "sub", text: "Prompt, coloured by its contribution to the selected token" }),
      promptTokens(m, row, top),
      el("div", { cls: "gen-key", id: "gen-key" },
        colourKey(top, "signed", `${SCALES[state.scale][1]}; red raised the token's log-probability, blue lowered it`)));
  };
  redraw();
}
