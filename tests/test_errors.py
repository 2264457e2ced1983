"""pydantic's validation report as the one line a user sees."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field, ValidationError

from radpipe.errors import first_problem


class _Settings(BaseModel):
    steps: int = Field(1, ge=1)
    token: str = Field("x", min_length=3)


def _problem(**values: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        _Settings.model_validate(values)
    return caught.value


def test_the_first_problem_names_its_field_and_counts_the_rest() -> None:
    line = first_problem(_problem(steps=0, token="ab"), "config")
    assert line == "steps: Input should be greater than or equal to 1 (got 0); and 1 more"
    assert "\n" not in line


def test_a_value_that_may_be_secret_is_not_shown() -> None:
    line = first_problem(_problem(token="s3"), "config", show_input=False)
    assert line == "token: String should have at least 3 characters" and "s3" not in line


def test_a_problem_of_the_whole_is_named_by_the_caller() -> None:
    with pytest.raises(ValidationError) as caught:
        _Settings.model_validate(["not", "a", "mapping"])
    assert first_problem(caught.value, "settings").startswith("settings: ")
