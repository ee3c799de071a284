"""``initlab.distributed``: sharded initialization (FSDP2 / DTensor). Implemented in
:mod:`initlab.scale.distributed`; this module only gives it the short import path."""

from .scale.distributed import init_sharded, local_piece, retie, tie_groups

__all__ = ["init_sharded", "local_piece", "retie", "tie_groups"]
