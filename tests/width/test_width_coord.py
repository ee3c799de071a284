"""Coordinate check after 5 Adam steps, widths 64..512: under μP every layer's activation change varies by
less than 2x across widths; under SP the output layer's change grows with width (exponent > 0.25)."""

import torch
from width_models import mlp

import initlab

WIDTHS = [64, 128, 256, 512]


def test_mup_coordinates_stay_put(batch, tmp_path):
    result = initlab.coord_check(mlp, WIDTHS, batch, steps=5, optimizer="adam", lr=1e-2)
    assert result.layers == ["0", "2", "4", "<output>"]
    assert result.unstable("delta") == [], str(result)
    assert result.unstable("init") == [], str(result)
    assert "stable" in str(result)
    result.plot(str(tmp_path / "cc.png"))
    assert (tmp_path / "cc.png").stat().st_size > 0


def test_sp_output_change_grows_with_width(batch):
    result = initlab.coord_check(mlp, WIDTHS, batch, steps=5, optimizer="adam", lr=1e-2, parametrization="sp")
    assert result.exponent("4") > 0.25, str(result)
    assert "4" in result.unstable("delta")


def test_zero_readout_is_valid(batch):
    result = initlab.coord_check(mlp, WIDTHS, batch, steps=5, lr=1e-2, readout="zero")
    assert result.unstable("delta") == [], str(result)


def test_global_rng_untouched(batch):
    state = torch.get_rng_state()
    initlab.coord_check(mlp, [16, 32], batch, steps=1)
    assert torch.equal(state, torch.get_rng_state())
