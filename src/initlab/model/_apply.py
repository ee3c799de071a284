"""The one applier: a :class:`~.plan.Plan` drawn into a model, all or nothing, with a pluggable fill.

Two phases. :func:`prepare_plan` does everything that can fail before the model is touched: structured draws
(orthogonal...) into temporaries, dtype casts, parametrizations' ``right_inverse``. :func:`commit_plan` then
writes, inside a :func:`transaction`: a per-model lock (two threads initializing one model take turns),
SIGINT held until the end, and a :class:`Journal` that snapshots each tensor just before its first write, so
that any exception (KeyboardInterrupt, MemoryError...) or a Ctrl-C received meanwhile puts every tensor back
bit for bit. ``init_model``, ``apply_plan``, ``materialize`` and ``init_sharded`` all commit through it.

The fill is pluggable: :func:`torch_fill` (torch's generator, in plan order), the counter-based generator
(:func:`.plan_counter.counter_fill`) or shard-local pieces (:func:`.plan_counter.fill_assignment_`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..backends.torch_backend import check_dtype, fill_
from ..catalog import draws as d
from ..errors import InitlabValueError
from ._steps import Center, LooksLinear, looks_linear_role

if TYPE_CHECKING:
    from .graph import Walk
    from .plan import Assignment, Plan

Fill = Callable[[torch.Tensor, "Assignment"], None]
Spare = tuple[tuple[Any, ...], int]  # a storage's pool key (shape, dtype, device) and its size in bytes


# ---- per-model lock and deferred SIGINT ------------------------------------------------------------------
_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(model: nn.Module) -> threading.RLock:
    """The lock every initlab write to ``model`` holds (re-entrant: a scheme may call ``init_model`` inside
    another). Weakly keyed: it never keeps the model alive."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


class _Pending:
    """SIGINTs received while a commit runs, delivered (to the handler that was installed before) on
    :meth:`deliver`, from inside the transaction, so that the default handler's KeyboardInterrupt undoes
    it."""

    def __init__(self) -> None:
        self.caught: list[tuple[Any, ...]] = []
        self.previous: Any = None

    def deliver(self) -> None:
        if not self.caught:
            return
        args, self.caught = self.caught[0], []
        if callable(self.previous):
            self.previous(*args)
        elif self.previous == signal.SIG_DFL:
            raise KeyboardInterrupt


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[_Pending]:
    """Hold SIGINT until :meth:`_Pending.deliver` or the end of the block (main thread only: signals are
    only delivered there)."""
    pending = _Pending()
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return
    pending.previous = signal.signal(signal.SIGINT, lambda *args: pending.caught.append(args))
    try:
        yield pending
    finally:
        signal.signal(signal.SIGINT, pending.previous)
        pending.deliver()


# ---- storage recycling -----------------------------------------------------------------------------------
POOL_BYTES = 1 << 30  # the most memory kept for reuse, over every live model


class _Pool:
    """Storage a model's last commit released, reused by its next one: values are drawn into it and swapped
    in, so that a commit makes no extra pass over memory (and no fresh page faults) yet keeps the old values
    until it completes. Freed with the model (weakly keyed); at most :data:`POOL_BYTES` in all."""

    def __init__(self) -> None:
        self.free: dict[tuple[Any, ...], list[torch.Tensor]] = {}
        self.bytes = 0

    def take(self, spare: Spare, like: torch.Tensor) -> torch.Tensor:
        stack = self.free.get(spare[0])
        if stack:
            self.bytes -= spare[1]
            return stack.pop()
        return torch.empty(like.shape, dtype=like.dtype, device=like.device)

    def give(self, swapped: Sequence[tuple[torch.Tensor, torch.Tensor, Spare]]) -> None:
        """Keep the swapped-out storage for reuse, as much as fits under :data:`POOL_BYTES` (counted once per
        commit)."""
        with _LOCKS_GUARD:
            room = POOL_BYTES - sum(p.bytes for p in _POOLS.values())
            for _, old, (key, size) in swapped:
                if size > room:
                    continue
                room -= size
                self.bytes += size
                self.free.setdefault(key, []).append(old)


