"""The phone web app in Debian's Chromium with Playwright's phone emulation (Pixel 7), against a
real ``keystead serve`` on loopback:

- cold start: a new tab of the installed app (service worker and cache warm, keys in IndexedDB,
  the passphrase typed once before: the remembered unlock of docs/PHONE.md section 7) to the
  prompt list; and for comparison the start that asks the passphrase (after "Lock now" or the
  expiry): load to the unlock form, plus unlock (passphrase submitted, scrypt) to the list;
- RP request -> prompt visible: ``RelyingPartyClient.start()`` to the card in the page's DOM
  (a MutationObserver stamps the time in the page; same machine clock);
- approve -> RP verified outcome: the tap (stamped in the page) to ``wait()`` returning the
  verified approval in the RP (its long poll on the answer, then the chain check);
- bundle size: JS + WASM of adapters/phone/app, gzip and brotli.

    python bench/phone_app.py [--runs 5] [--prompts 30]
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _harness import new_account, pct, report, service
from keystead.adapters.second_factor import RelyingPartyClient
from keystead.adapters.second_factor._wire import new_rp_token, token_hash
from keystead.core.account import approve_device, pairing_details
from keystead.core.client import path
from playwright.sync_api import Page, sync_playwright

APP = Path(__file__).resolve().parent.parent / "adapters" / "phone" / "app"
PASS = "phone bench passphrase"

STAMP_CARDS = """() => {
  window.__seen = {};
  new MutationObserver(() => {
    for (const li of document.querySelectorAll('li.prompt')) {
      const m = li.querySelector('.message')?.textContent;
      if (m && !(m in window.__seen)) window.__seen[m] = performance.timeOrigin + performance.now();
    }
  }).observe(document.body, { childList: true, subtree: true });
  document.addEventListener('click', (e) => {
    if (e.target.closest('button.number'))
      window.__tap = performance.timeOrigin + performance.now();
  }, true);
}"""


def bundle_sizes() -> dict[str, int]:
    files = [f for f in APP.iterdir() if f.suffix in (".js", ".wasm")]
    raw = sum(f.stat().st_size for f in files)
    gz = sum(len(gzip.compress(f.read_bytes(), 9)) for f in files)
    # brotli from Node's zlib (the Python venv has no brotli module)
    script = (
        "const z=require('zlib'),fs=require('fs');let n=0;for(const f of process.argv.slice(1))"
        "n+=z.brotliCompressSync(fs.readFileSync(f),{params:{[z.constants.BROTLI_PARAM_QUALITY]:11}})"
        ".length;console.log(JSON.stringify(n))"
    )
    out = subprocess.run(["node", "-e", script, *map(str, files)], capture_output=True, text=True)
    br = int(json.loads(out.stdout)) if out.returncode == 0 else -1
    return {"raw": raw, "gzip": gz, "brotli": br}


MARKS = """() => Object.fromEntries(performance.getEntriesByType('mark')
  .filter((m) => m.name.startsWith('keystead:')).map((m) => [m.name.slice(9), m.startTime]))"""


def cold_start(page: Page, url: str, marks: list[dict[str, float]]) -> float:
    """Open the installed app in this tab, remembered unlock: seconds to the prompt list."""
    t0 = time.perf_counter()
    page.goto(url + "/app/")
    page.locator("body[data-prompts]").wait_for()
    done = time.perf_counter()
    assert page.get_by_role("form", name="Unlock").count() == 0
    marks.append(page.evaluate(MARKS))
    return done - t0


def unlock(
    page: Page, url: str, marks: list[dict[str, float]] | None = None
) -> tuple[float, float]:
    """Open the app in this tab; (load to unlock form, unlock to prompt list) in seconds. The
    page's own marks (unlock, unlocked, prompts-shown; ms) go to ``marks``."""
    t0 = time.perf_counter()
    page.goto(url + "/app/")
    page.get_by_label("Passphrase").wait_for()
    t1 = time.perf_counter()
    page.get_by_label("Passphrase").fill(PASS)
    t2 = time.perf_counter()
    page.get_by_role("button", name="Unlock").tap()
    page.get_by_role("list", name="Requests").wait_for()
    page.locator("body[data-prompts]").wait_for()
    done = time.perf_counter()
    if marks is not None:
        marks.append(page.evaluate(MARKS))
    return t1 - t0, done - t2


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--prompts", type=int, default=30)
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "phone_app.json"
    )
    args = ap.parse_args()
    with service() as svc, tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        admin = new_account(svc, Path(tmp), "bench", ("confirm", "totp", "passwords"))
        token = new_rp_token("bank.example")
        admin.client.put(
            path("confirm", "bench", "rps", "bank.example"), {"token_sha256": token_hash(token)}
        )
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        pixel: dict[str, Any] = dict(p.devices["Pixel 7"])
        pixel.pop("default_browser_type", None)
        ctx = browser.new_context(**pixel)
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        page.goto(svc.url + "/app/#join=bench")
        page.get_by_label("Passphrase", exact=True).fill(PASS)
        page.get_by_label("Repeat passphrase").fill(PASS)
        page.get_by_role("button", name="Join").tap()
        code = page.get_by_label("Pairing code").inner_text().strip()
        approve_device(admin, pairing_details(admin, code), "member")
        page.get_by_role("list", name="Requests").wait_for()
        page.evaluate("navigator.serviceWorker.ready")
        page.close()

        colds: list[float] = []
        marks: list[dict[str, float]] = []
        for _ in range(args.runs):  # a new tab each time: the installed app's cold start
            page = ctx.new_page()
            page.set_default_timeout(60_000)
            colds.append(cold_start(page, svc.url, marks))
            page.close()
        # the start that asks the passphrase: after Lock now (the unlock keeps 7 days again)
        loads, unlocks = [], []
        pass_marks: list[dict[str, float]] = []
        for _ in range(max(3, args.runs // 2)):
            page = ctx.new_page()
            page.set_default_timeout(60_000)
            page.goto(svc.url + "/app/")
            page.get_by_role("button", name="Lock now").tap()
            page.get_by_role("form", name="Unlock").wait_for()
            page.close()
            page = ctx.new_page()
            page.set_default_timeout(60_000)
            load, unl = unlock(page, svc.url, pass_marks)
            loads.append(load)
            unlocks.append(unl)
            page.close()
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        cold_start(page, svc.url, [])
        page.evaluate(STAMP_CARDS)

        visible, verified = [], []
        with RelyingPartyClient(svc.url, "bench", token, pins=Path(tmp) / "pins") as rp:
            for i in range(args.prompts + 3):
                message = f"Bench prompt {i}"
                t_start = time.time() * 1000
                pending = rp.start(message, lifetime=60)
                done: dict[str, Any] = {}

                def wait(pending: Any = pending, done: dict[str, Any] = done) -> None:
                    done["outcome"] = rp.wait(pending)
                    done["at"] = time.time() * 1000

                waiter = threading.Thread(target=wait)
                waiter.start()
                card = page.locator("li.prompt").filter(has_text=message)
                card.get_by_role("button", name=f"Approve with {pending.number}", exact=True).tap()
                waiter.join(60)
                assert done["outcome"].approved, done
                seen = page.evaluate(f"window.__seen[{message!r}]")
                tap = page.evaluate("window.__tap")
                if i >= 3:  # warm-up
                    visible.append((seen - t_start) / 1000)
                    verified.append((done["at"] - tap) / 1000)
        browser.close()
        admin.close()

    sizes = bundle_sizes()
    opened = [(m["unlocked"] - m["unlock"]) / 1000 for m in marks]
    first = [(m["prompts-shown"] - m["unlocked"]) / 1000 for m in marks]
    kdf = [(m["unlocked"] - m["unlock"]) / 1000 for m in pass_marks]
    with_pass = [a + b for a, b in zip(loads, unlocks, strict=True)]
    rows = [
        _row("cold start to prompt list (remembered unlock), p50", pct(colds, 50), 1.0, "s"),
        _row("cold start to prompt list, max", max(colds), None, "s"),
        _row("  of which keystore open (wrapped key) + chain check", pct(opened, 50), None, "s"),
        _row("  of which first prompt poll to list shown", pct(first, 50), None, "s"),
        _row("start asking the passphrase (load + unlock), p50", pct(with_pass, 50), None, "s"),
        _row("  of which load to unlock form, p50", pct(loads, 50), None, "s"),
        _row("  of which unlock to prompt list, p50", pct(unlocks, 50), None, "s"),
        _row("    keystore open (scrypt) + chain check", pct(kdf, 50), None, "s"),
        _row("RP request -> prompt visible, p50", pct(visible, 50) * 1000, 200, "ms"),
        _row("RP request -> prompt visible, p95", pct(visible, 95) * 1000, None, "ms"),
        _row("approve tap -> RP verified outcome, p50", pct(verified, 50) * 1000, 100, "ms"),
        _row("approve tap -> RP verified outcome, p95", pct(verified, 95) * 1000, None, "ms"),
        _row("bundle JS + WASM, gzip", sizes["gzip"] / 1024, 500, "KiB"),
        _row("bundle JS + WASM, brotli", sizes["brotli"] / 1024, 500, "KiB"),
        _row("bundle JS + WASM, raw", sizes["raw"] / 1024, None, "KiB"),
    ]
    report(
        f"phone app (Chromium, Pixel 7 emulation, loopback, SQLite; {args.runs} cold starts, "
        f"{args.prompts} prompts)",
        rows,
        args.out,
    )


def _row(what: str, value: float, target: float | None, unit: str) -> dict[str, Any]:
    return {
        "measure": what,
        "value": round(value, 3),
        "unit": unit,
        "target": "" if target is None else f"< {target:g} {unit}",
        "ratio": "" if target is None else f"{value / target:.2f}",
    }


if __name__ == "__main__":
    main()
