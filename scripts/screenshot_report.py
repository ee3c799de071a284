"""Render an initlab diagnose report and take a PNG screenshot of it in headless Chromium.

    python scripts/screenshot_report.py                       # 50-layer tanh net: N(0,1) weights vs "auto"
    python scripts/screenshot_report.py --html report.html    # screenshot an existing report
    python scripts/screenshot_report.py --out docs/diagnostics-report.png --height 3000

Needs Debian's ``chromium`` (or ``chromium-browser``/``google-chrome``) on PATH; it runs offline, sandboxless
and without a GPU. ``console_messages(path)`` lists what the page logged to the console (tests use it).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--hide-scrollbars",
    "--disable-extensions",
    "--no-first-run",
)
CONSOLE = re.compile(r":CONSOLE[^\]]*\]\s*(.*)")


def find_chromium() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    browser = find_chromium()
    if browser is None:
        raise FileNotFoundError("no chromium on PATH (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [browser, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def console_messages(path: str, timeout: float = 120) -> tuple[list[str], str]:
    """(console messages, rendered DOM) of the page at ``path``; every message is a problem for our reports,
    which run no scripts."""
    url = "file://" + os.path.abspath(path)
    done = _run(
        ["--enable-logging=stderr", "--v=0", "--virtual-time-budget=3000", "--dump-dom", url], timeout
    )
    messages = [m.group(1) for line in done.stderr.splitlines() if (m := CONSOLE.search(line))]
    return messages, done.stdout


def screenshot(path: str, out: str, width: int = 1200, height: int = 2400, timeout: float = 120) -> str:
    url = "file://" + os.path.abspath(path)
    _run([f"--window-size={width},{height}", f"--screenshot={os.path.abspath(out)}", url], timeout)
    if not os.path.exists(out):
        raise RuntimeError(f"chromium wrote no screenshot to {out}")
    return out


def demo_report(path: str) -> str:
    """A 50-layer width-64 tanh MLP with N(0, 1) weights against the same net after init_model("auto")."""
    import copy

    import torch
    from torch import nn

    import initlab

    g = torch.Generator().manual_seed(0)
    layers: list[nn.Module] = []
    for _ in range(50):
        layers += [nn.Linear(64, 64), nn.Tanh()]
    broken = nn.Sequential(*layers, nn.Linear(64, 10))
    with torch.no_grad():
        for m in broken:
            if isinstance(m, nn.Linear):
                m.weight.normal_(0.0, 1.0, generator=g)
    fixed = copy.deepcopy(broken)
    initlab.init_model(fixed, "auto", seed=0)
    x = torch.randn(128, 64, generator=g)
    report = initlab.compare({"N(0, 1)": initlab.diagnose(broken, x), "auto": initlab.diagnose(fixed, x)})
    report.to_html(path)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--html", help="an existing report (default: build the demo report)")
    p.add_argument("--out", default="diagnostics-report.png", help="PNG to write")
    p.add_argument("--width", type=int, default=1200)
    p.add_argument("--height", type=int, default=2400)
    args = p.parse_args(argv)
    html = args.html or demo_report(os.path.splitext(args.out)[0] + ".html")
    messages, _ = console_messages(html)
    for m in messages:
        print(f"console: {m}", file=sys.stderr)
    screenshot(html, args.out, args.width, args.height)
    print(f"{html} -> {args.out} ({len(messages)} console messages)")
    return 1 if messages else 0


if __name__ == "__main__":
    sys.exit(main())