_POOLS: weakref.WeakKeyDictionary[nn.Module, _Pool] = weakref.WeakKeyDictionary()


def pool(model: nn.Module) -> _Pool:
    with _LOCKS_GUARD:
        p = _POOLS.get(model)
        if p is None:
            p = _POOLS[model] = _Pool()
        return p


_USE_COUNT = getattr(torch._C, "_storage_Use_Count", None)
_PLAIN = frozenset({torch.Tensor, nn.Parameter})


def spare_of(t: torch.Tensor) -> Spare | None:
    """The pool key and size of ``t``'s storage when it can be swapped for another without anyone noticing (a
    plain tensor or Parameter, contiguous, alone in its storage and with no other tensor, view or alias, on
    it); else None."""
    if _USE_COUNT is None or type(t) not in _PLAIN or not (t.is_cpu or t.is_cuda):
        return None
    if t.layout is not torch.strided or t.is_quantized or t.storage_offset() != 0 or not t.is_contiguous():
        return None
    storage = t.untyped_storage()
    size = storage.nbytes()
    if size != t.numel() * t.element_size() or _USE_COUNT(storage._cdata) != 2:
        return None
    return (t.shape, t.dtype, t.device), size


# ---- the journal -----------------------------------------------------------------------------------------
@dataclass
class Journal:
    """What a transaction changed, to undo it: tensors written in place (their previous values), tensors
    given new storage (their previous storage) and slots given a new tensor (their previous tensor)."""

    saved: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    swapped: list[tuple[torch.Tensor, torch.Tensor, Spare]] = field(default_factory=list)
    slots: list[tuple[dict[str, Any], str, bool, Any]] = field(default_factory=list)
    undo_hooks: list[Callable[[], None]] = field(default_factory=list)

    def save(self, tensor: torch.Tensor) -> torch.Tensor:
        """Snapshot ``tensor`` before its first write in this transaction; returns it detached."""
        t = tensor.detach()
        if id(tensor) not in self.saved and t.device.type != "meta":
            self.saved[id(tensor)] = (tensor, t.clone())
        return t

    def swap(self, tensor: torch.Tensor, new: torch.Tensor, spare: Spare) -> None:
        """Give ``tensor`` (whose storage is ``spare``) the storage of ``new`` (same shape, dtype, device),
        keeping the old storage (in a detached alias: ``set_`` gives ``tensor`` another storage and leaves the
        alias on the old one)."""
        self.swapped.append((tensor, tensor.detach(), spare))
        if torch.is_grad_enabled():  # a no_grad decorator would cost more than the swap (hot path)
            with torch.no_grad():
                tensor.set_(new)  # type: ignore[call-overload]  # (a Tensor is accepted)
        else:
            tensor.set_(new)  # type: ignore[call-overload]

    def release(self, to: _Pool) -> None:
        """After a successful transaction: the swapped-out storage goes to ``to`` for reuse."""
        to.give(self.swapped)
        self.swapped.clear()

    def install(self, table: dict[str, Any], key: str, value: Any) -> None:
        """``table[key] = value`` (a module's ``_parameters``/``_buffers``), undoable."""
        self.slots.append((table, key, key in table, table.get(key)))
        table[key] = value

    def on_undo(self, fn: Callable[[], None]) -> None:
        self.undo_hooks.append(fn)

    @torch.no_grad()
    def undo(self) -> None:
        for fn in reversed(self.undo_hooks):
            fn()
        for table, key, present, old in reversed(self.slots):
            if present:
                table[key] = old
            else:
                table.pop(key, None)
        for tensor, old in self.saved.values():
            tensor.detach().copy_(old)
        for tensor, old, _ in reversed(self.swapped):
            tensor.set_(old)  # type: ignore[call-overload]  # (a Tensor is accepted)
        self.saved.clear()
        self.swapped.clear()
        self.slots.clear()
        self.undo_hooks.clear()


    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """The writes themselves: Ctrl-C is held meanwhile and delivered at the end, inside the transaction,
        so that it undoes them."""
        with _deferred_interrupt() as pending:
            yield
            pending.deliver()


