"""Register foundation models without training them: seconds, for tests of what happens after training.

The weights are random (seeded), so metrics sit near chance; tests that need a model that learnt
something train one (tests/train). Everything else is real: the pyfunc package, the SQLite registry.
"""

from __future__ import annotations

from pathlib import Path

import torch

from radpipe import tracking
from radpipe.dataset.store import DatasetStore
from radpipe.model.clip import ContrastiveModel
from radpipe.quality.status import require_validated
from radpipe.settings import get_settings
from radpipe.train.data import training_view
from radpipe.train.run import build_tokenizer
from tests.train.tiny import tiny_experiment


def register_untrained(dataset: Path, name: str, seed: int) -> str:
    """A randomly initialised tiny model registered as a new version of `name`; returns its models:/ URI."""
    from radpipe.model.package import log_foundation_model

    exp = tiny_experiment().model_copy(update={"registered_model": name})
    store = DatasetStore(str(dataset))
    version = require_validated(store)
    view = training_view(store)
    tokenizer, tokenizer_json = build_tokenizer(view, exp)
    torch.manual_seed(seed)
    model = ContrastiveModel(exp.model, tokenizer.vocab_size)
    tracking.configure(get_settings())
    tags = {"dataset_version": version, "profile": view.profile, "git_commit": "test"}
    run_id = tracking.start_run("radpipe-tests", f"untrained-{seed}", {"seed": str(seed)}, tags)
    _, uri = log_foundation_model(run_id, exp.model, view.profile, model.state_dict(), tokenizer_json, name, tags)
    return uri
