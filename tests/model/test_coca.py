"""The report decoder (radpipe/model/coca.py), its targets (report_text.py) and generation (generate.py).

No Ray or data: a tiny CoCa model overfits four images with four different reports, then must write each
image's own report back, sections and all.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from radpipe.deid.text import scrub_text
from radpipe.model.coca import CoCaModel, build_model, objective_loss
from radpipe.model.config import ExperimentConfig
from radpipe.model.generate import GenerationConfig, generate
from radpipe.model.report_text import ReportTokenizer, Sections, reference_sections, target_text, train_report_tokenizer
from radpipe.model.report_writer import ReportWriter, scrubbed
from radpipe.model.text import TextTokenizer, train_tokenizer
from radpipe.train.steps import build_optimizer, build_scheduler, train_step
from tests.train.tiny import tiny_coca_config

EMBEDDINGS = {"image_embedding", "text_embedding"}  # the batch's embeddings travel with the loss parts
REPORTS = [
    ("The heart is enlarged.", "Cardiomegaly.", "The cardiac silhouette is wide, so the heart is enlarged."),
    ("Small right pleural effusion.", "Right pleural effusion.", "The right angle is blunted."),
    ("No pneumothorax. Heart size is normal.", "No acute cardiopulmonary process.", None),
    ("A 2 cm nodule in the left lung.", "Left lung nodule.", "A rounded density stands out."),
]


def _experiment(objective: str = "coca", rationale: str = "include") -> ExperimentConfig:
    return ExperimentConfig.model_validate(tiny_coca_config(objective, rationale, steps=150, warmup_steps=5, lr=0.003))


def _trained(objective: str = "coca", rationale: str = "include") -> tuple[CoCaModel, ReportTokenizer, torch.Tensor]:
    """A tiny model overfit on four distinct images, each paired with one of REPORTS."""
    exp = _experiment(objective, rationale)
    sections = [reference_sections(f, i, None, r, rationale == "include") for f, i, r in REPORTS]
    targets = [target_text(s) for s in sections]
    report_tokenizer = ReportTokenizer(train_report_tokenizer(targets, exp.model.decoder, 1), 48)
    texts = [f"{f} {i}" for f, i, _ in REPORTS]
    tokenizer = TextTokenizer(exp.model.text, train_tokenizer(texts, 400).to_str())
    torch.manual_seed(0)
    size = exp.model.image.input_size
    images = torch.zeros(4, 1, size, size)
    for k in range(4):  # one bright quadrant per image: four images nothing but their content tells apart
        images[k, 0, (k // 2) * size // 2 : (k // 2 + 1) * size // 2, (k % 2) * size // 2 : (k % 2 + 1) * size // 2] = 1
    ids, mask = tokenizer(texts)
    batch = {
        "image": images,
        "ids": torch.from_numpy(ids).long(),
        "mask": torch.from_numpy(mask).long(),
        "target": torch.from_numpy(report_tokenizer(targets)).long(),
    }
    model = build_model(exp.model, tokenizer.vocab_size, report_tokenizer.vocab_size)
    assert isinstance(model, CoCaModel)
    optimizer = build_optimizer(model, exp.train)
    scheduler = build_scheduler(optimizer, exp.train)
    losses = [train_step(model, batch, optimizer, scheduler, "fp32") for _ in range(exp.train.steps)]
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < 0.1 * losses[0], losses[::10]
    return model.eval(), report_tokenizer, images


@pytest.fixture(scope="module")
def with_reasoning() -> tuple[CoCaModel, ReportTokenizer, torch.Tensor]:
    return _trained()


def _normalised(tokenizer: ReportTokenizer, sections: Sections) -> Sections:
    return Sections(*(tokenizer.normalise(getattr(sections, name)) for name in ("findings", "reasoning", "impression")))


def test_a_trained_decoder_writes_each_images_own_report_with_its_reasoning(with_reasoning) -> None:
    model, tokenizer, images = with_reasoning
    written = [tokenizer.sections(ids) for ids in generate(model, images, tokenizer.bos, tokenizer.eos)]
    for (findings, impression, rationale), got in zip(REPORTS, written, strict=True):
        want = _normalised(tokenizer, reference_sections(findings, impression, None, rationale, True))
        assert got == want
    assert written[0].reasoning.startswith("The cardiac silhouette is wide")
    assert written[2].reasoning == ""  # its report had no reasoning trace
    assert written[0].report().splitlines()[1].startswith("REASONING: ")


def test_beam_search_and_seeded_sampling(with_reasoning) -> None:
    model, tokenizer, images = with_reasoning
    greedy = generate(model, images, tokenizer.bos, tokenizer.eos)
    beams = generate(model, images, tokenizer.bos, tokenizer.eos, GenerationConfig(num_beams=3))
    assert beams == greedy  # an overfit model: the likeliest report is the greedy one
    hot = GenerationConfig(temperature=3.0, seed=7)
    first = generate(model, images, tokenizer.bos, tokenizer.eos, hot)
    assert first == generate(model, images, tokenizer.bos, tokenizer.eos, hot)
    assert first != generate(model, images, tokenizer.bos, tokenizer.eos, hot.model_copy(update={"seed": 8}))
    short = generate(model, images, tokenizer.bos, tokenizer.eos, GenerationConfig(max_length=6))
    assert all(len(ids) <= 5 for ids in short)


def test_a_model_trained_without_reasoning_writes_none() -> None:
    model, tokenizer, images = _trained(rationale="exclude")
    written = [tokenizer.sections(ids) for ids in generate(model, images, tokenizer.bos, tokenizer.eos)]
    assert all(s.reasoning == "" and s.findings and s.impression for s in written)
    assert "REASONING" not in "\n".join(s.report() for s in written)


def test_written_reports_pass_the_scrubber(with_reasoning) -> None:
    model, tokenizer, images = with_reasoning
    writer = ReportWriter(model, tokenizer)
    written = writer.write([image[0].numpy() for image in images])
    # clean reports come out as written (the writer's chunks and the scrubber change nothing)...
    assert written == [tokenizer.sections(ids) for ids in generate(model, images, tokenizer.bos, tokenizer.eos)]
    # ...and identifiers a decoder could spell out are removed from every section
    out = scrubbed(Sections("Compared with 03/04/2021, MRN 12345678.", "Seen by Dr. Smith.", "Call 555-123-4567."))
    for leaked in ("2021", "12345678", "Smith", "4567"):
        assert leaked not in out.report()
    assert out.findings.startswith("Compared with [DATE]")


def test_the_coca_loss_is_the_weighted_sum_and_captioning_is_the_decoder_alone() -> None:
    exp = _experiment()
    torch.manual_seed(0)
    model = build_model(exp.model, 400, 400)
    n, size = 4, exp.model.image.input_size
    batch = {
        "image": torch.rand(n, 1, size, size),
        "ids": torch.randint(1, 400, (n, 32)),
        "mask": torch.ones(n, 32, dtype=torch.long),
        "target": torch.randint(1, 400, (n, 48)),
    }
    loss, parts = objective_loss(model, exp.model, batch)
    assert parts["image_embedding"].shape == parts["text_embedding"].shape == (len(batch["image"]), exp.model.embed_dim)
    loss = loss.detach()
    expected = 1.0 * float(parts["train_contrastive_loss"]) + 2.0 * float(parts["train_caption_loss"])
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    captioning = exp.model.model_copy(update={"objective": "captioning"})
    loss, parts = objective_loss(model, captioning, batch)
    loss = loss.detach()
    assert set(parts) - EMBEDDINGS == {"train_caption_loss"} and float(loss) == pytest.approx(
        float(parts["train_caption_loss"])
    )
    batch["target"][:, 20:] = 0  # padding is not a token to predict
    padded = objective_loss(model, captioning, batch)[0].detach()
    logits = model(batch["image"], batch["ids"], batch["mask"], batch["target"])[3][:, :19]
    manual = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch["target"][:, 1:20].flatten())
    assert float(padded) == pytest.approx(float(manual.detach()), rel=1e-5)


def test_trailing_padding_is_dropped_with_the_same_loss_and_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    exp = _experiment()
    torch.manual_seed(0)
    model = build_model(exp.model, 400, 400)
    n, size = 4, exp.model.image.input_size
    lengths, target_lengths = [7, 19, 12, 3], [30, 11, 25, 40]  # of 32 and 48 positions
    mask = torch.tensor([[1] * k + [0] * (32 - k) for k in lengths])
    target = torch.randint(1, 400, (n, 48)) * torch.tensor([[1] * k + [0] * (48 - k) for k in target_lengths])
    swap_mask = torch.tensor([[1] * k + [0] * (32 - k) for k in (5, 21, 9, 2)])  # examination-swapped texts
    batch = {
        "image": torch.rand(n, 1, size, size),
        "ids": torch.randint(1, 400, (n, 32)) * mask,
        "mask": mask,
        "swap_ids": torch.randint(1, 400, (n, 32)) * swap_mask,
        "swap_mask": swap_mask,
        "target": target,
    }
    seen: dict[str, int] = {}
    model.text_encoder.register_forward_pre_hook(lambda _, args: seen.update(text=args[0].shape[1]))
    model.decoder.register_forward_pre_hook(lambda _, args: seen.update(decoder=args[1].shape[1]))

    def loss_and_gradients() -> tuple[float, dict[str, torch.Tensor]]:
        model.zero_grad()
        loss = objective_loss(model, exp.model, batch)[0]
        loss.backward()
        return float(loss.detach()), {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}

    trimmed, trimmed_grads = loss_and_gradients()
    assert seen == {"text": 21, "decoder": 39}  # the longest text (a swapped one); the longest target less one
    monkeypatch.setattr("radpipe.model.coca.trailing_padding_dropped", lambda *columns, real: columns)
    padded, padded_grads = loss_and_gradients()
    assert seen == {"text": 32, "decoder": 47}
    assert trimmed == pytest.approx(padded, rel=1e-5)
    assert trimmed_grads.keys() == padded_grads.keys()
    for name, grad in padded_grads.items():
        torch.testing.assert_close(trimmed_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_targets_put_reasoning_between_findings_and_impression() -> None:
    sections = reference_sections("Heart enlarged.", "Cardiomegaly.", None, "Wide  silhouette.", True)
    assert target_text(sections) == "[FINDINGS] Heart enlarged. [REASONING] Wide silhouette. [IMPRESSION] Cardiomegaly."
    assert "[REASONING]" not in target_text(reference_sections("a", "b", None, "why", False))
    from_text = reference_sections(None, None, "FINDINGS: Clear lungs.\nIMPRESSION: Normal.", None, True)
    assert (from_text.findings, from_text.impression) == ("Clear lungs.", "Normal.")
    cut = ReportTokenizer(train_report_tokenizer(["[FINDINGS] a"], _experiment().model.decoder, 1), 4)
    ids = cut(["[FINDINGS] a b c d", "[FINDINGS] a"])
    assert ids.shape == (2, 4) and np.all(ids[0] != 0)  # cut at max_length: no [EOS]
    assert ids[1].tolist() == [cut.bos, cut._id("[FINDINGS]"), cut._id("▁a"), cut.eos]


LEAKY = [
    "Called to [NAME] on 04/2015 and June 05, 2016 at 555-123-4567.",
    "Dr. Smith agreed; contact john.doe@example.com or +44 20 7946 0958.",
    "Seen at 123 Main Street, Boston, MA 02115 and St Mary's Hospital; MR# 12345678.",
    "Discussed with Helen Quinn, UID 1.2.840.113619.2.55.3, prior 1.2.2015.",
]


def test_identifiers_a_decoder_spells_out_reach_the_scrubber_as_written() -> None:
    """Written text decodes to exactly the characters chosen (case and spacing kept): a lower-cased, spaced-out
    decoding ("john . doe @ example . com", "helen quinn") slipped past the scrubber's rules."""
    targets = [f"[FINDINGS] {text} [IMPRESSION] x" for text in LEAKY]
    tokenizer = ReportTokenizer(train_report_tokenizer(targets, _experiment().model.decoder, 1), 160)
    for text, ids in zip(LEAKY, tokenizer(targets), strict=True):
        written = tokenizer.sections(ids[1:].tolist())
        assert written.findings == text  # exactly what was written, character for character
        out = scrubbed(written).findings
        assert out == scrub_text(text)  # the scrubber sees what it sees in ingested reports
        for leaked in ("2015", "2016", "4567", "Smith", "john.doe", "0958", "Main Street", "Mary", "12345678", "Quinn"):
            assert leaked not in out, out
    assert tokenizer.normalise("called  2.5 cm, [NAME].") == "called 2.5 cm, [NAME]."


