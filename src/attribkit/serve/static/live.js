// Live mode: upload an image / type a sentence or a CSV row, explain it, watch the job, open it.
import { api, clear, el, header, ready, showError } from "/static/common.js";

const COMMON = ["integrated_gradients", "saliency", "gradient_x_input", "smoothgrad", "occlusion"];
const INPUTS = { image: "image", tensor: "image", text: "text", tabular: "row" };

function inputField(kind) {
  if (kind === "image") {
    return el("label", { cls: "drop" }, el("span", { text: "Photo (PNG, JPEG, …)" }),
      el("input", { id: "file", type: "file", accept: "image/*", required: true }));
  }
  const placeholder = kind === "text" ? "Type a sentence" : "Comma-separated numbers, one row";
  return el("label", {}, el("span", { text: kind === "text" ? "Sentence" : "CSV row" }),
    el("textarea", { id: "text", rows: 3, placeholder, required: true, maxlength: 20000 }));
}

async function poll(job, stage, bar) {
  while (job.state === "queued" || job.state === "running") {
    stage.textContent = `${job.stage} · ${Math.round(job.progress * 100)} % · ${job.elapsed.toFixed(1)} s`;
    bar.style.width = `${Math.max(4, Math.round(job.progress * 100))}%`;
    await new Promise((r) => setTimeout(r, 250));
    job = await api(`/api/live/jobs/${job.id}`);
  }
  return job;
}

async function main() {
  let info;
  try { info = await api("/api/info"); } catch (err) { showError(document.querySelector("main"), err); return; }
  document.getElementById("top").append(header(info, "live"));
  const intro = document.getElementById("intro");
  if (!info.live) {
    intro.textContent = "Live mode is off: start the explorer with --model MODEL to explain new inputs.";
    document.getElementById("live-form").hidden = true;
    ready("live");
    return;
  }
  const kind = INPUTS[info.live_kind] || "image";
  intro.textContent = `Model ${info.model_live || info.model}. The result is added to this store as a new item.`;
  document.getElementById("input-box").append(inputField(kind));
  const methods = document.getElementById("methods");
  const names = [...new Set([...info.methods, ...COMMON])].filter((m) => info.live_methods.includes(m));
  names.forEach((m, i) => methods.append(el("label", { cls: "check" },
    el("input", { type: "checkbox", name: "method", value: m, checked: i === 0 }), ` ${m}`)));
  const form = document.getElementById("live-form");
  const out = document.getElementById("out");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clear(out);
    const chosen = [...form.querySelectorAll("input[name=method]:checked")].map((c) => c.value);
    if (!chosen.length) { showError(out, new Error("Choose at least one method.")); return; }
    const q = new URLSearchParams({ input: kind });
    chosen.forEach((m) => q.append("method", m));
    const steps = document.getElementById("steps").value, target = document.getElementById("target").value;
    if (steps) q.set("steps", steps);
    if (target) q.set("target", target);
    let body;
    if (kind === "image") {
      const file = document.getElementById("file").files[0];
      if (!file) { showError(out, new Error("Choose a photo.")); return; }
      q.set("name", file.name.replace(/\.[^.]*$/, ""));
      body = file;
    } else {
      body = document.getElementById("text").value;
      q.set("name", body.slice(0, 40));
    }
    const go = document.getElementById("go"), box = document.getElementById("job");
    const stage = document.getElementById("stage"), bar = document.getElementById("bar");
    go.disabled = true; box.hidden = false;
    try {
      let job = await api(`/api/live/jobs?${q}`, { method: "POST", body,
        headers: { "X-Attribkit": "1", "Content-Type": kind === "image" ? "application/octet-stream" : "text/plain; charset=utf-8" } });
      job = await poll(job, stage, bar);
      if (job.state === "failed") throw new Error(job.error);
      bar.style.width = "100%";
      stage.textContent = `done in ${job.elapsed.toFixed(1)} s`;
      out.append(el("p", {}, el("a", { id: "result-link", href: `/item/${job.item}`, text: `Open item ${job.item} →` })));
    } catch (err) {
      showError(out, err);
    } finally {
      go.disabled = false;
    }
  });
  ready("live");
}

main();