@contextlib.contextmanager
def transaction(model: nn.Module) -> Iterator[Journal]:
    """All or nothing, under the model's lock: the body writes through the journal (its writes inside
    :meth:`Journal.writing`); any exception, or a Ctrl-C received while writing, undoes every write (with
    Ctrl-C held) and propagates."""
    journal = Journal()
    with model_lock(model):
        try:
            yield journal
        except BaseException:
            with _deferred_interrupt():
                journal.undo()
            raise
        journal.release(pool(model))


# ---- fills -----------------------------------------------------------------------------------------------
def torch_fill(generator: torch.Generator, params: Mapping[str, torch.Tensor]) -> Fill:
    """``fill(tensor, assignment)`` with torch's generator: blocks in order, then the post-steps."""
    checked: set[Any] = set()

    def fill(target: torch.Tensor, a: Assignment) -> None:
        data = target.detach() if target.requires_grad else target  # (a spare tensor needs no alias)
        role = looks_linear_role(a.post) if a.post else None
        for draw in a.draws:
            check_once(draw, data.dtype, checked)
        if role is not None and data.dim() == 2:
            a_block = torch.empty(looks_linear_block(data.shape, role), dtype=data.dtype, device=data.device)
            fill_(a_block, a.draws[0], generator, finite=False)
            write_looks_linear_(data, a_block)
        elif data.numel():
            if len(a.draws) == 1:
                if not _torch_direct(data, a.draws[0], generator):
                    fill_(data, a.draws[0], generator, finite=False)
            else:
                for block, draw in zip(data.chunk(len(a.draws), 0), a.draws, strict=True):
                    fill_(block, draw, generator, finite=False)
        for step in a.post:
            step.apply(data, params)

    return fill


_FLOATS = (torch.float32, torch.float64)


def _torch_direct(data: torch.Tensor, draw: d.Draw, g: torch.Generator) -> bool:
    """The common draws into a contiguous float32/float64 tensor with torch's own in-place calls, as
    :func:`~initlab.backends.torch_backend.fill_` makes them (the same values, bit for bit) without its
    general dispatch (half types, blocks, structured draws): ~4 us a tensor on a model of small layers."""
    if data.dtype not in _FLOATS or not data.is_contiguous():
        return False
    if isinstance(draw, d.Uniform):
        data.uniform_(draw.low, draw.high, generator=g)
    elif isinstance(draw, d.Normal):
        data.normal_(draw.mean, draw.std, generator=g)
    elif isinstance(draw, d.Constant):
        data.zero_() if draw.value == 0 else data.fill_(draw.value)
    else:
        return False
    return True


def check_once(draw: d.Draw, dtype: torch.dtype, checked: set[Any]) -> None:
    """:func:`~initlab.backends.torch_backend.check_dtype` once per (draw, dtype) of a commit (``checked``
    holds those found representable): ~3 us a call, paid for every tensor otherwise."""
    try:
        if (draw, dtype) in checked:
            return
    except TypeError:  # an unhashable draw: checked every time
        check_dtype(draw, dtype)
        return
    check_dtype(draw, dtype)
    checked.add((draw, dtype))


