"""Open the built site in headless Chromium, as a reader would, and check what they would see.

Usage: python .ci/browser_check.py [PAGE ...]   (default: the intro and every chapter)

For each page: the math is typeset by MathJax (no raw TeX left), every figure loads, no
request leaves localhost, and on a phone-width screen (390 px) the paper card fits the screen. A screenshot of each page goes to _build/screenshots/.
Uses Debian's chromium (/usr/bin/chromium) through Playwright; no browser is downloaded.
"""
import functools
import http.server
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHAPTERS = sorted(p.relative_to(SITE).as_posix() for p in (SITE / "notebooks").glob("*.html"))
PAGES = sys.argv[1:] or ["intro.html", *CHAPTERS]
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
PHONE = {"width": 390, "height": 844}
CARD_OVERFLOW = """[...document.querySelectorAll('.admonition')]
    .filter(a => a.scrollWidth > a.clientWidth + 1 || a.getBoundingClientRect().right > innerWidth + 1)
    .map(a => (a.querySelector('.admonition-title') || a).textContent.trim().slice(0, 40))"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(directory: Path) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def check_page(browser, base: str, page_path: str) -> list[str]:
    problems, requests = [], []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{base}/{page_path}", wait_until="load")
    has_math = page.evaluate("document.querySelectorAll('.math').length") > 0
    if has_math:
        page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20000)
        page.evaluate("MathJax.startup.promise")
        typeset = page.evaluate("document.querySelectorAll('mjx-container').length")
        raw = page.evaluate("""[...document.querySelectorAll('.math')]
            .filter(e => !e.querySelector('mjx-container') && /\\\\[a-zA-Z]|\\$\\$/.test(e.textContent))
            .map(e => e.textContent.slice(0, 60))""")
        if typeset == 0 or raw:
            problems.append(f"math not typeset ({typeset} typeset, raw TeX left: {raw[:3]})")
    images = page.evaluate("""[...document.images].map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0}))""")
    broken = [i["src"] for i in images if not i["ok"]]
    if broken:
        problems.append(f"figures that did not load: {broken}")
    outside = sorted({u for u in requests if urlparse(u).scheme in ("http", "https", "ws", "wss")
                      and urlparse(u).hostname not in LOCAL_HOSTS})
    if outside:
        problems.append(f"requests that left localhost: {outside}")
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / (Path(page_path).stem + ".png")
    page.screenshot(path=str(shot))
    page.screenshot(path=str(shot.with_name(shot.stem + "-full.png")), full_page=True)
    page.set_viewport_size(PHONE)
    # the theme moves its sidebars on resize: wait for the narrow layout before looking
    page.wait_for_function(f"document.documentElement.clientWidth <= {PHONE['width']}")
    page.wait_for_timeout(500)
    clipped = page.evaluate(CARD_OVERFLOW)
    if clipped:
        problems.append(f"cards wider than a {PHONE['width']} px screen: {clipped}")
    page.screenshot(path=str(shot.with_name(shot.stem + "-phone.png")))
    print(f"{page_path}: {'ok' if not problems else 'FAILED'} ({len(images)} images, "
          f"math: {'yes' if has_math else 'none'}, {len(requests)} requests, all local: {not outside}); "
          f"screenshot {shot.relative_to(ROOT)}")
    page.close()
    return problems


def main() -> int:
    if not (SITE / "index.html").exists() or "notebooks/04_bpe.html" not in CHAPTERS:
        print("no built site with the BPE chapter: run `make book` first")
        return 1
    server = serve(SITE)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        for page_path in PAGES:
            problems += [f"{page_path}: {msg}" for msg in check_page(browser, base, page_path)]
        browser.close()
    server.shutdown()
    for msg in problems:
        print("FAIL", msg)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
