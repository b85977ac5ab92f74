"""optim.decay: the learning-rate multiplier against its formula, the default unchanged, bad settings refused
before training, and stages that step two optimisers per batch ending their cosine at the last batch."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from audioldm.config import ConfigError, load_config
from lightning_modules.optim import lr_factor

REPO = Path(__file__).resolve().parents[1]


def test_constant_is_the_linear_warm_up_then_one():
    factor = lr_factor(4, "constant", 0.0, 100)
    assert [factor(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert lr_factor(0, "constant", 0.0, 100)(0) == 1.0


def test_cosine_from_one_after_the_warm_up_to_the_floor_at_the_last_step():
    factor = lr_factor(10, "cosine", 0.1, 110)
    assert factor(0) == pytest.approx(0.1) and factor(9) == 1.0  # still the warm-up
    assert factor(10) == 1.0
    assert factor(60) == pytest.approx(0.1 + 0.9 * 0.5)  # halfway: cos(pi / 2) = 0
    assert factor(35) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert factor(110) == pytest.approx(0.1) and factor(500) == pytest.approx(0.1)  # stays at the floor
    assert lr_factor(0, "cosine", 0.0, 100)(100) == pytest.approx(0.0)


def test_bad_decay_settings_fail_at_config_load():
    demo = REPO / "configs" / "demo" / "vae.yaml"
    with pytest.raises(ConfigError, match="optim.decay='linear' is unknown"):
        load_config(demo, ["optim.decay=linear"])
    with pytest.raises(ConfigError, match="optim.decay=cosine needs trainer.max_steps"):
        load_config(demo, ["optim.decay=cosine", "trainer.max_steps=-1"])
    with pytest.raises(ConfigError, match="optim.min_lr_ratio=2"):
        load_config(demo, ["optim.min_lr_ratio=2"])
    with pytest.raises(ConfigError, match="does not apply to the vocoder"):
        load_config(REPO / "configs" / "demo" / "vocoder.yaml", ["optim.decay=cosine"])


def test_vae_cosine_ends_at_its_last_batch():
    """The VAE steps its two optimisers once per batch each, so trainer.max_steps=600 is 300 batches: its
    schedulers (stepped once per batch) reach the floor at step 300."""
    from lightning_modules.vae import VaeModule
    from tests.ldm_fixtures import TINY_OVERRIDES

    config = load_config(
        REPO / "configs" / "demo" / "vae.yaml",
        [
            "data.train_manifest=x",
            *TINY_OVERRIDES["vae"],
            "optim.decay=cosine",
            "optim.min_lr_ratio=0.05",
            "optim.warmup_steps=0",
            "trainer.max_steps=600",
        ],
    )
    _, schedulers = VaeModule(config).configure_optimizers()
    for entry in schedulers:
        factor = entry["scheduler"].lr_lambdas[0]
        assert factor(0) == 1.0 and factor(150) == pytest.approx(0.05 + 0.95 * 0.5)
        assert factor(300) == pytest.approx(0.05)
