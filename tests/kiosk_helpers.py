"""Headless Chromium for the kiosk page tests: Debian's /usr/bin/chromium driven by Playwright's
Python package (never a browser Playwright downloads), and the page audits the tests share.

Screenshots go to `var/kiosk-screens/` (git-ignored; `EGATE_KIOSK_SCREENS` moves them): test
artefacts to look at, never committed."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
# REFERENCE.md §7: as root it needs --no-sandbox; the rest keep it from stalling on the closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENS = Path(os.environ.get("EGATE_KIOSK_SCREENS", Path(__file__).resolve().parents[1] / "var" / "kiosk-screens"))


@contextlib.contextmanager
def chromium():
    """Playwright driving Debian's headless Chromium; yields `open(viewport=(w, h), motion="reduce")`,
    which starts a fresh browser context, each with its own --user-data-dir (all closed at the end);
    still pictograms (the system asks for reduced motion) unless `motion="no-preference"`. One per
    module: Playwright's sync API runs one at a time."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (scripts/setup.sh installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright's Python package (setup.cfg [test])")
    with sync_api.sync_playwright() as pw, contextlib.ExitStack() as stack:
        def open_context(viewport=(1280, 800), motion="reduce"):
            profile = stack.enter_context(tempfile.TemporaryDirectory(prefix="kiosk-chromium-"))
            ctx = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": viewport[0], "height": viewport[1]}, reduced_motion=motion)
            stack.callback(ctx.close)
            return ctx
        yield open_context


def shot(page, name: str) -> Path:
    """Save a screenshot test artefact under SCREENS."""
    path = SCREENS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    return path


# WCAG 2.x relative luminance and contrast ratio, from computed styles. Every visible element with
# text of its own: its colour against the first opaque background behind it. Every button: its
# edge (border, else its fill) against what surrounds it (non-text contrast, 1.4.11), and its
# size (target size, 2.5.8). The rating faces: stroke against the button.
AUDIT_JS = """() => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const lum = (c) => 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const bgOf = (el) => { for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor);
    if (c && c.a > 0.99) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
  const shown = (el) => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && !el.closest('[hidden]'); };
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    if (!shown(el) || el.closest('svg')) continue;
    const s = getComputedStyle(el);
    if ([...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) {
      out.push({kind: 'text', what: (el.id || el.className || el.tagName) + ': ' + el.textContent.trim().slice(0, 24),
                ratio: ratio(parse(s.color), bgOf(el)), px: parseFloat(s.fontSize), opacity: parseFloat(s.opacity)});
    }
    if (el.tagName === 'BUTTON') {
      const outer = bgOf(el.parentElement), r = el.getBoundingClientRect();
      const edge = Math.max(ratio(parse(s.borderTopColor), outer), ratio(parse(s.backgroundColor), outer));
      out.push({kind: 'control', what: el.textContent.trim().slice(0, 24), ratio: edge, w: r.width, h: r.height});
      for (const g of el.querySelectorAll('.face svg > path')) {
        out.push({kind: 'graphic', what: 'face ' + el.dataset.rating,
                  ratio: ratio(parse(getComputedStyle(g).stroke), bgOf(el))});
      }
    }
  }
  return out;
}"""


def audit(page, text_min: float = 4.5, control_min: float = 3.0) -> list[dict]:
    """Every contrast or size failure on the page now (empty when it meets WCAG 2.2 AA)."""
    bad = []
    for item in page.evaluate(AUDIT_JS):
        if item["kind"] == "text" and (item["ratio"] < text_min or item["opacity"] < 1):
            bad.append(item)
        elif item["kind"] in ("control", "graphic") and item["ratio"] < control_min:
            bad.append(item)
        elif item["kind"] == "control" and min(item["w"], item["h"]) < 44:
            bad.append(item)
    return bad
