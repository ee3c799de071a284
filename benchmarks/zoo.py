"""initlab on the models people use: torchvision, timm and HF transformers, layer by layer (issue 13).

    python benchmarks/zoo.py --subset                      # a CI-size subset (a minute)
    python benchmarks/zoo.py --out benchmarks/results/zoo.json --md docs/zoo.md    # the whole zoo (an hour+)
    python benchmarks/zoo.py --family hf --limit 5         # filter by source/family/name substring

Per model, each on a fresh copy of the constructed weights:
- auto: ``init_model(model, "auto", example_input=batch)``; its time against the model's construction; on a
  fresh unit-variance batch (train mode, no grad) the measured second moment E[y^2] of every weight layer's
  output against the report's prediction ``Row.var_out``; finite output; language models' step-0
  cross-entropy on random tokens against ln V.
- he_normal: the same measurements.
- LSUV (``initlab.lsuv``): success, layers calibrated, layers skipped with a reason, and weight layers
  (Linear/Conv/HF Conv1D/attention) it neither calibrated nor named ("silent").
- diagnose: its time against one plain forward+backward (unit random cotangent) measured in the same worker.

Targets (issue 13): 100% finite output; every weight layer's measured second moment within 3x of the
prediction and within [1e-2, 1e2]; LM step-0 loss within 15% of ln V; LSUV succeeds or names a reason for
every layer it skips on 100%; auto <= 1.5x construction at the median and <= 4x at the worst; diagnose <= 3x
one forward+backward at the median.

Models run in worker processes (forked once the libraries are imported and initlab has run once, so that a
model's time is its own and not the process's one-time cost of imports and loading the cached kernels,
which the run measures and records as ``warm_up``), one model at a time per worker, with a per-model
timeout: a hang or crash costs that model, not the run. Results stream to ``<out>.jsonl``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import itertools
import json
import math
import multiprocessing as mp
import os
import statistics
import sys
import time
import traceback
from multiprocessing.connection import Connection, wait
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch
from torch import nn

import _zoo_models as zm

MOMENT_RATIO = 3.0
MOMENT_RANGE = (1e-2, 1e2)
LM_TOL = 0.15


# ---- output helpers ---------------------------------------------------------------------------------------
def tensors(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict) or hasattr(out, "items"):
        return [t for v in out.values() for t in tensors(v)]
    if isinstance(out, (tuple, list)):
        return [t for v in out for t in tensors(v)]
    return []


def primary(out: Any) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "items"):
        for key in ("logits", "out", "last_hidden_state"):
            if key in out and isinstance(out[key], torch.Tensor):
                return out[key]
    found = [t for t in tensors(out) if t.is_floating_point()]
    return found[0] if found else None


def forward(model: nn.Module, batch: Any) -> Any:
    if isinstance(batch, dict):
        return model(**batch)
    if isinstance(batch, tuple):
        return model(*batch)
    return model(batch)


def digest(model: nn.Module) -> str:
    """A hash of every parameter's and buffer's bytes: same seed, same weights in any worker (determinism)."""
    h = hashlib.blake2b(digest_size=8)
    for name, t in model.state_dict(keep_vars=True).items():
        if isinstance(t, torch.Tensor) and t.device.type != "meta":
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def plan_digest(report: Any) -> str:
    """A hash of the plan: each row's rule, std and predicted output second moment (repr: every bit)."""
    rows = [(r.name, r.status, r.rule, repr(r.std), repr(r.var_out)) for r in report.rows]
    return hashlib.blake2b(repr(rows).encode(), digest_size=8).hexdigest()


# ---- measurements -----------------------------------------------------------------------------------------
MIN_ENTRIES = 256  # a layer's E[y^2] from fewer output entries (a 2-way classifier on batch 2: 4) is
# re-measured on more fresh batches: from 4 entries a 3x band fails by chance (chi-square, 4 dof)
MAX_BATCHES = 32


