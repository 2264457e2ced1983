import numpy as np
import pytest

from radpipe.errors import ConfigError
from radpipe.preprocess import Profile, apply_profile, apply_profile_stored, get_profile


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


@pytest.mark.parametrize("invert", [False, True])
@pytest.mark.parametrize("voi", [None, (1500.0, 2000.0)])
def test_lookup_table_path_matches_the_float_path(invert: bool, voi: tuple[float, float] | None) -> None:
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 4096, size=(300, 240), dtype=np.uint16)
    stored[100:200, 50:150] = 3500

    def rescale(values: np.ndarray) -> np.ndarray:
        return values.astype(np.float32) * 0.5 - 100.0

    profile = get_profile("cxr-224")
    fast = apply_profile_stored(stored, rescale, profile, invert=invert, voi=voi)
    slow = apply_profile(rescale(stored), profile, invert=invert, voi=voi)
    assert fast.dtype == slow.dtype and fast.shape == slow.shape
    assert np.abs(fast.astype(int) - slow.astype(int)).max() <= 2