def looks_linear_block(shape: Sequence[int], role: str) -> tuple[int, int]:
    """Shape of the block ``A`` of a looks-linear weight of ``shape`` (rows, cols) in position ``role``."""
    rows, cols = shape
    return (rows // 2 if role in ("first", "mid") else rows, cols // 2 if role in ("mid", "last") else cols)


def write_looks_linear_(data: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Middle ``[[A, -A], [-A, A]]``, first ``[[A], [-A]]``, last ``[A, -A]``: relu(u) - relu(-u) = u."""
    (rows, cols), (r2, c2) = data.shape, a.shape
    data.zero_()
    data[:r2, :c2] = a
    if c2 < cols:
        data[:r2, c2 : 2 * c2] = -a
    if r2 < rows:
        data[r2 : 2 * r2, :c2] = -a
        if c2 < cols:
            data[r2 : 2 * r2, c2 : 2 * c2] = a
    return data


# ---- casts and parametrizations (everything that can fail, before the first write) ------------------------
def cast(value: torch.Tensor, like: torch.Tensor, what: str) -> torch.Tensor:
    """``value`` in the dtype and device of ``like`` (a new tensor when they differ)."""
    if tuple(value.shape) != tuple(like.shape):
        raise InitlabValueError(f"{what}: shape {tuple(value.shape)} does not fit {tuple(like.shape)}")
    return value.to(dtype=like.dtype, device=like.device)


def right_inverse(module: nn.Module, attr: str, value: torch.Tensor,
                  name: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(tensor, its new value) for the parametrized ``module.attr`` to equal ``value``: the originals, from
    the parametrizations' ``right_inverse`` chain as ``setattr`` would run it, but computed before any write
    (a parametrization without one, e.g. ``orthogonal_map="cayley"``, fails here), and the parametrizations'
    own buffers that the chain sets (``orthogonal`` keeps a ``base``): those are put back at once and listed
    as writes too, and torch's global RNG (``orthogonal`` draws from it) is restored."""
    plist: Any = module.parametrizations[attr]  # type: ignore[index]
    tables = [(m._buffers, dict(m._buffers)) for m in plist.modules()]
    values_before = {id(b): b.clone() for _, before in tables for b in before.values() if b is not None}
    rng = torch.get_rng_state()
    try:
        out = _inverse_chain(plist, value, name)
        buffers = _buffer_writes(tables, values_before)
    finally:
        torch.set_rng_state(rng)
        for table, before in tables:
            table.clear()
            table.update(before)
            for b in before.values():
                if b is not None and id(b) in values_before:
                    b.detach().copy_(values_before[id(b)])
    originals = [plist.original] if hasattr(plist, "original") else [
        getattr(plist, f"original{i}") for i in range(plist.ntensors)]
    values = [out] if isinstance(out, torch.Tensor) else list(out)
    if len(values) != len(originals):
        raise InitlabValueError(
            f"{name}: right_inverse gave {len(values)} tensors for {len(originals)} originals")
    return [*buffers, *((o, cast(v, o, name)) for o, v in zip(originals, values, strict=True))]


def _inverse_chain(plist: Any, value: torch.Tensor, name: str) -> Any:
    out: Any = value
    with torch.no_grad():
        for step in reversed(plist):
            if not hasattr(step, "right_inverse"):
                raise InitlabValueError(
                    f"{name}: parametrization {type(step).__name__} has no right_inverse: "
                                 "initialize the original tensors (or add a rule 'keep')")
            try:
                out = step.right_inverse(out)
            except NotImplementedError as exc:
                raise InitlabValueError(f"{name}: parametrization {type(step).__name__} cannot be set from a "
                                 f"value ({exc}); add a rule {{{name!r}: 'keep'}}") from None
    return out


def _buffer_writes(tables: list[tuple[dict[str, Any], dict[str, Any]]],
                   values_before: dict[int, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(buffer as it was, the value the chain gave it) for every buffer the chain replaced or changed."""
    out = []
    for table, before in tables:
        for key, old in before.items():
            new = table.get(key)
            if old is None or new is None:
                continue
            if new is not old or not torch.equal(new, values_before[id(old)]):
                out.append((old, cast(new.detach().clone(), old, key)))
    return out


# ---- prepare / commit ------------------------------------------------------------------------------------
@dataclass
class Write:
    """One assignment ready to commit: ``target`` filled in place by the fill at commit (``source`` None), or
    given the prepared ``source``; a parametrized weight's ``originals`` get their prepared values."""

    assignment: Assignment
    target: torch.Tensor | None
    source: torch.Tensor | None
    originals: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    spare: Spare | None = None  # the target's storage, when the fill draws into spare storage swapped in


@dataclass
class Prepared:
    """A plan ready to commit: everything that can fail already computed into temporaries."""

    model: nn.Module
    writes: list[Write]
    reset_stats: list[nn.Module]
    fill: Fill
    params: Mapping[str, torch.Tensor]


def _direct(a: Assignment, current: torch.Tensor, in_place: bool) -> bool:
    """Whether the fill can draw straight into the model tensor at commit (elementwise draws into a
    contiguous float tensor); elsewhere the value is prepared in a temporary."""
    return (
        in_place
        and not a.parametrized
        and current.dtype in (torch.float32, torch.float64)
        and current.is_contiguous()
        and (isinstance(a.draws[0], d.ELEMENTWISE) if len(a.draws) == 1
             else all(isinstance(dr, d.ELEMENTWISE) for dr in a.draws))
        and not (a.post and any(isinstance(s, LooksLinear) for s in a.post))
    )


@torch.no_grad()
def prepare_plan(model: nn.Module, plan: Plan, generator: torch.Generator | None = None, *,
                 seed: int | None = None, walk: Walk | None = None, fill: Fill | None = None) -> Prepared:
    """Phase 1: nothing in the model changes. ``walk``: :func:`.graph.named_tensors` of the model when the
    caller has it. ``fill(tensor, assignment)``: another generator (the counter-based one); default torch's,
    seeded with ``seed``. Meta tensors are skipped."""
    from ..backends.torch_backend import make_generator
    from .graph import named_tensors, unwrap

    model = unwrap(model)
    modules, params = walk or named_tensors(model)
    writes: list[Write] = []
    own_fill = fill is None  # torch's generator writes in place on any device; another fill only on CPU
    for a in plan.assignments:
        module = modules[a.owner]
        current = getattr(module, a.attr) if a.parametrized else params[a.name]
        if current.is_meta:
            continue
        if fill is None:
            fill = torch_fill(generator or make_generator(current.device, seed), params)
        if _direct(a, current, own_fill or current.is_cpu):
            # decided here, not per write at commit: nothing in between makes an alias of a target
            writes.append(Write(a, current, None, [], spare_of(current)))
            continue
        source = torch.empty(a.shape, dtype=current.dtype, device=current.device)
        fill(source, replace(a, post=tuple(s for s in a.post if not isinstance(s, Center))))
        if a.parametrized:
            writes.append(Write(a, None, None, right_inverse(module, a.attr, source, a.name)))
        else:
            writes.append(Write(a, current, cast(source, current, a.name)))
    norms = [model.get_submodule(name) for name in plan.reset_stats]
    norms = [m for m in norms if all(b.device.type != "meta" for b in m.buffers())]
    return Prepared(model, writes, norms, fill or (lambda t, a: None), params)


@torch.no_grad()
def commit_plan(prepared: Prepared, journal: Journal | None = None) -> None:
    """Phase 2: in-place fills and copies in plan order, all or nothing (inside ``journal``'s transaction
    when given, else in its own)."""
    if journal is None:
        with transaction(prepared.model) as own:
            commit_plan(prepared, own)
        return
    with journal.writing():
        _commit(prepared, journal)


def _commit(prepared: Prepared, journal: Journal) -> None:
    recycle, fill = pool(prepared.model), prepared.fill
    for w in prepared.writes:
        for original, value in w.originals:
            journal.save(original).copy_(value)
        if w.target is None:
            continue
        if w.spare is not None:  # drawn into spare storage, then swapped in
            new = recycle.take(w.spare, w.target)
            fill(new, w.assignment)
            journal.swap(w.target, new, w.spare)
            continue
        if w.source is None:
            prepared.fill(journal.save(w.target), w.assignment)
            # a fill may write through another view (numpy): autograd must still see the write
            torch.autograd.graph.increment_version(w.target)
            continue
        spare = spare_of(w.target)
        if spare is not None and w.source.is_contiguous() and spare_of(w.source) is not None:
            journal.swap(w.target, w.source, spare)
        else:
            journal.save(w.target).copy_(w.source)
        data = w.target.detach()
        for step in w.assignment.post:
            if isinstance(step, Center):
                step.apply(data, prepared.params)
    for norm in prepared.reset_stats:
        for buffer in norm.buffers(recurse=False):
            journal.save(buffer)
        norm.reset_running_stats()  # type: ignore[operator]


def apply_plan(model: nn.Module, plan: Plan, generator: torch.Generator | None = None, *,
               seed: int | None = None) -> None:
    """Draw every assignment of ``plan`` into the model (one seed gives one result), all or nothing. Meta
    tensors are skipped: call again after the model is materialized."""
    with model_lock(model):
        commit_plan(prepare_plan(model, plan, generator, seed=seed))