def weight_layer_moments(model: nn.Module, report: Any, batch: Any, more: Any = None
                         ) -> tuple[list[dict[str, Any]], Any]:
    """E[y^2] of each planned layer's first output on ``batch`` (train mode, no grad), with the prediction;
    layers with fewer than MIN_ENTRIES output entries also on up to MAX_BATCHES further fresh batches from
    ``more(i)``."""
    rows: dict[str, Any] = {}
    for r in report.rows:
        if r.status == "init" and r.layer and r.layer not in rows and r.name.endswith("weight"):
            rows[r.layer] = r
    modules = dict(model.named_modules())
    sums: dict[str, list[float]] = {}  # layer -> [sum of squares, entries]
    fresh: set[str] = set()  # layers already measured in this forward (their first call only)
    handles = []
    for layer in rows:
        module = modules.get(layer)
        if module is None:
            continue

        def hook(m: nn.Module, args: Any, out: Any, layer: str = layer) -> None:
            t = primary(out)
            if layer not in fresh and t is not None:
                fresh.add(layer)
                acc = sums.setdefault(layer, [0.0, 0])
                acc[0] += float(t.detach().double().square().sum())
                acc[1] += t.numel()
        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad(), torch.random.fork_rng():
            torch.manual_seed(0)
            out = forward(model, batch)
            for i in range(MAX_BATCHES if more is not None else 0):
                if all(acc[1] >= MIN_ENTRIES for acc in sums.values()):
                    break
                fresh.clear()
                forward(model, more(i))
    finally:
        for h in handles:
            h.remove()
    layers = []
    for layer, r in rows.items():
        acc = sums.get(layer)
        m2 = acc[0] / acc[1] if acc and acc[1] else None
        layers.append({"layer": layer, "measured": m2, "predicted": r.var_out,
                       "entries": acc[1] if acc else 0, "ok_ratio": _within(m2, r.var_out),
                       "ok_range": _in_range(m2)})
    return layers, out


def _within(m2: float | None, pred: float | None) -> bool | None:
    if m2 is None or pred is None or not pred > 0:
        return None
    return 1 / MOMENT_RATIO <= m2 / pred <= MOMENT_RATIO


def _in_range(m2: float | None) -> bool | None:
    return None if m2 is None else MOMENT_RANGE[0] <= m2 <= MOMENT_RANGE[1]


def lm_loss(out: Any, batch: Any, vocab: int, shift: bool = False) -> float | None:
    """Cross-entropy of the logits against the tokens: the next token for a causal decoder (and the decoder
    of an encoder-decoder, whose ``decoder_input_ids`` are the labels shifted right), the same position for
    a masked LM (its unmasked-token loss). Unshifted, a causal LM's logit for the token it was just given
    (tied embeddings copy it) would make the loss look better than ln V."""
    logits = primary(out)
    if logits is None or logits.shape[-1] != vocab:
        return None
    labels = batch["decoder_input_ids"] if "decoder_input_ids" in batch else batch["input_ids"]
    if logits.shape[:-1] != labels.shape:
        return None
    if shift:
        logits, labels = logits[:, :-1], labels[:, 1:]
    return float(torch.nn.functional.cross_entropy(logits.flatten(0, -2).float(), labels.flatten()))


def causal(entry: zm.Entry) -> bool:
    return bool({"decoder", "encoder-decoder"} & set(entry.tags))


def summarize_layers(layers: list[dict[str, Any]]) -> dict[str, Any]:
    measured = [la for la in layers if la["measured"] is not None]
    predicted = [la for la in measured if la["ok_ratio"] is not None]
    ratios = [la["measured"] / la["predicted"] for la in predicted]
    worst = max(ratios, key=lambda r: abs(math.log(r)) if r > 0 else math.inf, default=None)
    bad = [la["layer"] for la in predicted if not la["ok_ratio"]][:5]
    return {"layers": len(layers), "measured": len(measured), "predicted": len(predicted),
            "within_3x": sum(bool(la["ok_ratio"]) for la in predicted),
            "in_range": sum(bool(la["ok_range"]) for la in measured), "worst_ratio": worst, "bad_layers": bad,
            "pass": bool(measured) and len(predicted) == len(measured)
            and all(la["ok_ratio"] and la["ok_range"] for la in predicted)}


