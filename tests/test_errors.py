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
    line = first_problem(_problem(steps=0, token="ab"), "config", show_input=True)
    assert line == "steps: Input should be greater than or equal to 1 (got 0); and 1 more"
    assert first_problem(_problem(steps=0), "config") == "steps: Input should be greater than or equal to 1"


def test_text_is_never_shown_it_may_be_a_path_a_secret_or_a_report() -> None:
    line = first_problem(_problem(token="s3"), "config", show_input=True)
    assert line == "token: String should have at least 3 characters" and "s3" not in line


def test_a_problem_of_the_whole_is_named_by_the_caller() -> None:
    with pytest.raises(ValidationError) as caught:
        _Settings.model_validate(["not", "a", "mapping"])
    assert first_problem(caught.value, "settings").startswith("settings: ")
