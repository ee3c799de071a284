"""IMPORT SHIM FOR THE BENCHMARK ENVIRONMENT ONLY -- not part of initlab (src/ never imports it).

Why: the registry's torchvision wheel for torch 2.13 is a CUDA build whose C extension (`torchvision._C`)
does not load on CPU torch. torchvision then still registers fake (meta) kernels for `torchvision::nms` and
`torchvision::qnms` at import time, which fails with "operator torchvision::nms does not exist", and timm
imports torchvision, so neither `import torchvision.models` nor `import timm` works.

What it does (call `install()` before the first `import torchvision` / `import timm`):
- defines the op schemas the C extension would have defined (nms, qnms, roi_align, roi_pool, ps_roi_align,
  ps_roi_pool, deform_conv2d and their backward ops), so the meta registrations find them;
- gives `torchvision::nms` a pure-PyTorch CPU kernel (greedy NMS, same semantics as the C++ one) and lets
  `torchvision.ops.nms` call it (torchvision otherwise asserts the extension is loaded);
- leaves `torchvision.extension._has_ops()` False, so roi_align and friends take torchvision's own
  pure-Python fallbacks.

If torchvision's extension loads (a matching CPU wheel), `install()` does nothing.
"""

from __future__ import annotations

import torch

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width,"
    " int sampling_ratio, bool aligned) -> Tensor",
    "_roi_align_backward(Tensor grad, Tensor rois, float spatial_scale, SymInt pooled_height,"
    " SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, SymInt width,"
    " int sampling_ratio, bool aligned) -> Tensor",
    "roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width)"
    " -> (Tensor, Tensor)",
    "_roi_pool_backward(Tensor grad, Tensor rois, Tensor argmax, float spatial_scale, SymInt pooled_height,"
    " SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, SymInt width) -> Tensor",
    "ps_roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width,"
    " int sampling_ratio) -> (Tensor, Tensor)",
    "_ps_roi_align_backward(Tensor grad, Tensor rois, Tensor channel_mapping, float spatial_scale,"
    " SymInt pooled_height, SymInt pooled_width, int sampling_ratio, SymInt batch_size, SymInt channels,"
    " SymInt height, SymInt width) -> Tensor",
    "ps_roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width)"
    " -> (Tensor, Tensor)",
    "_ps_roi_pool_backward(Tensor grad, Tensor rois, Tensor channel_mapping, float spatial_scale,"
    " SymInt pooled_height, SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height,"
    " SymInt width) -> Tensor",
    "deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, SymInt stride_h,"
    " SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, SymInt dilation_w, SymInt groups,"
    " SymInt offset_groups, bool use_mask) -> Tensor",
    "_deform_conv2d_backward(Tensor grad, Tensor input, Tensor weight, Tensor offset, Tensor mask,"
    " Tensor bias, SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h,"
    " SymInt dilation_w, SymInt groups, SymInt offset_groups, bool use_mask)"
    " -> (Tensor, Tensor, Tensor, Tensor, Tensor)",
)

_LIBRARY: torch.library.Library | None = None  # kept alive: dropping it unregisters the schemas


def nms_reference(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS in plain PyTorch: indices kept, by decreasing score (torchvision's CPU semantics)."""
    if dets.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=dets.device)
    x1, y1, x2, y2 = dets.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    order = scores.argsort(descending=True, stable=True)
    xx1 = torch.maximum(x1[order, None], x1[None, order])
    yy1 = torch.maximum(y1[order, None], y1[None, order])
    xx2 = torch.minimum(x2[order, None], x2[None, order])
    yy2 = torch.minimum(y2[order, None], y2[None, order])
    inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
    iou = inter / (areas[order, None] + areas[None, order] - inter)
    suppress = (iou > iou_threshold).tolist()
    removed = [False] * len(suppress)
    keep = []
    for i, row in enumerate(suppress):  # sorted order: box i survives unless a kept, higher box covers it
        if removed[i]:
            continue
        keep.append(i)
        for j in range(i + 1, len(row)):
            removed[j] = removed[j] or row[j]
    return order[torch.tensor(keep, dtype=torch.long, device=dets.device)]


def install() -> None:
    """Make `import torchvision` / `import timm` work on CPU torch (idempotent; see the module docstring)."""
    global _LIBRARY
    if _LIBRARY is not None or _has_nms_schema():  # installed, or the real extension loaded
        return
    lib = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS:
        lib.define(schema)
    lib.impl("nms", nms_reference, "CPU")
    _LIBRARY = lib
    import torchvision.ops.boxes as boxes
    from torchvision import extension

    if not extension._has_ops():
        boxes._assert_has_ops = lambda: None  # nms now has a kernel; the rest keeps torchvision's check


def _has_nms_schema() -> bool:
    try:
        _ = torch.ops.torchvision.nms.default
    except (AttributeError, RuntimeError):
        return False
    return True
