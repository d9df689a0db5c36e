"""How fast the explorer's pages are, measured in a real headless Chromium.

Synthetic run stores (``tests/serve/synthetic.py``) of 100 and 10,000 items are served by uvicorn
on 127.0.0.1 in this process; Debian's Chromium, driven by Playwright, loads the pages. Timings
are taken inside the page with ``performance.now()``:

* data-set page: navigation start to the first page of the table drawn (``ready("table")``);
  sort by gap: click on the column header to the re-sorted table drawn;
* item page: navigation start to the page built and usable (``ready("item")``), and to every map
  picture decoded;
* alpha slider: ``input`` event to the new interior-gradient frame loaded (frames prefetched, as
  the page does), and one frame rendered by the server from scratch (HTTP, no browser cache).

Run ``python benchmarks/explorer.py`` from the repository root; it writes its table into
``docs/benchmarks-explorer.md``.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.serve.synthetic import write_store  # noqa: E402

from attribkit.core import pages  # noqa: E402
from attribkit.serve import create_app  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

SORT_JS = """async () => {
  const before = document.body.dataset.ready;
  const t0 = performance.now();
  document.querySelector('th[data-sort="gap:integrated_gradients"] button').click();
  await new Promise((resolve) => {
    const obs = new MutationObserver(() => {
      if (document.body.dataset.ready !== before) { obs.disconnect(); resolve(); }
    });
    obs.observe(document.body, { attributes: true });
  });
  return performance.now() - t0;
}"""

# where the data-set page's time went: document, scripts, the two API calls (with the server's
# own handler time from the Server-Timing header), and what came after the last response
BREAKDOWN_JS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource');
  const pick = (part) => res.filter((r) => r.name.includes(part)).pop();
  const server = (r) => (r && r.serverTiming && r.serverTiming.length ? r.serverTiming[0].duration : null);
  const items = pick('/api/items?'), info = pick('/api/info');
  const scripts = res.filter((r) => r.name.endsWith('.js')).map((r) => r.responseEnd);
  const lastApi = Math.max(items ? items.responseEnd : 0, info ? info.responseEnd : 0);
  return { document: nav.responseEnd, scripts: Math.max(...scripts),
           items_request: items ? items.responseEnd - items.startTime : null,
           items_server: server(items), info_server: server(info),
           after_last_response: window.__akReady.table - lastApi };
}"""

IMAGES_JS = """async () => {
  await Promise.all([...document.querySelectorAll('img.overlay, img.base')].map(
    (i) => i.complete ? null : new Promise((r) => { i.onload = r; i.onerror = r; })));
  return performance.now();
}"""

SLIDER_JS = """async (k) => {
  const s = document.getElementById('alpha'), f = document.getElementById('frame');
  const t0 = performance.now();
  const done = new Promise((r) => f.addEventListener('load', r, { once: true }));
  s.value = String(k);
  s.dispatchEvent(new Event('input'));
  await done;
  return performance.now() - t0;
}"""


def _port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


