"""Measure rendered pages in headless Chromium: what overflows the window, what is clipped.

Chromium runs once per page with `--dump-dom`; a script appended to (a copy of) the page
measures the laid-out DOM and writes its findings as JSON into `<pre id="carpool-measure">`,
which is read back from the dumped DOM. No driver, no network, a fresh profile per run.

* `measure_page(html, width)`: the page at `width` px: the document's and every box's
  horizontal overflow, headings clipped, images that did not load.
* `measure_figures(svgs, width)`: each SVG inlined in one page: every text group (matplotlib
  writes one `<g id="text_N">` per text; the title is `<g id="figure-title">`) must lie
  inside the figure, and no two texts may overlap.

Chromium is Debian's `chromium` package (`/usr/bin/chromium`; .ci/run installs it).
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--hide-scrollbars", "--mute-audio"]
RESULT = re.compile(r'<pre id="carpool-measure">(.*?)</pre>', re.S)

PAGE_JS = r"""
(function () {
  const W = window.innerWidth, tol = 1;
  const boxes = new Set(['TABLE', 'THEAD', 'TBODY', 'TR', 'TD', 'TH', 'DIV', 'P', 'H1', 'H2', 'H3',
                         'H4', 'FIGURE', 'FIGCAPTION', 'LI', 'UL', 'PRE', 'IMG', 'BODY']);
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
      (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : '') +
      ' "' + (el.textContent || el.getAttribute('alt') || '').trim().slice(0, 60) + '"';
  const out = {width: W, scrollWidth: document.documentElement.scrollWidth, overflow: [],
               clipped: [], images: 0, broken: [], headings: 0, tables: 0};
  for (const el of document.body.querySelectorAll('*')) {
    if (el.id === 'carpool-measure' || el.closest('script, style')) continue;
    const cs = getComputedStyle(el);
    if (cs.display === 'none' || cs.display.startsWith('inline') && el.tagName !== 'IMG') continue;
    const b = el.getBoundingClientRect();
    if (b.width === 0 && b.height === 0) continue;
    if (b.right > W + tol || b.left < -tol)
      out.overflow.push({element: name(el), left: b.left, right: b.right});
    if (boxes.has(el.tagName) && el.scrollWidth > el.clientWidth + tol && el.clientWidth > 0)
      out.overflow.push({element: name(el), scrollWidth: el.scrollWidth, clientWidth: el.clientWidth});
    if (/^H[1-4]$/.test(el.tagName)) {
      out.headings++;
      if (el.scrollHeight > el.clientHeight + tol || el.scrollWidth > el.clientWidth + tol)
        out.clipped.push({element: name(el)});
    }
    if (el.tagName === 'TABLE') out.tables++;
  }
  for (const img of document.images) {
    out.images++;
    if (!img.complete || img.naturalWidth === 0) out.broken.push(name(img));
  }
  return out;
})()
"""

FIGURES_JS = r"""
(function () {
  const tol = 1, out = {figures: 0, titled: 0, outside: [], overlaps: []};
  for (const box of document.querySelectorAll('div.carpool-fig')) {
    const svg = box.querySelector('svg'), fig = box.dataset.name;
    const r = svg.getBoundingClientRect();
    out.figures++;
    if (svg.querySelector('#figure-title')) out.titled++;
    const texts = [...svg.querySelectorAll('g[id^="text_"], g#figure-title')]
        .map(g => ({id: g.id, b: g.getBoundingClientRect()}))
        .filter(t => t.b.width > 0 && t.b.height > 0);
    for (const t of texts)
      if (t.b.left < r.left - tol || t.b.right > r.right + tol ||
          t.b.top < r.top - tol || t.b.bottom > r.bottom + tol)
        out.outside.push({figure: fig, text: t.id, box: [t.b.left - r.left, t.b.top - r.top,
                          t.b.right - r.left, t.b.bottom - r.top], size: [r.width, r.height]});
    for (let i = 0; i < texts.length; i++)
      for (let j = i + 1; j < texts.length; j++) {
        const a = texts[i].b, c = texts[j].b;
        const w = Math.min(a.right, c.right) - Math.max(a.left, c.left);
        const h = Math.min(a.bottom, c.bottom) - Math.max(a.top, c.top);
        if (w > tol && h > tol) out.overlaps.push({figure: fig, texts: [texts[i].id, texts[j].id]});
      }
  }
  return out;
})()
"""


def _run(page: str, width: int, height: int = 900, timeout: int = 180) -> dict:
    with tempfile.TemporaryDirectory(prefix="carpool-chromium-") as tmp:
        path = Path(tmp) / "page.html"
        path.write_text(page, encoding="utf-8")
        cmd = [str(CHROMIUM), *FLAGS, f"--user-data-dir={Path(tmp) / 'profile'}",
               f"--window-size={width},{height}", "--virtual-time-budget=5000", "--dump-dom",
               path.as_uri()]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    found = RESULT.search(done.stdout)
    if found is None:
        raise RuntimeError(f"chromium returned no measurement (exit {done.returncode}): "
                           f"{done.stderr.strip().splitlines()[-3:]}")
    return json.loads(html.unescape(found.group(1)))


def _with_script(page: str, js: str) -> str:
    script = ("<pre id=\"carpool-measure\"></pre><script>window.addEventListener('load', () => {"
              f"document.getElementById('carpool-measure').textContent = JSON.stringify({js});"
              "});</script>")
    at = page.rfind("</body>")
    return page[:at] + script + page[at:] if at >= 0 else page + script


def measure_page(page_html: str, width: int = 1280) -> dict:
    """Overflow and clipping of one HTML page laid out `width` px wide."""
    return _run(_with_script(page_html, PAGE_JS), width)


def measure_figures(svgs: dict[str, str], width: int = 1280) -> dict:
    """Text placement inside each SVG figure ({name: svg text}), drawn at its own size."""
    parts = []
    for name, svg in svgs.items():
        body = svg[svg.index("<svg"):]
        parts.append(f'<div class="carpool-fig" data-name="{html.escape(name)}">{body}</div>')
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><style>body{margin:0}"
            "div.carpool-fig{margin:8px}</style></head><body>" + "".join(parts) + "</body></html>")
    return _run(_with_script(page, FIGURES_JS), width)