def test_a_word_counts_once_per_report_not_per_image() -> None:
    """A study's three images share one report: a name the scrubber missed in it must not reach
    min_report_frequency 3 and become a word of the shipped vocabulary."""
    report = "[FINDINGS] Quinnford called. [IMPRESSION] Normal."
    others = [f"[FINDINGS] called {i}. [IMPRESSION] Normal." for i in range(3)]
    vocab = ReportTokenizer(train_report_tokenizer([report] * 3 + others, _experiment().model.decoder, 3), 48)
    assert vocab._tok.token_to_id("▁Quinnford") is None
    assert vocab._tok.token_to_id("▁called") is not None  # four reports use it


def test_a_3d_encoder_feeds_the_decoder_too() -> None:
    """A CT/MR model with objective coca: the decoder attends to a 3D ResNet's tokens (one per voxel block)."""
    from pathlib import Path

    from radpipe.model.config import load_config

    base = load_config(Path(__file__).parents[2] / "configs" / "smoke-3d.yaml").model
    cfg = base.model_copy(update={"objective": "coca", "decoder": _experiment().model.decoder})
    torch.manual_seed(0)
    model = build_model(cfg, 200, 120)
    assert isinstance(model, CoCaModel)
    volumes = torch.rand(2, 3, 16, 32, 32)
    batch = {
        "image": volumes,
        "ids": torch.randint(1, 200, (2, 16)),
        "mask": torch.ones(2, 16, dtype=torch.long),
        "target": torch.randint(3, 120, (2, 48)),
    }
    loss, parts = objective_loss(model, cfg, batch)
    loss.backward()
    assert math.isfinite(float(loss.detach())) and set(parts) - EMBEDDINGS == {
        "train_caption_loss",
        "train_contrastive_loss",
    }
    tokens = model.image_encoder.tokens(volumes)  # the last stage's voxel blocks, several per volume
    assert tokens.shape[0] == 2 and tokens.shape[1] > 1 and tokens.shape[2] == model.image_encoder.out_features
    assert model.image_memory(volumes).shape == (2, tokens.shape[1], cfg.decoder.width)
    written = generate(model, volumes, bos=1, eos=2, cfg=GenerationConfig(max_length=8))
    assert len(written) == 2 and all(len(ids) <= 7 for ids in written)
