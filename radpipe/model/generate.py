"""Report generation from a CoCaModel: greedy, sampled (seeded) or beam search, up to a maximum length."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from radpipe.errors import first_problem
from radpipe.model.coca import CoCaModel


class GenerationConfig(BaseModel):
    """How to write: greedy (num_beams 1, temperature 0), sampling (temperature > 0, seeded) or beam search."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    num_beams: int = Field(1, ge=1, le=16)
    # Tokens of the whole sequence, [BOS] and [EOS] included (as model.decoder.max_length); 0: that maximum.
    max_length: int = Field(0, ge=0)
    temperature: float = Field(0.0, ge=0.0, le=5.0)
    seed: int = 0


GREEDY = GenerationConfig()


def generation_settings(values: dict[str, Any]) -> GenerationConfig:
    """Validated settings; a bad one is a one-line ValueError naming it (not pydantic's report)."""
    try:
        return GenerationConfig.model_validate(values)
    except ValidationError as exc:
        raise ValueError(f"generation setting {first_problem(exc, 'settings', show_input=True)}") from None


@dataclass(frozen=True)
class _Tokens:
    bos: int
    eos: int


@torch.no_grad()
def generate(
    model: CoCaModel, images: torch.Tensor, bos: int, eos: int, cfg: GenerationConfig = GREEDY
) -> list[list[int]]:
    """Token ids written for each image (without [BOS]; ending at [EOS] when written)."""
    model.eval()
    limit = min(cfg.max_length or model.decoder.max_length, model.decoder.max_length) - 1
    memory = model.image_memory(images)
    tokens = _Tokens(bos, eos)
    if cfg.num_beams > 1:
        return [_beam(model, memory[i : i + 1], tokens, cfg.num_beams, limit) for i in range(len(memory))]
    return _greedy_or_sampled(model, memory, tokens, limit, cfg)


def _greedy_or_sampled(
    model: CoCaModel, memory: torch.Tensor, tokens: _Tokens, limit: int, cfg: GenerationConfig
) -> list[list[int]]:
    generator = torch.Generator(device=memory.device).manual_seed(cfg.seed)
    ids = torch.full((len(memory), 1), tokens.bos, dtype=torch.long, device=memory.device)
    done = torch.zeros(len(memory), dtype=torch.bool, device=memory.device)
    for _ in range(limit):
        logits = model.decoder(memory, ids)[:, -1].float()
        if cfg.temperature > 0:
            probs = torch.softmax(logits / cfg.temperature, dim=-1)
            chosen = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        else:
            chosen = logits.argmax(dim=-1)
        chosen = torch.where(done, torch.zeros_like(chosen), chosen)  # finished rows write padding
        ids = torch.cat([ids, chosen[:, None]], dim=1)
        done |= chosen == tokens.eos
        if bool(done.all()):
            break
    return [_until_eos(row[1:].tolist(), tokens.eos) for row in ids]


def _beam(model: CoCaModel, memory: torch.Tensor, tokens: _Tokens, beams: int, limit: int) -> list[int]:
    """Beam search for one image; finished hypotheses are ranked by mean log-probability per token (a length
    penalty of 1, as Hugging Face's default)."""
    ids = torch.full((1, 1), tokens.bos, dtype=torch.long, device=memory.device)
    scores = torch.zeros(1, device=memory.device)
    finished: list[tuple[float, list[int]]] = []
    for _ in range(limit):
        logprobs = torch.log_softmax(model.decoder(memory.expand(len(ids), -1, -1), ids)[:, -1].float(), dim=-1)
        total = (scores[:, None] + logprobs).flatten()
        best = torch.topk(total, min(beams * 2, len(total)))
        vocab = logprobs.shape[1]
        next_ids, next_scores = [], []
        for score, flat in zip(best.values.tolist(), best.indices.tolist(), strict=True):
            row, token = divmod(flat, vocab)
            sequence = [*ids[row].tolist(), token]
            if token == tokens.eos:
                finished.append((score / (len(sequence) - 1), sequence[1:]))
            else:
                next_ids.append(sequence)
                next_scores.append(score)
            if len(next_ids) == beams:
                break
        if not next_ids:
            break
        # An open hypothesis ends with at best its log-probability so far (tokens add <= 0), spread over the
        # longest length allowed: stop when no open one can beat the best finished one any more.
        if finished and max(f[0] for f in finished) >= max(next_scores) / limit:
            break
        ids = torch.tensor(next_ids, dtype=torch.long, device=memory.device)
        scores = torch.tensor(next_scores, device=memory.device)
    if not finished:  # the length ran out: the best open hypothesis
        finished = [(float(scores[0]) / max(1, ids.shape[1] - 1), ids[0, 1:].tolist())]
    return _until_eos(max(finished, key=lambda item: item[0])[1], tokens.eos)


def _until_eos(ids: list[int], eos: int) -> list[int]:
    return ids[: ids.index(eos) + 1] if eos in ids else ids
