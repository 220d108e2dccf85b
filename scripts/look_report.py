#!/usr/bin/env python3
"""Open a Snakemake HTML (or .zip) report in headless Chromium, navigate into it over the
DevTools protocol, and save screenshots + visible text of each step.

    python3 scripts/look_report.py REPORT OUTDIR [--claims-entry REGEX] [--figure NAME]
        [--category NAME ...]

Standard library only (own minimal websocket client), so any python3 runs it.

Steps, each saved as OUTDIR/NN_name.png and OUTDIR/NN_name.txt (the text is
document.body.innerText plus the text of any iframes, e.g. HTML results):
  00_landing        the landing page
  01_claims         after clicking the "Claims" category in the menu
  02_claims_view    after clicking the claims entry's view (eye) button
  03_claims_info    after clicking the claims entry's info button (caption)
  04_figures, 05_figure_view, 06_figure_info   the same for the Figures category / --figure
  07_<category>...  every other result category (e.g. Tables), listing only
OUTDIR/summary.json: every result in the report (category, mime type, caption length,
whether the report can display it or only offers a download) and the checks below.
OUTDIR/downloads/: files the browser downloaded when a view button only offers a download.

Exit status (first failure wins; all findings are printed and in summary.json):
  0  ok
  2  no "Claims" category, or no entry matching --claims-entry in it
  3  the claims table is not visible in the page: no rendered table (in the page or an
     iframe) with a "verdict" column and a cell reproduced/inconclusive/contradicted.
     The caption alone (which mentions these words) does not count.
  4  the figure entry is missing or its image did not render
  1  browser / protocol error
"""
import argparse
import base64
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import zipfile

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--mute-audio", "--remote-debugging-port=0",
]


