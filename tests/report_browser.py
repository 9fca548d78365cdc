"""Open a Snakemake report (.zip) in headless Chromium and walk it as a reader would.

The unzipped report is served on 127.0.0.1 beside a small driver page that loads report.html in a
same-origin iframe; for every category and subcategory the driver opens the results list, then for each
row clicks its info button (the caption page) and its view button (the figure), and records what the page
showed: the result behind the row, the caption's text, errors the page raised, whether the figure's
element loaded, and the first bytes its link serves. Chromium prints the DOM once the driver is done
(`--dump-dom` with a virtual-time budget), and the record is read back from it as JSON.
"""

from __future__ import annotations

import functools
import html
import json
import re
import shutil
import subprocess
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DRIVER = r"""<!doctype html><html><body><pre id="stemlab-check">pending</pre>
<iframe id="report" src="REPORT" style="width:1600px;height:1000px"></iframe>
<script>
const sleep = ms => new Promise(r => setTimeout(r, ms));
const ERROR_TEXT = /System Message|Traceback|Uncaught|is not defined|Cannot read properties/;
async function head(url) {
  const resp = await fetch(url);
  const bytes = new Uint8Array(await resp.arrayBuffer());
  return {status: resp.status, head: String.fromCharCode(...bytes.slice(0, 4)), size: bytes.length};
}
async function main() {
  const frame = document.getElementById("report");
  let waited = 0;
  const ready = () => { try { return frame.contentWindow.eval("typeof app !== 'undefined' && !!app && !!app.setView"); } catch (e) { return false; } };
  while (!ready() && waited < 600) { await sleep(50); waited++; }
  const w = frame.contentWindow, d = frame.contentDocument, app = w.eval("app");
  const record = {errors: [], rows: [], categories: w.categories, loaded: ready()};
  w.addEventListener("error", ev => record.errors.push(String(ev.message)));
  const origError = w.console.error;
  w.console.error = (...args) => { record.errors.push(args.map(String).join(" ")); origError.apply(w.console, args); };
  for (const [category, subs] of Object.entries(w.categories)) {
    for (const subcategory of Object.keys(subs)) {
      // through the menu, as the breadcrumbs go: the results list keeps its rows while it stays mounted
      const open = async () => {
        app.setView({navbarMode: "menu"}); await sleep(100);
        app.setView({navbarMode: "subcategory", category, subcategory}); await sleep(150);
      };
      await open();
      const count = d.querySelectorAll("nav table tbody tr").length;
      for (let i = 0; i < count; i++) {
        await open();
        const trs = d.querySelectorAll("nav table tbody tr"); const tr = trs[i];
        if (!tr) { record.rows.push({category, subcategory, missing_row: i, count: trs.length, mode: app.state.navbarMode, text: d.querySelector("nav").innerText}); continue; }
        const row = {category, subcategory, label: Array.from(tr.querySelectorAll("td")).slice(0, -1).map(td => td.innerText.trim())};
        const eye = tr.querySelector('a[iconname="eye"]'), info = tr.querySelector('a[iconname="information-circle"]');
        if (info) {
          info.click(); await sleep(150);
          row.path = app.state.resultPath;
          row.info = d.querySelector("nav").innerText;
        }
        await open();
        const eye2 = d.querySelectorAll("nav table tbody tr")[i].querySelector('a[iconname="eye"]');
        if (eye2 && eye2.getAttribute("href") !== "#") {
          row.view = "download";
          row.href = eye2.getAttribute("href");
        } else if (eye2) {
          eye2.click(); await sleep(400);
          row.view = app.state.content;
          row.href = app.state.contentPath;
          if (row.view === "img") {
            const img = d.querySelector("img[src='" + row.href + "']");
            row.element = !!img;
            row.rendered = !!img && img.complete && img.naturalWidth > 0;
          } else {
            const iframe = d.querySelector("iframe");
            row.element = !!iframe && iframe.getAttribute("src") === row.href;
            try { row.rendered = !!iframe && iframe.contentDocument.contentType; } catch (e) { row.rendered = "inaccessible"; }
          }
        }
        if (row.href) row.served = await head(new URL(row.href, w.location.href));
        row.page_errors = (d.body.innerText.match(ERROR_TEXT) || []).map(String);
        record.rows.push(row);
      }
    }
  }
  document.getElementById("stemlab-check").textContent = JSON.stringify(record);
  frame.remove();  // nothing left running: virtual time runs out at once and Chromium prints the DOM
}
main().catch(e => { document.getElementById("stemlab-check").textContent = JSON.stringify({fatal: String(e && e.stack || e)}); });
</script></body></html>
"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def browse_report(report_zip: Path, workdir: Path, chromium: str = "chromium", budget_ms: int = 300_000,
                  timeout: float = 300, leave_out: tuple[str, ...] = ()) -> dict:
    """Unzip `report_zip` into `workdir` (less the members whose names end with one of `leave_out`), walk
    it in headless Chromium and return the driver's record."""
    with zipfile.ZipFile(report_zip) as zf:
        names = [n for n in zf.namelist() if not (leave_out and n.endswith(leave_out))]
        zf.extractall(workdir, members=names)
        pages = [n for n in names if n.endswith("/report.html")]
    assert len(pages) == 1, f"{report_zip} holds {pages}, not one report.html"
    (workdir / "check.html").write_text(DRIVER.replace("REPORT", pages[0]), encoding="utf-8")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(workdir)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        port = httpd.server_address[1]
        out = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             f"--user-data-dir={workdir / 'chromium-profile'}", f"--virtual-time-budget={budget_ms}",
             "--dump-dom", f"http://127.0.0.1:{port}/check.html"],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
    finally:
        httpd.shutdown()
        httpd.server_close()
    match = re.search(r'<pre id="stemlab-check">(.*?)</pre>', out.stdout, re.S)
    assert match, f"chromium printed no driver record (rc {out.returncode}): {out.stderr[-2000:]}"
    text = html.unescape(match.group(1))
    assert text != "pending", f"the driver did not finish within the budget: {out.stderr[-2000:]}"
    return json.loads(text)


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")
