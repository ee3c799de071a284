"""An experiment's result and its outputs: ``results.json``, ``section.md`` and a self-contained HTML page.

The Markdown and HTML are rendered from the same :class:`Result`; figures are PNGs next to ``results.json``
and are inlined as base64 in the HTML, so the page needs no network and no other file.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Result:
    """What one run of an experiment measured and what it concludes."""

    name: str
    question: str
    setup: str
    headers: list[str]
    rows: list[list[str]]
    answer: str
    data: dict[str, Any]
    quick: bool = False
    seeds: list[int] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def to_markdown(self) -> str:
        lines = [
            f"## {self.name}",
            "",
            f"**Question.** {self.question}",
            "",
            f"**Setup.** {self.setup}",
            "",
            "| " + " | ".join(self.headers) + " |",
            "|" + "---|" * len(self.headers),
        ]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        lines += ["", f"**Answer.** {self.answer}", ""]
        lines += [f"![{Path(f).stem}]({f})" for f in self.figures]
        mode = "quick" if self.quick else "full"
        lines += ["", f"*{mode} run, seeds {_seed_range(self.seeds)}, {self.elapsed_s:.0f} s.*", ""]
        return "\n".join(lines)

    def write(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(_jsonable(asdict(self)), indent=1) + "\n")
        (out / "section.md").write_text(self.to_markdown())

    @classmethod
    def read(cls, out: Path) -> Result:
        return cls(**json.loads((out / "results.json").read_text()))


def _seed_range(seeds: Sequence[int]) -> str:
    if seeds and list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))) and len(seeds) > 2:
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))


def _jsonable(obj: Any) -> Any:
    """NaN/inf become strings so that the JSON is strict."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def find_runs(root: Path) -> list[Path]:
    """``root`` itself if it holds a lab run, else every folder below it that does, in the lab's order. A
    ``results.json`` that is not a lab run (a benchmark's, say) is skipped."""
    root = Path(root)
    if (root / "results.json").exists():
        candidates = [root]
    else:
        candidates = sorted(p.parent for p in root.rglob("results.json"))
    runs = [p for p in candidates if _is_run(p / "results.json")]
    if not runs:
        raise FileNotFoundError(f"no lab results.json under {root}")
    from .runner import EXPERIMENTS  # the lab's own order: symmetry first, methods last

    def rank(run: Path) -> tuple[int, str]:
        name = json.loads((run / "results.json").read_text())["name"]
        return (EXPERIMENTS.index(name) if name in EXPERIMENTS else len(EXPERIMENTS), str(run))

    return sorted(runs, key=rank)


def _is_run(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"name", "question", "answer", "figures"} <= data.keys()


CSS = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{border-bottom:2px solid #444}h2{margin-top:2.5rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #bbb;padding:.25rem .6rem;text-align:left}
th{background:#f0f0f0}.answer{background:#eef6ee;border-left:4px solid #4a4;padding:.5rem 1rem}
img{max-width:100%;margin:.5rem 0}.meta{color:#777;font-size:.9em}nav a{margin-right:1rem}"""


def html_page(runs: Sequence[Path], title: str = "initlab lab report") -> str:
    """One self-contained page for the runs in ``runs`` (folders holding ``results.json``)."""
    results = [(Result.read(r), r) for r in runs]
    nav = " ".join(f'<a href="#{html.escape(res.name)}">{html.escape(res.name)}</a>' for res, _ in results)
    body = [f"<h1>{html.escape(title)}</h1>", f"<nav>{nav}</nav>"]
    for res, folder in results:
        body.append(_section_html(res, folder))
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def _section_html(res: Result, folder: Path) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in res.headers)
    rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in res.rows)
    images = []
    for fig in res.figures:
        data = base64.b64encode(figure_path(folder, fig).read_bytes()).decode("ascii")
        images.append(f'<img alt="{e(fig)}" src="data:image/png;base64,{data}">')
    mode = "quick" if res.quick else "full"
    return (
        f'<h2 id="{e(res.name)}">{e(res.name)}</h2><p><b>Question.</b> {e(res.question)}</p>'
        f"<p><b>Setup.</b> {e(res.setup)}</p><table><tr>{head}</tr>{rows}</table>"
        f'<p class="answer"><b>Answer.</b> {e(res.answer)}</p>'
        + "".join(images)
        + f'<p class="meta">{mode} run, seeds {e(_seed_range(res.seeds))}, {res.elapsed_s:.0f} s</p>'
    )


def figure_path(folder: Path, fig: Any) -> Path:
    """The figure file ``fig`` named by a ``results.json`` in ``folder``: only a regular file inside that
    folder (no absolute path, no ``..``, no symlink leading out), so a crafted ``results.json`` cannot make
    the page embed another file of the machine."""
    from ..errors import InitlabValueError

    if not isinstance(fig, str) or not fig:
        raise InitlabValueError(f"{folder / 'results.json'}: a figure must be a file name, got {fig!r}")
    base = folder.resolve()
    path = (base / fig).resolve()
    if Path(fig).is_absolute() or not path.is_relative_to(base):
        raise InitlabValueError(f"{folder / 'results.json'} names figure {fig!r} outside its folder: only "
                                "files inside the run's folder are embedded")
    if not path.is_file():
        raise InitlabValueError(f"{folder / 'results.json'} names figure {fig!r}, which is not a file in "
                                f"{folder}: rerun the experiment or remove it from 'figures'")
    return path


def write_html(runs: Sequence[Path], path: Path, title: str = "initlab lab report") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_page(runs, title))
    return path