# ---------------------------------------------------------------- minimal websocket/CDP
class WS:
    def __init__(self, url, timeout=60):
        hostport, path = url[len("ws://"):].split("/", 1)
        host, port = hostport.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.s.recv(4096)
            if not chunk:
                raise ConnectionError("websocket handshake: connection closed")
            buf += chunk
        head, self.buf = buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise ConnectionError("websocket handshake failed: " + head.decode(errors="replace"))
        self.id = 0
        self.events = []

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("websocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send(self, text):
        data = text.encode()
        n = len(data)
        hdr = bytearray([0x81])
        if n < 126:
            hdr.append(0x80 | n)
        elif n < 65536:
            hdr.append(0x80 | 126)
            hdr += struct.pack(">H", n)
        else:
            hdr.append(0x80 | 127)
            hdr += struct.pack(">Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(data))
        self.s.sendall(bytes(hdr) + mask + masked)

    def _recv(self):
        parts = []
        while True:
            b1, b2 = self._read(2)
            op, n = b1 & 0x0F, b2 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b2 & 0x80 else None
            data = self._read(n)
            if mask:
                data = bytes(b ^ mask[i & 3] for i, b in enumerate(data))
            if op == 8:
                raise ConnectionError("websocket closed by browser")
            if op in (9, 10):
                continue
            parts.append(data)
            if b1 & 0x80:
                return json.loads(b"".join(parts).decode())

    def call(self, method, **params):
        self.id += 1
        self._send(json.dumps({"id": self.id, "method": method, "params": params}))
        while True:
            m = self._recv()
            if m.get("id") == self.id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            if "method" in m:
                self.events.append(m)


# ---------------------------------------------------------------- page helpers (JS)
JS_HELPERS = r"""
window.__look = {
  visible(el) { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; },
  // click the first visible <a>/<button> whose own text is exactly `text`
  clickText(text) {
    const els = Array.from(document.querySelectorAll('a,button,[role=button]'))
      .filter(e => e.innerText.trim() === text && this.visible(e));
    if (!els.length) return false;
    els[0].click(); return true;
  },
  // the action button (eye / information-circle) belonging to the entry whose row text matches re
  entryButton(re, icon) {
    const rx = new RegExp(re);
    for (const b of document.querySelectorAll(`a[iconname="${icon}"]`)) {
      let p = b.parentElement;
      while (p && !['TR', 'LI', 'BODY'].includes(p.tagName)) p = p.parentElement;
      if (p && p.tagName !== 'BODY' && rx.test(p.innerText)) return b;
    }
    return null;
  },
  entries() {
    return Array.from(document.querySelectorAll('a[iconname="eye"]')).map(b => {
      let p = b.parentElement;
      while (p && !['TR', 'LI', 'BODY'].includes(p.tagName)) p = p.parentElement;
      return p ? p.innerText.trim() : '';
    });
  },
  clickEntry(re, icon) {
    const b = this.entryButton(re, icon);
    if (!b) return null;
    const info = {href: (b.getAttribute('href') || '').slice(0, 40),
                  download: b.getAttribute('download'), target: b.getAttribute('target')};
    b.click();
    return info;
  },
};
true
"""

# run inside each document (main page and every frame): rendered tables and raw markdown
JS_TABLE_SCAN = r"""
(() => {
  const verdicts = /^(reproduced|inconclusive|contradicted|not run|not evaluated|not comparable)$/i;
  const out = {tables: [], markdown_pipes: false};
  for (const t of document.querySelectorAll('table')) {
    const r = t.getBoundingClientRect();
    if (!(r.width > 0 && r.height > 0)) continue;
    const cells = Array.from(t.querySelectorAll('th,td')).map(c => c.innerText.trim());
    const hasVerdictCol = cells.some(c => /^verdict$/i.test(c));
    const verdictCells = cells.filter(c => verdicts.test(c));
    const header = Array.from(t.querySelectorAll('tr')).slice(0, 1)
      .map(tr => Array.from(tr.children).map(c => c.innerText.trim()))[0] || [];
    out.tables.push({rows: t.querySelectorAll('tr').length, header,
                     has_verdict_column: hasVerdictCol, verdict_cells: verdictCells.length});
  }
  const txt = document.body ? document.body.innerText : '';
  out.markdown_pipes = /^\s*\|.*verdict.*\|\s*$/im.test(txt);
  return out;
})()
"""


class Page:
    def __init__(self, ws, outdir):
        self.ws = ws
        self.outdir = outdir
        ws.call("Page.enable")
        ws.call("Runtime.enable")

    def ev(self, expr, context_id=None):
        kw = dict(expression=expr, returnByValue=True, awaitPromise=True)
        if context_id is not None:
            kw["contextId"] = context_id
        r = self.ws.call("Runtime.evaluate", **kw)
        if "exceptionDetails" in r:
            raise RuntimeError("JS error: " + json.dumps(r["exceptionDetails"])[:400])
        return r["result"].get("value")

    def wait(self, expr, timeout=15.0, step=0.2):
        t0 = time.time()
        while time.time() - t0 < timeout:
            try:
                if self.ev(expr):
                    return True
            except RuntimeError:
                pass
            time.sleep(step)
        return False

    def settle(self):
        # two animation frames + a short pause for React to render / images to decode
        self.ev("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        time.sleep(0.4)
        self.ev("Promise.all(Array.from(document.images).map(i => i.decode().catch(() => 0)))")

    def open(self, url):
        self.ws.call("Page.navigate", url=url)
        if not self.wait("document.readyState === 'complete' && "
                         "document.body && document.body.innerText.length > 0", 60):
            raise RuntimeError("report did not load")
        self.wait("/Report/.test(document.body.innerText)", 15)
        self.settle()
        self.ev(JS_HELPERS)

    def frame_contexts(self):
        """(url, contextId) for every child frame (e.g. HTML/PDF results in an iframe)."""
        out = []

        def walk(node, depth):
            if depth > 0:
                fr = node["frame"]
                try:
                    ctx = self.ws.call("Page.createIsolatedWorld", frameId=fr["id"],
                                       worldName="look")["executionContextId"]
                    out.append((fr.get("url", ""), ctx))
                except RuntimeError as e:
                    out.append((fr.get("url", ""), None))
                    print(f"  note: cannot enter frame {fr.get('url', '')[:60]}: {e}")
            for ch in node.get("childFrames", []):
                walk(ch, depth + 1)

        walk(self.ws.call("Page.getFrameTree")["frameTree"], 0)
        return out

    def snapshot(self, name):
        """Screenshot + visible text (page and frames) -> OUTDIR/name.{png,txt}."""
        self.settle()
        shot = self.ws.call("Page.captureScreenshot", format="png")
        png = os.path.join(self.outdir, name + ".png")
        with open(png, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        text = self.ev("document.body.innerText") or ""
        for url, ctx in self.frame_contexts():
            if ctx is None:
                continue
            ft = self.ev("document.body ? document.body.innerText : ''", ctx) or ""
            text += f"\n\n----- iframe {url[:70]} -----\n{ft}"
        with open(os.path.join(self.outdir, name + ".txt"), "w") as f:
            f.write(text)
        print(f"  saved {name}.png / .txt ({len(text)} chars of text)")
        return text

    def scan_tables(self):
        scans = [("page", self.ev(JS_TABLE_SCAN))]
        for url, ctx in self.frame_contexts():
            if ctx is not None:
                scans.append((url[:70], self.ev(JS_TABLE_SCAN, ctx)))
        return scans


# ---------------------------------------------------------------- browser lifecycle
def start_chromium(profile, width, height, chromium):
    shutil.rmtree(profile, ignore_errors=True)
    os.makedirs(profile)
    cmd = ["nice", "-n", "10", chromium, *FLAGS, f"--user-data-dir={profile}",
           f"--window-size={width},{height}", "about:blank"]
    log = open(os.path.join(profile, "..", "chromium.log"), "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
    port_file = os.path.join(profile, "DevToolsActivePort")
    t0 = time.time()
    while not (os.path.exists(port_file) and open(port_file).read().strip()):
        if proc.poll() is not None or time.time() - t0 > 60:
            raise RuntimeError("chromium did not start (see chromium.log)")
        time.sleep(0.2)
    port = int(open(port_file).read().split()[0])
    return proc, port


def stop_chromium(proc):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, 15)  # its own session: only the processes this script started
            proc.wait(10)
            for _ in range(50):  # let the renderer/zygote children of the group exit too
                os.killpg(proc.pid, 0)
                time.sleep(0.1)
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        except Exception:
            try:
                os.killpg(proc.pid, 9)
            except Exception:
                pass


def report_url(path, outdir):
    path = os.path.abspath(path)
    if path.endswith(".zip"):
        dest = os.path.join(outdir, "unzipped")
        shutil.rmtree(dest, ignore_errors=True)
        with zipfile.ZipFile(path) as z:
            z.extractall(dest)
        cands = sorted((os.path.join(r, f) for r, _, fs in os.walk(dest) for f in fs
                        if f == "report.html"), key=len)
        if not cands:
            raise RuntimeError("no report.html inside the zip")
        path = cands[0]
    return "file://" + path


# ---------------------------------------------------------------- the walk
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report")
    ap.add_argument("outdir")
    ap.add_argument("--claims-category", default="Claims")
    ap.add_argument("--claims-entry", default=r"claims\.(md|csv|tsv|html?)\b",
                    help="regex on the entry's row text (default: %(default)s)")
    ap.add_argument("--figure", default="fig1_paired_reward_diff.png")
    ap.add_argument("--figures-category", default="Figures")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=2000)
    ap.add_argument("--chromium", default=CHROMIUM)
    a = ap.parse_args()

    outdir = os.path.abspath(a.outdir)
    os.makedirs(outdir, exist_ok=True)
    for f in os.listdir(outdir):
        if re.match(r"\d\d_.*\.(png|txt)$", f):
            os.remove(os.path.join(outdir, f))
    downloads = os.path.join(outdir, "downloads")
    shutil.rmtree(downloads, ignore_errors=True)
    os.makedirs(downloads)
    url = report_url(a.report, outdir)
    findings, summary = [], {"report": os.path.abspath(a.report), "url": url}
    status = 0

    def fail(code, msg):
        nonlocal status
        findings.append(f"FAIL({code}): {msg}")
        print(f"  FAIL({code}): {msg}")
        if status == 0:
            status = code

    def note(msg):
        findings.append(msg)
        print("  " + msg)

    proc, port = start_chromium(os.path.join(outdir, "chrome-profile"), a.width, a.height,
                                a.chromium)
    try:
        ver = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/version"))
        browser = WS(ver["webSocketDebuggerUrl"])
        browser.call("Browser.setDownloadBehavior", behavior="allow", downloadPath=downloads)
        tabs = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json"))
        tab = next(t for t in tabs if t["type"] == "page")
        page = Page(WS(tab["webSocketDebuggerUrl"]), outdir)
        page.ws.call("Emulation.setDeviceMetricsOverride", width=a.width, height=a.height,
                     deviceScaleFactor=1, mobile=False)

        print(f"opening {url}")
        page.open(url)
        # inventory of results straight from the report's data
        summary["results"] = page.ev("""(() => {
          if (typeof results === 'undefined') return null;
          const viewable = ['image/svg+xml','image/png','image/jpeg','text/html','application/pdf'];
          const cat = {};
          if (typeof categories !== 'undefined')
            for (const [c, subs] of Object.entries(categories))
              for (const [sc, paths] of Object.entries(subs))
                for (const p of paths) cat[p] = sc === 'Other' ? c : c + ' / ' + sc;
          return Object.entries(results).map(([p, r]) => ({
            path: p, category: cat[p], mime: r.mime_type,
            caption_chars: (r.caption || '').replace(/<[^>]*>/g, '').trim().length,
            shown_in_report: viewable.includes(r.mime_type)}));
        })()""")
        summary["menu"] = page.ev("document.body.innerText")
        page.snapshot("00_landing")
        categories = page.ev("typeof categories === 'undefined' ? [] : "
                             "Object.keys(categories)") or []
        summary["categories"] = categories

        # ---- Claims
        print(f"[claims] category {a.claims_category!r}")
        if not page.ev(f"__look.clickText({json.dumps(a.claims_category)})"):
            fail(2, f"no menu entry {a.claims_category!r}")
        else:
            page.wait("__look.entries().length > 0", 10)
            page.snapshot("01_claims")
            entries = page.ev("__look.entries()")
            note(f"Claims entries: {entries}")
            summary["claims_entries"] = entries
            click = page.ev(f"__look.clickEntry({json.dumps(a.claims_entry)}, 'eye')")
            if click is None:
                fail(2, f"no entry matching /{a.claims_entry}/ under {a.claims_category!r}")
            else:
                time.sleep(1.0)
                page.snapshot("02_claims_view")
                if click.get("download") or not click["href"].startswith("#"):
                    got = os.listdir(downloads)
                    note(f"claims entry has no in-report view: its eye button is a "
                         f"download link ({click['href']}..., download={click['download']!r});"
                         f" browser downloaded {got}")
                scans = page.scan_tables()
                summary["claims_table_scan"] = scans
                ok = any(t["has_verdict_column"] and t["verdict_cells"] > 0
                         for _, s in scans for t in s["tables"])
                raw_md = any(s["markdown_pipes"] for _, s in scans)
                if ok:
                    note("claims table rendered: " + json.dumps(
                        [t for _, s in scans for t in s["tables"] if t["has_verdict_column"]]))
                elif raw_md:
                    fail(3, "claims table shown as raw markdown text (pipes), not a table")
                else:
                    fail(3, "no rendered table with a 'verdict' column and verdict cells "
                            "in the page or its frames after opening the claims entry")
                # caption
                page.open(url)
                page.ev(f"__look.clickText({json.dumps(a.claims_category)})")
                page.wait("__look.entries().length > 0", 10)
                if page.ev(f"__look.clickEntry({json.dumps(a.claims_entry)}, "
                           "'information-circle')") is not None:
                    txt = page.snapshot("03_claims_info")
                    cap = re.search(r"DESCRIPTION\s*\n(.*?)\n\s*SIZE", txt, re.S | re.I)
                    note("claims caption: " + ("present" if cap and cap.group(1).strip()
                                                else "MISSING"))

        # ---- Figures
        print(f"[figures] category {a.figures_category!r}, figure {a.figure!r}")
        page.open(url)
        if not page.ev(f"__look.clickText({json.dumps(a.figures_category)})"):
            fail(4, f"no menu entry {a.figures_category!r}")
        else:
            page.wait("__look.entries().length > 0", 10)
            page.snapshot("04_figures")
            fig_re = re.escape(a.figure)
            if page.ev(f"__look.clickEntry({json.dumps(fig_re)}, 'eye')") is None:
                fail(4, f"no figure entry {a.figure!r}")
            else:
                page.wait("Array.from(document.images).some(i => i.complete && "
                          "i.naturalWidth > 0)", 10)
                page.snapshot("05_figure_view")
                imgs = page.ev("Array.from(document.images).map(i => "
                               "({w: i.naturalWidth, h: i.naturalHeight, "
                               "shown_w: Math.round(i.getBoundingClientRect().width), "
                               "shown_h: Math.round(i.getBoundingClientRect().height)}))")
                summary["figure_images"] = imgs
                if any(i["w"] > 0 for i in imgs):
                    note(f"figure rendered: {imgs}")
                else:
                    fail(4, f"figure {a.figure!r} did not render")
                page.ev(f"__look.clickEntry({json.dumps(fig_re)}, 'information-circle')")
                txt = page.snapshot("06_figure_info")
                cap = re.search(r"DESCRIPTION\s*\n(.*?)\n\s*SIZE", txt, re.S | re.I)
                note("figure caption: " + ("present" if cap and cap.group(1).strip()
                                            else "MISSING"))

        # ---- every other category: listing only
        n = 7
        for cat in categories:
            if cat in (a.claims_category, a.figures_category):
                continue
            page.open(url)
            if page.ev(f"__look.clickText({json.dumps(cat)})"):
                page.wait("__look.entries().length > 0", 10)
                page.snapshot(f"{n:02d}_{re.sub(r'[^A-Za-z0-9]+', '_', cat)}")
                n += 1

        for r in summary.get("results") or []:
            if r["caption_chars"] == 0:
                note(f"no caption: {r['path']}")
            if not r["shown_in_report"]:
                note(f"not displayable in report (download only, {r['mime']}): {r['path']}")
    except Exception as e:  # noqa: BLE001
        fail(1, f"{type(e).__name__}: {e}")
    finally:
        stop_chromium(proc)
        shutil.rmtree(os.path.join(outdir, "chrome-profile"), ignore_errors=True)

    summary["findings"] = findings
    summary["exit_status"] = status
    with open(os.path.join(outdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(f"exit {status}; summary in {os.path.join(outdir, 'summary.json')}")
    sys.exit(status)


if __name__ == "__main__":
    main()
