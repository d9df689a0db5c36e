"""How fast the explorer's pages are, in a real headless Chromium, on the server, and against
DuckDB querying the same shards directly.

Synthetic run stores (``tests/serve/synthetic.py``) of 10,000 items with 224 x 224 maps and of
100,000 items with small maps are served by uvicorn on 127.0.0.1 in this process (each store
compared with a second copy of itself, ``create_app(root, others=[root])``); Debian's Chromium,
driven by Playwright, loads the pages. Per operation (list, sort, filter, item, compare):

* in Chromium: navigation start (or the click) to the page drawn (``ready(...)``), and for the
  item page to every map picture decoded ("item maps loaded");
* on the server: the HTTP request's wall time from this process (httpx), the table's cached
  orders dropped first, so each sort or filter is computed from scratch;
* DuckDB: the same question asked of the Parquet shards directly (``read_parquet``), the
  baseline a user could write without the explorer.

The older measurements stay:

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
  document.querySelector('th[data-sort="rel_gap:integrated_gradients"] button').click();
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

        self.explorer_app = create_app(root, others=[root])
        self.app = ServerTiming(self.explorer_app)
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



def measure_pages(browser: Any, base: str, repeats: int) -> dict[str, list[float]]:
    """Chromium: the filtered list and the compare page, navigation start to drawn."""
    out: dict[str, list[float]] = {"filter": [], "compare": []}
    pg = browser.new_page(viewport={"width": 1360, "height": 1000})
    for r in range(repeats + 1):
        pg.goto(base + f"/?q=photo_0{r % 10}", wait_until="commit")
        t_filter = _ready(pg, "table")
        pg.goto(base + "/compare", wait_until="commit")
        t_compare = _ready(pg, "compare")
        if r:
            out["filter"].append(t_filter)
            out["compare"].append(t_compare)
    pg.close()
    return out


def _first_compare(served: Served) -> float:
    """The first compare request after the store opened (ms): it joins the two runs, which
    every later page reuses until a store changes."""
    import httpx

    t = time.perf_counter()
    resp = httpx.get(served.base + "/api/compare?a=0&b=1&measure=rel_gap", timeout=300)
    resp.raise_for_status()
    return 1000 * (time.perf_counter() - t)


def measure_server(served: Served, n: int, repeats: int) -> dict[str, list[float]]:
    """Server: each API request's wall time, the table's cached orders dropped first."""
    import httpx

    explorer = served.explorer_app.state.explorer
    table = explorer.table
    calls = {"list": lambda r: f"/api/items?page={r + 1}",
             "sort": lambda r: "/api/items?sort=rel_gap:integrated_gradients&desc=" +
             ("true" if r % 2 else "false"),
             "filter": lambda r: f"/api/items?q=photo_0{r % 10}",
             "item": lambda r: f"/api/items/{(r * 7919) % n}",
             "item_map": lambda r: f"/api/items/{(r * 7919) % n + 1}/map.png?"
             "method=integrated_gradients&sign=signed",
             "compare": lambda r: f"/api/compare?a=0&b=1&measure=rel_gap&page={r}"}
    out: dict[str, list[float]] = {k: [] for k in calls}
    with httpx.Client(base_url=served.base, timeout=120) as client:
        for r in range(repeats + 1):
            for key, url in calls.items():
                table.forget()
                explorer.comparisons.forget()  # each compare page sorts from scratch
                t = time.perf_counter()
                resp = client.get(url(r))
                ms = 1000 * (time.perf_counter() - t)
                if resp.status_code != 200:
                    raise RuntimeError(f"{url(r)}: {resp.status_code} {resp.text[:200]}")
                if r:
                    out[key].append(ms)
    return out


def measure_duckdb(root: pathlib.Path, n: int, repeats: int) -> dict[str, list[float]]:
    """DuckDB asking the shards the same questions (a fresh query each time)."""
    import duckdb

    items = f"read_parquet('{root}/items/*.parquet')"
    ig = f"read_parquet('{root}/results/part-integrated_gradients-*.parquet')"
    queries = {
        "list": lambda r: f"SELECT item, item_id, source, status FROM {items} ORDER BY item "
                          f"LIMIT 50 OFFSET {50 * (r + 1)}",
        "sort": lambda r: f"SELECT i.item, i.item_id, r.relative_gap FROM {items} i JOIN "
                          f"(SELECT item, relative_gap FROM {ig}) r USING (item) ORDER BY "
                          f"abs(r.relative_gap) {'DESC' if r % 2 else 'ASC'} NULLS LAST LIMIT 50",
        "filter": lambda r: f"SELECT item, item_id FROM {items} WHERE lower(item_id) LIKE "
                            f"'%photo_0{r % 10}%' ORDER BY item LIMIT 50",
        "item": lambda r: f"SELECT method, output, gap, \"values\" FROM "
                          f"read_parquet('{root}/results/*.parquet', union_by_name=true) "
                          f"WHERE item = {(r * 7919) % n}",
        "compare": lambda r: f"SELECT count(*), avg(abs(b.relative_gap) - abs(a.relative_gap)) "
                             f"FROM {ig} a JOIN {ig} b USING (item_id)",
    }
    out: dict[str, list[float]] = {k: [] for k in queries}
    con = duckdb.connect()
    for r in range(repeats + 1):
        for key, q in queries.items():
            t = time.perf_counter()
            con.execute(q(r)).fetchall()
            if r:
                out[key].append(1000 * (time.perf_counter() - t))
    con.close()
    return out


def _chromium_version(exe: str) -> str:
    try:
        return subprocess.run([exe, "--version"], capture_output=True, text=True,
                              timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "chromium (version unknown)"


#: (label, items, map side, map channels, methods) of each store measured.
CONFIGS = {
    "10k-224": ("10,000 items, 224 x 224 maps", 10_000, 224, 1, ("integrated_gradients",)),
    "100k": ("100,000 items, 16 x 16 maps", 100_000, 16, 3, ("integrated_gradients",
                                                             "saliency")),
    "1k": ("1,000 items, 32 x 32 maps (quick check)", 1_000, 32, 3, ("integrated_gradients",
                                                                     "saliency")),
}
OPS = ("list", "sort", "filter", "item", "item maps loaded", "compare")


def _store(tmp: str, key: str) -> tuple[pathlib.Path, float]:
    _, n, size, channels, methods = CONFIGS[key]
    t = time.perf_counter()
    root = pathlib.Path(tmp) / f"s-{key}"
    if not (root / "summary.json").is_file():  # written last: a complete store
        shutil.rmtree(root, ignore_errors=True)
        write_store(root, n, size=size, shard=1000, alphas=8, failed=[3], channels=channels,
                    inputs=False, methods=methods, folders=True)
    return root, time.perf_counter() - t


def _row(med: dict[str, float], key: str) -> str:
    v = med.get(key, float("nan"))
    return "–" if v != v else f"{v:.0f} ms" if v >= 10 else f"{v:.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks-explorer.md"))
    ap.add_argument("--stores", default=None,
                    help="keep the synthetic stores in this folder and reuse them next time")
    ap.add_argument("--configs", nargs="+", default=["10k-224", "100k"], choices=list(CONFIGS))
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium")
    if exe is None:
        raise SystemExit("Debian's chromium is needed: apt-get install chromium")
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as scratch, sync_playwright() as p:
        tmp = args.stores or scratch
        browser = p.chromium.launch(executable_path=exe, args=ARGS)
        for key in args.configs:
            label, n = CONFIGS[key][0], CONFIGS[key][1]
            root, written = _store(tmp, key)
            t = time.perf_counter()
            served = Served(root)
            opened = time.perf_counter() - t
            joined = _first_compare(served)
            try:
                res = measure(browser, served.base, args.repeats)
                res.update(measure_pages(browser, served.base, args.repeats))
                server = measure_server(served, n, args.repeats)
            finally:
                served.close()
            duck = measure_duckdb(root, n, args.repeats)
            med = {k: statistics.median(v) if v else float("nan") for k, v in res.items()}
            smed = {k: statistics.median(v) for k, v in server.items()}
            dmed = {k: statistics.median(v) for k, v in duck.items()}
            rows.append((label, written, opened, med, smed, dmed, joined,
                         os.getloadavg()[0]))
            print(label, {k: round(v, 1) for k, v in {**med, **smed}.items()}, dmed, flush=True)
        browser.close()
        chromium = _chromium_version(exe)
    load_after = os.getloadavg()
    lines = []
    for label, _, _, med, smed, dmed, _, load in rows:
        chrom = {"list": med["data_page"], "sort": med["sort"], "filter": med["filter"],
                 "item": med["item_page"], "item maps loaded": med["item_maps"],
                 "compare": med["compare"]}
        serv = {"list": smed["list"], "sort": smed["sort"], "filter": smed["filter"],
                "item": smed["item"], "item maps loaded": smed["item_map"],
                "compare": smed["compare"]}
        duckm = {"list": dmed["list"], "sort": dmed["sort"], "filter": dmed["filter"],
                 "item": dmed["item"], "compare": dmed["compare"]}
        worst = max(max(chrom.values()), max(serv.values()))
        lines += [f"**{label}** (load average {load:.1f} when measured)", "",
                  "| operation | Chromium (page drawn) | server (HTTP request) | "
                  "DuckDB on the shards | under 300 ms |", "|---|---|---|---|---|"]
        for op in OPS:
            ok = max(chrom[op], serv[op]) < 300
            lines.append(f"| {op} | {_row(chrom, op)} | {_row(serv, op)} | {_row(duckm, op)} "
                         f"| {'yes' if ok else 'NO'} |")
        lines += ["", f"Slowest median: {worst:.0f} ms "
                  f"({'goal met' if worst < 300 else 'goal NOT met'}); alpha slider "
                  f"(prefetched) {med['slider']:.1f} ms, one interior frame from the server "
                  f"{med['frame_http']:.1f} ms.", ""]
    body = "\n".join([
        f"Medians of {args.repeats} repetitions (after one warm-up) per operation and store. "
        "Chromium: `performance.now()` inside the page, from navigation start (list: the "
        "data-set page; filter: the page opened with a filter; item: the item page usable; "
        "item maps loaded: every map picture decoded; compare: the compare page with its "
        "aggregate and items) or from the click (sort). Server: one HTTP request from this "
        "process (list: a page of 50 rows; sort and filter with the table's cached orders "
        "dropped; item: the item's JSON; item maps loaded: one map PNG; compare: a page of "
        "the comparison with its intervals, the two runs' join reused and its order dropped). "
        "DuckDB: the same question asked of "
        "the Parquet shards with `read_parquet` (compare: the mean paired difference, no "
        "intervals).",
        "",
        *lines,
        "Store set-up (not part of any page): " + "; ".join(
            f"{label}: written in {w:.0f} s, opened (manifest, light columns, item table) in "
            f"{o * 1000:.0f} ms, the two runs joined for the first compare page in "
            f"{j:.0f} ms" for label, w, o, _, _, _, j, _ in rows) + ".",
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