class ServerTiming:
    """ASGI wrapper adding ``Server-Timing: app;dur=MS`` (the handler's own time) to responses."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        t0 = time.perf_counter()

        async def timed(message: Any) -> None:
            if message["type"] == "http.response.start":
                ms = 1000 * (time.perf_counter() - t0)
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"server-timing", f"app;dur={ms:.1f}".encode())]}
            await send(message)
        await self.app(scope, receive, timed)


class Served:
    """A store served by uvicorn in a thread."""

    def __init__(self, root: pathlib.Path) -> None:
        import uvicorn

        self.app = ServerTiming(create_app(root))
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=_port(),
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        self.base = f"http://127.0.0.1:{self.server.config.port}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _ready(pg: Any, name: str) -> float:
    pg.wait_for_selector(f"body[data-ready*={name}]", state="attached", timeout=60000)
    return float(pg.evaluate(f"() => window.__akReady['{name}']"))


def measure(browser: Any, base: str, repeats: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {k: [] for k in (
        "data_page", "sort", "item_page", "item_maps", "slider", "frame_http", "document",
        "scripts", "items_request", "items_server", "info_server", "after_last_response")}
    pg = browser.new_page(viewport={"width": 1360, "height": 1000})
    for r in range(repeats + 1):  # the first round warms caches and is dropped
        pg.goto(base + "/", wait_until="commit")
        t_table = _ready(pg, "table")
        parts = pg.evaluate(BREAKDOWN_JS)
        t_sort = float(pg.evaluate(SORT_JS))
        pg.goto(base + "/item/0", wait_until="commit")
        t_item = _ready(pg, "item")
        t_maps = float(pg.evaluate(IMAGES_JS))
        if r:
            out["data_page"].append(t_table)
            out["sort"].append(t_sort)
            out["item_page"].append(t_item)
            out["item_maps"].append(t_maps)
            for key, value in parts.items():
                if value is not None:
                    out[key].append(float(value))
    pg.wait_for_selector("#alpha")
    pg.wait_for_timeout(1500)  # let the page prefetch every frame
    frames = int(pg.locator("#alpha").get_attribute("max") or 0) + 1
    for k in list(range(frames - 2, -1, -1)) * 2:
        out["slider"].append(float(pg.evaluate(SLIDER_JS, k)))
    pg.close()
    import httpx

    with httpx.Client(base_url=base) as client:
        for k in range(frames):
            for sign in ("signed", "absolute"):
                t = time.perf_counter()
                client.get(f"/api/items/0/interior/{k}.png", params={"sign": sign, "v": 99})
                out["frame_http"].append(1000 * (time.perf_counter() - t))
    return out


def _chromium_version(exe: str) -> str:
    try:
        return subprocess.run([exe, "--version"], capture_output=True, text=True,
                              timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "chromium (version unknown)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks-explorer.md"))
    ap.add_argument("--stores", default=None,
                    help="keep the synthetic stores in this folder and reuse them next time")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium")
    if exe is None:
        raise SystemExit("Debian's chromium is needed: apt-get install chromium")
    configs = [("100 items, 224 x 224 maps", 100, 224, 24),
               ("10,000 items, 32 x 32 maps", 10_000, 32, 24)]
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as scratch, sync_playwright() as p:
        tmp = args.stores or scratch
        browser = p.chromium.launch(executable_path=exe, args=ARGS)
        for label, n, size, alphas in configs:
            t = time.perf_counter()
            root = pathlib.Path(tmp) / f"s{n}-{size}"
            if not (root / "summary.json").is_file():  # written last: a complete store
                shutil.rmtree(root, ignore_errors=True)
                write_store(root, n, size=size, shard=500, alphas=alphas, failed=[3])
            written = time.perf_counter() - t
            t = time.perf_counter()
            served = Served(root)
            opened = time.perf_counter() - t
            try:
                res = measure(browser, served.base, args.repeats)
            finally:
                served.close()
            rows.append((label, written, opened, {k: statistics.median(v) if v else float("nan")
                                                  for k, v in res.items()}, res))
            print(label, {k: round(statistics.median(v), 1) for k, v in res.items() if v})
        browser.close()
        chromium = _chromium_version(exe)
    load_after = os.getloadavg()
    head = ("| store | data-set page | sort by gap | item page usable | item maps loaded | "
            "alpha slider (prefetched) | one frame from the server |\n|---|---|---|---|---|---|---|")
    lines = [head]
    for label, _, _, med, _ in rows:
        lines.append(f"| {label} | {med['data_page']:.0f} ms | {med['sort']:.0f} ms | "
                     f"{med['item_page']:.0f} ms | {med['item_maps']:.0f} ms | "
                     f"{med['slider']:.1f} ms | {med['frame_http']:.1f} ms |")
    lines += ["", "Where the data-set page's time goes (medians, ms from navigation start unless "
              "said): the HTML received; the scripts received; the `/api/items` request from "
              "start to end, and its handler's own time on the server (Server-Timing); "
              "`/api/info`'s handler time; from the last API response to the table drawn.", "",
              "| store | HTML | scripts | items request | items handler | info handler | "
              "drawing after the last response |", "|---|---|---|---|---|---|---|"]
    for label, _, _, med, _ in rows:
        lines.append(f"| {label} | {med['document']:.0f} | {med['scripts']:.0f} | "
                     f"{med['items_request']:.0f} | {med['items_server']:.1f} | "
                     f"{med['info_server']:.1f} | {med['after_last_response']:.0f} |")
    worst = max(max(med["data_page"], med["sort"], med["item_page"], med["slider"])
                for _, _, _, med, _ in rows)
    body = "\n".join([
        f"Medians of {args.repeats} page loads (after one warm-up load) and "
        f"{len(rows[0][4]['slider'])} slider moves per store, timed inside the page "
        "(`performance.now()` from navigation start).",
        "",
        *lines,
        "",
        f"Goal: every page interactive in under 300 ms at 10,000 items. Slowest median above: "
        f"{worst:.0f} ms ({'met' if worst < 300 else 'NOT met'}).",
        "",
        "Store set-up (not part of any page): " + "; ".join(
            f"{label}: opened (manifest, light columns, item table) in "
            f"{o * 1000:.0f} ms" for label, _, o, _, _ in rows) + ".",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores visible, Python "
        f"{platform.python_version()}, {chromium} headless; load average "
        f"{load_before[0]:.1f} before and {load_after[0]:.1f} after (a shared machine: other "
        "jobs ran at the same time, so these numbers are noisy and on the slow side).",
    ])
    pages.write_section(args.out, "explorer", body, title="# Explorer benchmarks")
    print(body)


if __name__ == "__main__":
    main()