def run_scheme(model: nn.Module, entry: zm.Entry, scheme: str, example: Any, fresh: Any,
               more: Any = None) -> dict[str, Any]:
    import initlab

    res: dict[str, Any] = {"scheme": scheme}
    gc.collect()  # a full collection of earlier models' garbage is no part of this call (as in timeit)
    start = time.perf_counter()
    try:
        report = initlab.init_model(model, scheme, example_input=example, seed=0)
    except Exception as e:
        res.update(status="error", error=f"{type(e).__name__}: {str(e)[:300]}")
        return res
    res["seconds"] = time.perf_counter() - start
    res["status"] = "ok"
    res["untouched"] = sum(r.status == "untouched" for r in report.rows)
    res["warnings"] = len(report.warnings)
    res["digest"], res["plan_digest"] = digest(model), plan_digest(report)
    if PLAN_ROWS:  # the plan itself, to tell where two runs' plans part (how NextViT-S's flake was found)
        res["plan_rows"] = [[r.name, r.std, r.var_out] for r in report.rows]
    layers, out = weight_layer_moments(model, report, fresh, more)
    res["finite"] = all(bool(torch.isfinite(t).all()) for t in tensors(out) if t.is_floating_point())
    res["moments"] = summarize_layers(layers)
    if entry.vocab:
        loss = lm_loss(out, fresh, entry.vocab, shift=causal(entry))
        res["lm_loss"], res["ln_v"] = loss, math.log(entry.vocab)
        res["lm_loss_same_position"] = lm_loss(out, fresh, entry.vocab)
        res["lm_ok"] = None if loss is None else abs(loss / math.log(entry.vocab) - 1) <= LM_TOL
    return res


