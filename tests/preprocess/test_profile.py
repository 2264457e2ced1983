import numpy as np
import pytest

from radpipe.errors import ConfigError
from radpipe.preprocess import Profile, apply_profile, get_profile


def test_monochrome1_is_inverted_so_dense_is_bright() -> None:
    values = np.zeros((100, 100), dtype=np.float32)
    values[40:60, 40:60] = 1000.0
    profile = Profile("t", size=(50, 50), keep_aspect=False)
    normal = apply_profile(values, profile, invert=False)
    inverted = apply_profile(values, profile, invert=True)
    assert normal[25, 25] > normal[2, 2]
    assert inverted[25, 25] < inverted[2, 2]


def test_aspect_is_kept_by_letterboxing() -> None:
    values = np.full((100, 200), 500.0, dtype=np.float32)
    values[:, :100] = 0.0
    out = apply_profile(values, Profile("t", size=(64, 64)), invert=False)
    assert out.shape == (64, 64) and out.dtype == np.uint8
    assert (out[:12] == 0).all() and (out[-12:] == 0).all()  # padding rows above and below


def test_voi_window_is_used_when_present() -> None:
    values = np.linspace(0, 4095, 128 * 128, dtype=np.float32).reshape(128, 128)
    profile = get_profile("cxr-224")
    narrow = apply_profile(values, profile, invert=False, voi=(2048.0, 200.0))
    wide = apply_profile(values, profile, invert=False)
    assert (narrow == 255).mean() > 0.4 and (wide == 255).mean() < 0.05


def test_unknown_and_invalid_profiles_fail_clearly() -> None:
    with pytest.raises(ConfigError, match="unknown profile"):
        get_profile("nope")
    with pytest.raises(ConfigError):
        Profile("tiny", size=(8, 8))
