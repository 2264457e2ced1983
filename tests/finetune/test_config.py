"""Fine-tune settings and finding names: a mistake is one ConfigError line naming what to fix."""

from __future__ import annotations

import pytest

from radpipe.errors import ConfigError
from radpipe.finetune.config import finding_label, finetune_config, registered_name


def test_defaults_are_a_frozen_head_on_every_positive() -> None:
    config = finetune_config()
    assert (config.mode, config.shots, config.experiment) == ("frozen", None, "radpipe-finetune")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mode": "full"}, "setting mode: Input should be 'frozen' or 'partial'"),
        ({"shots": 0}, "setting shots: Input should be greater than or equal to 1"),
        ({"epochs": 0}, "setting epochs"),
        ({"lr": -1.0}, "setting lr"),
        ({"batch_size": 0}, "setting batch_size"),
        ({"shot": 5}, "setting shot: Extra inputs are not permitted"),
    ],
)
def test_a_bad_setting_is_one_config_error_line(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        finetune_config(**values)
    assert "\n" not in str(caught.value)


def test_config_is_immutable() -> None:
    config = finetune_config(shots=3)
    with pytest.raises(Exception, match="frozen"):
        config.shots = 4  # type: ignore[misc]


def test_a_finding_is_named_as_in_the_reports_and_registered_with_hyphens() -> None:
    assert finding_label("pleural_effusion") == "pleural_effusion"
    assert finding_label("Pleural-Effusion") == "pleural_effusion"  # the registered model's spelling works too
    assert registered_name("pleural_effusion") == "radpipe-pleural-effusion"


def test_an_unknown_finding_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="unknown label 'effusion'; one of: no_finding, .*pleural_effusion"):
        finding_label("effusion")