_WEIGHT_TYPES: tuple[type, ...] = (nn.Linear, nn.Bilinear, nn.MultiheadAttention, nn.Conv1d, nn.Conv2d,
                                    nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def weight_modules(model: nn.Module) -> list[str]:
    names = []
    for name, m in model.named_modules():
        if isinstance(m, _WEIGHT_TYPES) or type(m).__name__ == "Conv1D":  # HF GPT-2's transposed Linear
            names.append(name)
    return names


def run_lsuv(model: nn.Module, example: Any) -> dict[str, Any]:
    import initlab

    start = time.perf_counter()
    try:
        rep = initlab.lsuv(model, example, seed=0)
    except Exception as e:
        return {"status": "error", "error": f"{type(e).__name__}: {str(e)[:300]}"}
    calibrated = {c.name for c in rep.layers}
    skipped = list(getattr(rep, "skipped", []))
    skipped_names = {s.split(":")[0].strip() if isinstance(s, str) else getattr(s, "name", str(s))
                     for s in skipped}
    reasons = getattr(rep, "reasons", None)
    silent = [n for n in weight_modules(model)
              if n not in calibrated and n not in skipped_names and not _inside_calibrated(n, calibrated)]
    with torch.no_grad():
        out = forward(model, example)
    return {"status": "ok", "seconds": time.perf_counter() - start, "calibrated": len(calibrated),
            "converged": sum(c.converged for c in rep.layers), "skipped": [str(s) for s in skipped][:20],
            "skipped_with_reason": _reasoned(skipped, reasons), "silent": silent[:20],
            "silent_count": len(silent),
            "finite": all(bool(torch.isfinite(t).all()) for t in tensors(out) if t.is_floating_point())}


def _inside_calibrated(name: str, calibrated: set[str]) -> bool:
    # MultiheadAttention's out_proj is calibrated through its parent
    return any(name.startswith(c + ".") for c in calibrated if c)


def _reasoned(skipped: list[Any], reasons: Any) -> bool:
    """Every skipped layer carries a reason other than 'not reached by the forward pass' being implied."""
    if not skipped:
        return True
    if isinstance(reasons, dict):
        return all(reasons.get(str(s)) for s in skipped)
    return all(":" in str(s) for s in skipped)


def fwd_bwd(model: nn.Module, batch: Any, g_seed: int = 0) -> None:
    model.zero_grad(set_to_none=True)
    out = primary(forward(model, batch))
    assert out is not None
    g = torch.Generator().manual_seed(g_seed)
    (out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum().backward()
    model.zero_grad(set_to_none=True)


def run_diagnose(model: nn.Module, example: Any) -> dict[str, Any]:
    import initlab

    try:
        gc.collect()
        t0 = time.perf_counter()  # warm: the model ran forward at build time and under auto
        fwd_bwd(model, example)
        t1 = time.perf_counter()
        d = initlab.diagnose(model, example, seed=0)
        t2 = time.perf_counter()
        fwd_bwd(model, example)
        t3 = time.perf_counter()
    except Exception as e:
        return {"status": "error", "error": f"{type(e).__name__}: {str(e)[:300]}"}
    plain = statistics.median([t1 - t0, t3 - t2])
    return {"status": "ok", "seconds": t2 - t1, "plain_seconds": plain, "ratio": (t2 - t1) / plain,
            "layers": len(d.layers)}


def run_model(entry: zm.Entry) -> dict[str, Any]:
    torch.manual_seed(0)  # construction draws from torch's generator: the worker's own process
    gc.collect()  # nor of construction
    start = time.perf_counter()
    model = entry.build()
    build_s = getattr(model, "_zoo_build_seconds", time.perf_counter() - start)
    model.train()
    maker = entry.make_input
    example = entry.make_input(model, torch.Generator().manual_seed(1))
    fresh = entry.make_input(model, torch.Generator().manual_seed(2))
    try:
        with torch.no_grad():  # the input fits, and allocator/kernels are warm before anything is timed
            forward(model, example)
    except Exception:  # too small for this architecture (Inception, HaloNet): its own size
        if entry.full_input is None:
            raise
        maker = entry.full_input
        example = entry.full_input(model, torch.Generator().manual_seed(1))
        fresh = entry.full_input(model, torch.Generator().manual_seed(2))
        with torch.no_grad():
            forward(model, example)
    tensors = model.state_dict(keep_vars=True)
    initial = {k: v.detach().clone() for k, v in tensors.items()}
    res: dict[str, Any] = {"name": entry.name, "source": entry.source, "family": entry.family,
                           "tags": entry.tags, "params": sum(p.numel() for p in model.parameters()),
                           "build_seconds": build_s, "build_digest": digest(model)}

    def reset() -> None:  # in place: load_state_dict would need each module's version metadata (MNASNet)
        with torch.no_grad():
            for k, v in tensors.items():
                v.copy_(initial[k])

    def more(i: int) -> Any:  # further fresh batches for layers with few output entries
        return maker(model, torch.Generator().manual_seed(100 + i))

    if "auto" in ONLY:
        res["auto"] = run_scheme(model, entry, "auto", example, fresh, more)
        if "seconds" in res["auto"]:
            res["auto"]["ratio_to_build"] = res["auto"]["seconds"] / build_s
    if "diagnose" in ONLY:
        res["diagnose"] = run_diagnose(model, example)
    if "he_normal" in ONLY:
        reset()
        res["he_normal"] = run_scheme(model, entry, "he_normal", example, fresh, more)
    if "lsuv" in ONLY:
        reset()
        res["lsuv"] = run_lsuv(model, example)
    return res


ONLY = {"auto", "diagnose", "he_normal", "lsuv"}
PLAN_ROWS: list[bool] = []  # --plan-rows: record every row's std and prediction in the stream


class _WarmUpNet(nn.Module):
    """A conv net whose forward also calls torch functions (``torch.cat``, ``softmax``): the first such call
    fx traces in a process builds torch's table of overridable functions (12 ms), a process cost like the
    imports, which ShuffleNet-V2-x0.5 paid as a worker's first model with a cat."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 4, 3), nn.Linear(8 * 6 * 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        return self.fc(torch.cat([h, h.softmax(-1)], 1).flatten(1))


def warm_up() -> dict[str, float]:
    """Run initlab once in the parent before the workers fork, timing a first and a second call on the same
    small model: the difference is the one-time process cost (imports, the counter kernels' cache) that
    every worker would otherwise charge to its first model (AlexNet measured 12.5x as a worker's first model
    and 0.9x alone)."""
    import initlab

    times = []
    for _ in range(2):
        model = _WarmUpNet()
        x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        start = time.perf_counter()
        initlab.init_model(model, "auto", example_input=x, seed=0)
        if "diagnose" in ONLY:
            initlab.diagnose(model, x, seed=0)
        times.append(time.perf_counter() - start)
    return {"first_call_seconds": times[0], "second_call_seconds": times[1]}


# ---- worker pool ------------------------------------------------------------------------------------------
_ENTRIES: dict[str, zm.Entry] = {}  # by "source:name": torchvision's and timm's resnet50 are two models


def _key(e: zm.Entry) -> str:
    return f"{e.source}:{e.name}"


def _labelled(res: dict[str, Any], key: str) -> dict[str, Any]:
    source, name = key.split(":", 1)
    return dict(res, name=name, source=source)


def _worker(conn: Connection) -> None:
    torch.set_num_threads(1)
    done = 0
    while True:
        key = conn.recv()
        if key is None:
            return
        try:
            res = run_model(_ENTRIES[key])
        except BaseException as e:
            res = {"name": key, "status": "harness-error",
                   "error": f"{type(e).__name__}: {str(e)[:300]}", "trace": traceback.format_exc()[-1500:]}
        # which worker ran it, and how many models before: a run's order replays from the stream
        res["worker"] = [os.getpid(), done]
        done += 1
        conn.send(res)


class Pool:
    def __init__(self, size: int, timeout: float):
        self.timeout, self.ctx = timeout, mp.get_context("fork")
        self.slots: list[list[Any]] = [self._spawn() for _ in range(size)]

    def _spawn(self) -> list[Any]:
        parent, child = self.ctx.Pipe()
        p = self.ctx.Process(target=_worker, args=(child,), daemon=True)
        p.start()
        return [p, parent, None, 0.0]  # process, connection, current model, start time

    def run(self, names: list[str], sink: Any) -> None:
        todo = list(names)
        while todo or any(s[2] for s in self.slots):
            for s in self.slots:
                if s[2] is None and todo:
                    s[2], s[3] = todo.pop(0), time.time()
                    s[1].send(s[2])
            busy = [s for s in self.slots if s[2]]
            ready = wait([s[1] for s in busy], timeout=5)
            for i, s in enumerate(self.slots):
                if s[2] is None:
                    continue
                if s[1] in ready:
                    key, started = s[2], s[3]
                    try:
                        res = s[1].recv()
                        s[2] = None
                    except EOFError:  # the worker died (killed for memory): a fresh one for the next model
                        res = {"status": "crashed"}
                        self.slots[i] = self._spawn()
                    sink(_labelled(dict(res, wall_seconds=time.time() - started), key))
                elif time.time() - s[3] > self.timeout:
                    s[0].kill()
                    sink(_labelled({"status": "timeout", "wall_seconds": self.timeout}, s[2]))
                    self.slots[i] = self._spawn()

    def close(self) -> None:
        for p, conn, *_ in self.slots:
            with contextlib.suppress(BrokenPipeError, OSError):
                conn.send(None)
            p.join(5)


# ---- summary ----------------------------------------------------------------------------------------------
def _ok(r: dict[str, Any], key: str) -> bool:
    return isinstance(r.get(key), dict) and r[key].get("status") == "ok"


def lsuv_ok(r: dict[str, Any]) -> bool:
    lsuv = r.get("lsuv", {})
    return (lsuv.get("status") == "ok" and lsuv.get("silent_count", 1) == 0
            and bool(lsuv.get("skipped_with_reason")))


def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(results)
    lms = [r for r in results if _ok(r, "auto") and "lm_ok" in r["auto"]]
    auto_ratios = [r["auto"]["ratio_to_build"] for r in results
                   if _ok(r, "auto") and "ratio_to_build" in r["auto"]]
    diag = [r["diagnose"]["ratio"] for r in results if _ok(r, "diagnose")]
    return {
        "models": n,
        "built": sum("params" in r for r in results),
        "auto_ok": sum(_ok(r, "auto") for r in results),
        "finite_auto": sum(_ok(r, "auto") and r["auto"].get("finite", False) for r in results),
        "finite_he_normal": sum(_ok(r, "he_normal") and r["he_normal"].get("finite", False) for r in results),
        "moments_pass": sum(_ok(r, "auto") and r["auto"]["moments"]["pass"] for r in results),
        "layers_measured": sum(r["auto"]["moments"]["measured"] for r in results if _ok(r, "auto")),
        "layers_within_3x": sum(r["auto"]["moments"]["within_3x"] for r in results if _ok(r, "auto")),
        "layers_in_range": sum(r["auto"]["moments"]["in_range"] for r in results if _ok(r, "auto")),
        "layers_predicted": sum(r["auto"]["moments"]["predicted"] for r in results if _ok(r, "auto")),
        "lm_models": len(lms), "lm_within_15pct": sum(bool(r["auto"]["lm_ok"]) for r in lms),
        "lsuv_ok": sum(_ok(r, "lsuv") for r in results),
        "lsuv_ok_no_silent": sum(lsuv_ok(r) for r in results),
        "auto_ratio_median": statistics.median(auto_ratios) if auto_ratios else None,
        "auto_ratio_max": max(auto_ratios, default=None),
        "diagnose_ratio_median": statistics.median(diag) if diag else None,
        "diagnose_ratio_max": max(diag, default=None),
        "timeouts": sum(r.get("status") in ("timeout", "crashed") for r in results),
        "harness_errors": sum(r.get("status") == "harness-error" for r in results),
    }


def _fmt(x: Any, spec: str = ".3g") -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "NO"
    return format(x, spec) if isinstance(x, float) else str(x)


def _cell(r: dict[str, Any], key: str) -> str:
    v = r.get(key)
    if not isinstance(v, dict):
        return r.get("status", "–")
    if v.get("status") != "ok":
        return "error"
    return "ok" if v.get("finite", True) else "non-finite"


def _row(r: dict[str, Any]) -> str:
    a = r.get("auto", {}) if isinstance(r.get("auto"), dict) else {}
    m = a.get("moments", {})
    lsuv = r.get("lsuv", {}) if isinstance(r.get("lsuv"), dict) else {}
    lsuv_cell = _cell(r, "lsuv")
    if lsuv.get("status") == "ok":
        lsuv_cell = f"ok {lsuv['calibrated']}" + (f", {lsuv['silent_count']} silent" if lsuv["silent_count"]
                                                  else "") + (f", {len(lsuv['skipped'])} skipped"
                                                              if lsuv["skipped"] else "")
    moments = f"{m.get('within_3x', '–')}/{m.get('measured', '–')}" if m else "–"
    lm = f"{_fmt(a.get('lm_loss'), '.2f')} / {_fmt(a.get('ln_v'), '.2f')}" if "lm_loss" in a else ""
    diag = r.get("diagnose", {}) if isinstance(r.get("diagnose"), dict) else {}
    return (f"| {r.get('source', '')} | {r['name']} | {_cell(r, 'auto')} | {_cell(r, 'he_normal')}"
            f" | {lsuv_cell} | {_fmt(diag.get('ratio'), '.1f')} | {_fmt(a.get('ratio_to_build'), '.2f')}"
            f" | {moments} | {_fmt(m.get('worst_ratio'))} | {lm} |")


def _warm_line(meta: dict[str, Any]) -> str:
    warm = meta.get("warm_up") or {}
    if not warm:
        return ""
    first, second = warm["first_call_seconds"], warm["second_call_seconds"]
    return (f" Workers fork after initlab ran once in the parent (first call {first:.2f} s, second "
            f"{second:.3f} s on the same small model: the process's one-time cost, not charged to the first "
            "model of each worker).")


def markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    s = summary(results)
    n = s["models"]
    lines = [
        "# initlab on the model zoo (issue 13)", "",
        f"Generated by `benchmarks/zoo.py` ({meta.get('label', '')}; {meta.get('when', '')}; torch "
        f"{torch.__version__}, 1 thread per worker, shared CPU). Each model is built without pretrained "
        "weights (HF from tiny configs), given a random input of the kind it takes, then initialized with "
        "`auto`, `he_normal` and LSUV from the same constructed weights, and diagnosed."
        + _warm_line(meta), "",
        "| target | result |", "|---|---|",
        f"| finite output after auto (100%) | {s['finite_auto']}/{n} |",
        f"| finite output after he_normal | {s['finite_he_normal']}/{n} |",
        f"| every weight layer's E[y²] within 3× of the plan and in [1e-2, 1e2] (models) | "
        f"{s['moments_pass']}/{n} |",
        f"| weight layers within 3× of the plan (all models) | {s['layers_within_3x']}/{s['layers_measured']}"
        f" ({s['layers_predicted']} with a prediction) |",
        f"| weight layers with E[y²] in [1e-2, 1e2] | {s['layers_in_range']}/{s['layers_measured']} |",
        f"| LM step-0 loss within 15% of ln V | {s['lm_within_15pct']}/{s['lm_models']} |",
        f"| LSUV runs | {s['lsuv_ok']}/{n} |",
        f"| LSUV runs, every weight layer calibrated or named with a reason | {s['lsuv_ok_no_silent']}/{n} |",
        f"| auto first call / construction: median ≤ 1.5, worst ≤ 4 | {_fmt(s['auto_ratio_median'], '.2f')},"
        f" worst {_fmt(s['auto_ratio_max'], '.1f')} |",
        f"| diagnose / one forward+backward: median ≤ 3 | {_fmt(s['diagnose_ratio_median'], '.1f')},"
        f" worst {_fmt(s['diagnose_ratio_max'], '.1f')} |",
        f"| timeouts/crashes, harness errors | {s['timeouts']}, {s['harness_errors']} |", "",
        "Columns: auto / he_normal: ok, non-finite output or error; LSUV: layers calibrated, weight layers "
        "neither calibrated nor named (silent), layers skipped; diag×: diagnose time / one forward+backward; "
        "auto×: auto's first call / construction; E[y²] 3×: weight layers whose measured output second "
        "moment "
        "is within 3× of the report's prediction / layers measured; worst: the measured/predicted ratio "
        "furthest from 1; LM: step-0 loss / ln V.", "",
        "| source | model | auto | he_normal | LSUV | diag× | auto× | E[y²] 3× | worst | LM loss / ln V |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_row(r) for r in sorted(results, key=lambda r: (r.get("source", ""), r["name"]))]
    errors = [(r["name"], k, r[k]["error"]) for r in results
              for k in ("auto", "he_normal", "lsuv", "diagnose")
              if isinstance(r.get(k), dict) and r[k].get("error")]
    errors += [(r["name"], r["status"], r.get("error", "")) for r in results if "status" in r]
    if errors:
        lines += ["", "## Errors", ""]
        lines += [f"- {n} ({k}): {e.splitlines()[0] if e else ''}" for n, k, e in errors]
    return "\n".join(lines) + "\n"


# ---- main -------------------------------------------------------------------------------------------------
def select(args: argparse.Namespace) -> list[zm.Entry]:
    entries = zm.subset_entries() if args.subset else zm.all_entries(tuple(args.sources.split(",")))
    if args.family:
        entries = [e for e in entries if args.family in (e.source, e.family) or args.family in e.name]
    if args.names:
        wanted = set(args.names.split(","))
        entries = [e for e in entries if e.name in wanted]
    by_source: dict[str, list[zm.Entry]] = {}
    for e in entries:
        by_source.setdefault(e.source, []).append(e)
    # round-robin over the libraries: a run cut short still covers each of them
    mixed = [e for group in itertools.zip_longest(*by_source.values()) for e in group if e is not None]
    return mixed[: args.limit] if args.limit else mixed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subset", action="store_true", help="the CI-size subset")
    p.add_argument("--family", help="keep models whose source, family or name contains this")
    p.add_argument("--names", help="comma-separated model names")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--sources", default="hf,torchvision,timm", help="which libraries, in this order")
    p.add_argument("--out", default="benchmarks/results/zoo.json")
    p.add_argument("--md", default="", help="also write a markdown table here (e.g. docs/zoo.md)")
    p.add_argument("--label", default="", help="a label for the table (branch, commit)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--timeout", type=float, default=240.0, help="seconds per model")
    p.add_argument("--exclude", default="", help="comma-separated model names to leave out")
    p.add_argument("--only", default="", help="comma-separated subset of auto,diagnose,he_normal,lsuv")
    p.add_argument("--plan-rows", action="store_true",
                   help="record each plan row's (name, std, var_out) in the result stream")
    p.add_argument("--from-jsonl", nargs="*", default=None,
                   help="no run: merge these result streams into --out/--md (key by key, later files win)")
    args = p.parse_args()
    if args.from_jsonl is not None:
        merged = merge_streams(args.from_jsonl)
        write(merged, args, {})
        return
    entries = [e for e in select(args) if e.name not in set(args.exclude.split(","))]
    if args.only:
        ONLY.intersection_update(args.only.split(","))
    if args.plan_rows:
        PLAN_ROWS.append(True)
    _ENTRIES.update({_key(e): e for e in entries})
    import initlab.diagnostics
    import initlab.methods
    import initlab.model  # noqa: F401

    warm = warm_up()
    print(f"warm-up in the parent: first call {warm['first_call_seconds']:.2f} s, second "
          f"{warm['second_call_seconds']:.3f} s", flush=True)
    results: list[dict[str, Any]] = []
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    stream = open(args.out + "l", "w")  # noqa: SIM115 - one line per model as it finishes

    def sink(res: dict[str, Any]) -> None:
        results.append(res)
        stream.write(json.dumps(res, default=str) + "\n")
        stream.flush()
        status = res.get("status") or _brief(res)
        print(f"[{len(results)}/{len(entries)}] {res['name']}: {status}", flush=True)

    pool = Pool(args.workers, args.timeout)
    try:
        pool.run([_key(e) for e in entries], sink)
    finally:
        pool.close()
        stream.close()
    write(results, args, warm)


def merge_streams(paths: list[str]) -> list[dict[str, Any]]:
    """Result streams merged key by key per model (one run's auto, another's LSUV; later files win), a model
    being its source and name (torchvision's and timm's ``resnet50`` are two)."""
    sources = {e.name: e.source for e in zm.all_entries()}  # older streams' timeout lines name no source
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for path in paths:
        with open(path) as f:
            for r in filter(None, map(json.loads, f)):
                r.setdefault("source", sources.get(r["name"], ""))
                into = merged.setdefault((r["source"], r["name"]), {})
                if "build_seconds" in r:  # a measurement supersedes an earlier run's timeout
                    into.pop("status", None)
                into.update(r)
    return list(merged.values())


def write(results: list[dict[str, Any]], args: argparse.Namespace, warm: dict[str, float]) -> None:
    meta: dict[str, Any] = {"label": args.label, "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                            "warm_up": warm}
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "summary": summary(results), "models": results}, f, indent=1, default=str)
    print(json.dumps(summary(results), indent=1))
    if args.md:
        with open(args.md, "w") as f:
            f.write(markdown(results, meta))


def _brief(res: dict[str, Any]) -> str:
    return " ".join(f"{k}={_cell(res, k)}" for k in ("auto", "he_normal", "lsuv", "diagnose"))


if __name__ == "__main__":
    main()
