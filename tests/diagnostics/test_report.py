"""Renderings: the terminal table, JSON round trip, the self-contained HTML page and compare."""

from __future__ import annotations

import importlib.util
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import pytest
from torch import nn

import initlab
from initlab.diagnostics import Diagnosis

from . import nets


@pytest.fixture(scope="module")
def broken() -> Diagnosis:
    return initlab.diagnose(nets.mlp(12, nn.Tanh, std=1.0), nets.batch())


@pytest.fixture(scope="module")
def fixed() -> Diagnosis:
    return initlab.diagnose(nets.healthy(nets.mlp(12, nn.Tanh, std=1.0)), nets.batch())


class Page(HTMLParser):
    """Collects section ids, figure ids, verdict codes, external references and table cells."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.figures: list[str] = []
        self.codes: list[str] = []
        self.external: list[str] = []
        self.cells: list[str] = []
        self.svgs = 0
        self.scripts = 0
        self._in_td = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id") or "")
        if tag == "figure":
            self.figures.append(a.get("id") or "")
        if tag == "svg":
            self.svgs += 1
        if tag == "script":
            self.scripts += 1
        if a.get("data-code"):
            self.codes.append(a["data-code"] or "")
        for key in ("src", "href"):
            if a.get(key) and not (a[key] or "").startswith(("#", "data:")):
                self.external.append(a[key] or "")
        self._in_td = tag == "td"

    def handle_data(self, data: str) -> None:
        if self._in_td:
            self.cells.append(data.strip())

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_td = False


def _parse(path: Path) -> tuple[Page, str]:
    text = path.read_text(encoding="utf-8")
    page = Page()
    page.feed(text)
    return page, text


def test_print_shows_table_and_verdicts(broken: Diagnosis) -> None:
    text = str(broken)
    assert "initlab diagnose: Sequential" in text
    assert "Saturated units" in text and "fix:" in text and "init_model" in text
    first = broken.layers[0]
    assert f"{first.output.std:.3g}" in text
    assert "No problems found" not in text


def test_healthy_print(fixed: Diagnosis) -> None:
    assert "No problems found" in str(fixed)
    assert "healthy" in repr(fixed)


def test_json_round_trip(broken: Diagnosis, tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    text = broken.to_json(path)
    data = json.loads(path.read_text())
    assert data == json.loads(text)
    assert {v["code"] for v in data["verdicts"]} == broken.codes
    assert len(data["layers"]) == len(broken.layers)
    again = Diagnosis.from_json(path)
    assert again.to_dict() == broken.to_dict()
    assert again.codes == broken.codes


def test_html_is_self_contained_and_has_every_section(broken: Diagnosis, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    broken.to_html(path)
    page, text = _parse(path)
    assert page.sections == ["summary", "verdicts", "plots", "histograms", "layers"]
    assert page.figures == ["plot-std", "plot-grad", "plot-fractions", "plot-histograms"]
    assert page.svgs == 4 and page.scripts == 0 and page.external == []
    assert not re.search(r"url\(\s*['\"]?http", text) and "@import" not in text
    assert set(page.codes) == broken.codes
    names = [la.name for la in broken.layers]
    assert all(n in page.cells for n in names)
    assert f"{broken.layers[3].output.std:.3g}" in page.cells  # the numbers table carries the measurements
    # one histogram panel per chosen layer, titled with its index and name
    assert "0: 0 (tanh)" in text and f"{len(names) - 1}: {names[-1]} (no act.)" in text


def test_compare_overlays_on_one_page(broken: Diagnosis, fixed: Diagnosis, tmp_path: Path) -> None:
    cmp = initlab.compare({"N(0,1)": broken, "auto": fixed})
    text = str(cmp)
    assert "N(0,1)" in text and "auto" in text and "saturation" in text and "healthy" in text
    path = tmp_path / "cmp.html"
    cmp.to_html(path)
    page, html = _parse(path)
    assert page.svgs == 4
    assert "N(0,1): output" in html and "auto: output" in html  # both overlaid in the legends
    assert set(page.codes) == broken.codes
    with pytest.raises(ValueError):
        initlab.compare([broken, fixed], labels=["a"])
    with pytest.raises(TypeError):
        initlab.compare([broken, "x"])


def _screenshot_script() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "scripts" / "screenshot_report.py"
    spec = importlib.util.spec_from_file_location("screenshot_report", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SHOT = _screenshot_script()


@pytest.mark.skipif(
    SHOT.find_chromium() is None,
    reason="chromium is not installed (Debian: apt-get install "
    "chromium); the HTML content checks above still run",
)
def test_page_opens_in_headless_chromium_without_console_errors(
    broken: Diagnosis, fixed: Diagnosis, tmp_path: Path
) -> None:
    control = tmp_path / "control.html"
    control.write_text(
        "<!DOCTYPE html><html><body><script>console.error('deliberate');</script></body></html>"
    )
    messages, _ = SHOT.console_messages(str(control))
    assert any("deliberate" in m for m in messages)  # the console is really being read
    page = tmp_path / "report.html"
    initlab.compare({"N(0,1)": broken, "auto": fixed}).to_html(page)
    messages, dom = SHOT.console_messages(str(page))
    assert messages == []
    assert dom.count("<svg") == 4 and 'id="verdicts"' in dom and "Saturated units" in dom
    png = SHOT.screenshot(str(page), str(tmp_path / "report.png"), height=800)
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
