"""Test helpers: tiny random models of every family, an offline tokenizer, a made-up study.

These are *random* weights: good for shapes, exactness and logic, never for quality
figures. Real-model checks use the pretrained aliases (``frontier.models``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import torch

if TYPE_CHECKING:
    from frontier.study.summary import StudySummary

VOCAB = 320
HIDDEN = 32
WIDTH = 64
LAYERS = 3

_COMMON = {"vocab_size": VOCAB, "hidden_size": HIDDEN, "num_hidden_layers": LAYERS}
_ATTN = {"num_attention_heads": 4, "num_key_value_heads": 2}

# model_type -> (config class name, kwargs); one per supported family.
TINY_CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "llama": ("LlamaConfig", {**_COMMON, **_ATTN, "intermediate_size": WIDTH}),
    "mistral": ("MistralConfig", {**_COMMON, **_ATTN, "intermediate_size": WIDTH}),
    "qwen2": ("Qwen2Config", {**_COMMON, **_ATTN, "intermediate_size": WIDTH}),
    "qwen3": ("Qwen3Config", {**_COMMON, **_ATTN, "intermediate_size": WIDTH, "head_dim": 8}),
    "gemma": ("GemmaConfig", {**_COMMON, **_ATTN, "intermediate_size": WIDTH, "head_dim": 8}),
    "gemma2": ("Gemma2Config", {**_COMMON, **_ATTN, "intermediate_size": WIDTH, "head_dim": 8}),
    "gemma3_text": (
        "Gemma3TextConfig",
        {**_COMMON, **_ATTN, "intermediate_size": WIDTH, "head_dim": 8},
    ),
    "phi3": ("Phi3Config", {**_COMMON, **_ATTN, "intermediate_size": WIDTH, "pad_token_id": 0}),
    "gpt2": (
        "GPT2Config",
        {"vocab_size": VOCAB, "n_embd": HIDDEN, "n_layer": LAYERS, "n_head": 4, "n_inner": WIDTH},
    ),
    "opt": (
        "OPTConfig",
        {**_COMMON, "num_attention_heads": 4, "ffn_dim": WIDTH, "word_embed_proj_dim": HIDDEN},
    ),
    "gpt_neox": (
        "GPTNeoXConfig",
        {**_COMMON, "num_attention_heads": 4, "intermediate_size": WIDTH},
    ),
    "falcon": (
        "FalconConfig",
        {**_COMMON, "num_attention_heads": 4, "ffn_hidden_size": WIDTH, "bias": True},
    ),
}

# Study settings small enough for a tiny model: a trial takes well under a second.
SMALL_STUDY: dict[str, int] = {
    "calibration_tokens": 512,
    "calibration_seq_len": 64,
    "search_tokens": 256,
    "report_tokens": 512,
    "seq_len": 64,
    "multiple": 4,
}


def small_spec(model: Any, storage: str, **overrides: Any) -> Any:
    """A :class:`~frontier.study.spec.StudySpec` of :data:`SMALL_STUDY` size on ``model``
    (``ppl<1.5``, 12 trials, study ``s`` in ``storage``); ``overrides`` win."""
    from frontier.study.spec import StudySpec

    base: dict[str, Any] = {
        "model": str(model),
        "slos": ("ppl<1.5",),
        "trials": 12,
        "study": "s",
        "storage": storage,
        **SMALL_STUDY,
    }
    return StudySpec.from_dict({**base, **overrides})


# Some of the same settings as `frontier find` flags (what the reliability tests' studies use).
SMALL_STUDY_FLAGS: list[str] = [
    arg
    for key in ("search_tokens", "report_tokens", "seq_len", "calibration_tokens")
    for arg in ("--" + key.replace("_", "-"), str(SMALL_STUDY[key]))
]

_SPECIAL_IDS = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}


_LLAMA3 = {
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "rope_theta": 500000.0,
    "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-5,
}
#: Real shapes from published configs (for time and memory with random weights: built
#: with ``from_config``, their perplexity means nothing). Plain RoPE: speed and memory do
#: not depend on its scaling.
REAL_SHAPES: dict[str, tuple[str, dict[str, Any]]] = {
    "smollm2-135m": (
        "LlamaConfig",
        {
            "hidden_size": 576,
            "intermediate_size": 1536,
            "num_hidden_layers": 30,
            "num_attention_heads": 9,
            "num_key_value_heads": 3,
            "head_dim": 64,
            "vocab_size": 49152,
            "tie_word_embeddings": True,
            "rope_theta": 100000.0,
            "max_position_embeddings": 8192,
            "rms_norm_eps": 1e-5,
        },
    ),
    "llama-3.2-1b": (
        "LlamaConfig",
        {
            **_LLAMA3,
            "hidden_size": 2048,
            "intermediate_size": 8192,
            "num_hidden_layers": 16,
            "head_dim": 64,
            "tie_word_embeddings": True,
        },
    ),
    "gemma-2-2b": (
        "Gemma2Config",
        {
            "hidden_size": 2304,
            "intermediate_size": 9216,
            "num_hidden_layers": 26,
            "num_attention_heads": 8,
            "num_key_value_heads": 4,
            "head_dim": 256,
            "vocab_size": 256000,
            "max_position_embeddings": 8192,
        },
    ),
    "llama-3.1-8b": (
        "LlamaConfig",
        {
            **_LLAMA3,
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_hidden_layers": 32,
            "head_dim": 128,
            "tie_word_embeddings": False,
        },
    ),
}


def real_shape_config(name: str) -> Any:
    """The config of one of :data:`REAL_SHAPES` (no weights)."""
    import transformers

    cls_name, kwargs = REAL_SHAPES[name]
    return getattr(transformers, cls_name)(**kwargs)


def tiny_config(model_type: str) -> Any:
    import transformers

    cls_name, kwargs = TINY_CONFIGS[model_type]
    cls = getattr(transformers, cls_name)
    return cls(**{**_SPECIAL_IDS, **kwargs})


def tiny_model(model_type: str, *, seed: int = 0) -> torch.nn.Module:
    """A randomly initialised causal LM of the family, in fp32 eval mode.

    Weights are re-drawn with a larger scale than the default init (0.02) so that
    activations are not vanishingly small and pruning differences are visible.
    """
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(model_type), dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
            elif "bias" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return model.eval()


@functools.lru_cache(maxsize=1)
def tiny_tokenizer() -> Any:
    """A byte-level BPE tokenizer with a 320-token vocabulary, trained offline on a pangram."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    text = ["the quick brown fox jumps over the lazy dog. " * 4]
    tok.train_from_iterator(text, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


@functools.lru_cache(maxsize=1)
def tiny_sentencepiece_tokenizer() -> Any:
    """A sentencepiece-style tokenizer (Gemma, Llama 2): ``▁`` for spaces, BPE merges
    learnt offline on a pangram, the 256 ``<0xAB>`` byte-fallback pieces, ``<s>`` added
    in front of every text by a post-processor; at most :data:`VOCAB` ids."""
    import json

    from tokenizers import Tokenizer, decoders, models, normalizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    space = normalizers.Replace(" ", "\u2581")
    learner = Tokenizer(models.BPE())
    learner.normalizer = space
    text = ["the quick brown fox jumps over the lazy dog. " * 4]
    learner.train_from_iterator(
        text, trainer=trainers.BpeTrainer(vocab_size=58, show_progress=False)
    )
    learnt = json.loads(learner.to_str())["model"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"<0x{b:02X}>": 3 + b for b in range(256)}}
    for piece in sorted(learnt["vocab"], key=learnt["vocab"].get):
        vocab.setdefault(piece, len(vocab))
    pairs = [m.split(" ") if isinstance(m, str) else m for m in learnt["merges"]]
    merges = [(str(a), str(b)) for a, b in pairs]
    tok = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = space
    tok.decoder = decoders.Sequence(
        [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    assert len(vocab) <= VOCAB
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def tiny_loaded(model_type: str = "llama", *, seed: int = 0) -> Any:
    """A :class:`frontier.models.LoadedModel` around a tiny random model."""
    from frontier.models import LoadedModel

    return LoadedModel(
        model=tiny_model(model_type, seed=seed),
        tokenizer=tiny_tokenizer(),
        source=f"tiny-random-{model_type}",
        name=f"tiny-random-{model_type}",
    )


def synthetic_summary(
    *,
    name: str = "synthetic",
    model: str = "synthetic-12l",
    n_trials: int = 40,
    n_layers: int = 12,
    width: int = 1536,
    loss_law: tuple[float, float, float] = (2.6, 0.6, 2.4),
    tasks: Mapping[str, tuple[float, float]] | None = None,
    slos: tuple[str, ...] = ("ppl<1.6", "tasks>=90%"),
    noise: float = 0.004,
    seed: int = 0,
    final: bool = True,
) -> StudySummary:
    """A deterministic made-up study with known laws, for tests and demos.

    Loss follows ``L0 + a·r + b·r²`` (``loss_law``) and each task ``A0 − c·r`` (``tasks``:
    name -> (A0, c)) in r = MLP fraction removed, plus Gaussian noise of sd ``noise``.
    Tasks are only "measured" on trials within 2x the ppl bound, as a staged search would;
    feasibility, the Pareto set (most removed vs lowest ppl ratio among feasible trials)
    and the chosen point (most removed on it) follow from the SLOs.
    """
    import numpy as np

    from frontier.study.slo import SLO, parse_slos
    from frontier.study.summary import StudySummary, TrialPoint, feasible, slo_violations

    rng = np.random.default_rng(seed)
    laws = (
        dict(tasks)
        if tasks is not None
        else {"arc_easy": (0.70, 0.45), "hellaswag": (0.42, 0.20), "piqa": (0.72, 0.25)}
    )
    l0, a, b = loss_law
    full = (width,) * n_layers
    parsed: tuple[SLO, ...] = parse_slos(slos)
    ppl_cap = min((s.threshold for s in parsed if s.metric == "ppl"), default=math.inf)
    base_tasks = {t: a0 for t, (a0, _) in laws.items()}

    def measure(
        widths: tuple[int, ...], number: int, stage: Literal["search", "final"], shift: float
    ) -> TrialPoint:
        r = 1.0 - sum(widths) / sum(full)
        loss = l0 + shift + a * r + b * r * r + float(rng.normal(0, noise))
        ratio = math.exp(loss - l0 - shift)
        measured = ratio <= 2 * ppl_cap or stage == "final"
        accs = (
            {t: a0 - c * r + float(rng.normal(0, noise)) for t, (a0, c) in laws.items()}
            if measured
            else {}
        )
        return TrialPoint(
            number=number,
            mlp_removed=r,
            params_removed=0.62 * r,  # MLPs are ~62% of a small Llama's parameters
            loss=loss,
            ppl_ratio=ratio,
            tasks=accs,
            feasible=False,
            pareto=False,
            chosen=False,
            widths=widths,
            full=full,
            stage=stage,
        )

    raw = []
    for i in range(n_trials):
        keep = rng.uniform(0.35, 1.0, n_layers) ** rng.uniform(0.3, 1.5)
        widths = tuple(max(8, int(np.rint(k * width / 8)) * 8) for k in keep)
        raw.append(measure(widths, i, "search", 0.0))

    def ok(p: TrialPoint) -> bool:
        return feasible(slo_violations(p, base_tasks, parsed))

    passing = [p for p in raw if ok(p)]
    front = [
        p
        for p in passing
        if not any(
            q.mlp_removed >= p.mlp_removed
            and (q.ppl_ratio or math.inf) <= (p.ppl_ratio or math.inf)
            and (q.mlp_removed, q.ppl_ratio) != (p.mlp_removed, p.ppl_ratio)
            for q in passing
        )
    ]
    chosen = max(front, key=lambda p: p.mlp_removed).number if front else None
    front_ids = {p.number for p in front}
    points = tuple(
        replace(p, feasible=ok(p), pareto=p.number in front_ids, chosen=p.number == chosen)
        for p in raw
    )
    finals: tuple[TrialPoint, ...] = ()
    if final:
        # Held-out text: a slightly higher unpruned loss, the same law.
        finals = tuple(
            replace(
                f := measure(p.widths, p.number, "final", 0.05),
                feasible=ok(f),
                pareto=True,
                chosen=p.chosen,
            )
            for p in points
            if p.pareto
        )
    return StudySummary(
        name=name,
        model=model,
        baseline_loss=l0,
        baseline_ppl=math.exp(l0),
        baseline_tasks=base_tasks,
        slos=slos,
        points=points,
        final=finals,
        protocol={
            "search_text": {
                "source": "hf:wikitext:wikitext-2-raw-v1",
                "role": "search",
                "tokens": 32768,
            },
            "report_text": {
                "source": "hf:wikitext:wikitext-2-raw-v1",
                "role": "test",
                "tokens": 262144,
            },
            "context_length": 1024,
            "tasks": sorted(laws),
            "docs": {"search": 200, "report": 1000},
            "lm_eval_version": "0.4.9",
            "sampler": "TPESampler(seed=0, multivariate=True)",
            "trials": n_trials,
            "wall_time_s": 1234.5,
            "synthetic": True,
        },
    )


# -- a study stored by hand ------------------------------------------------------------------
@dataclass(frozen=True)
class HandTrial:
    """One measured trial of :func:`store_study`: its size and ppl ratio, its Optuna state
    (complete, or pruned: screened) and, if it was re-measured, its held-out ppl ratio."""

    params_kept: float
    ppl_ratio: float
    state: str = "complete"
    final_ppl_ratio: float | None = None


def store_study(
    url: str,
    trials: Sequence[HandTrial],
    *,
    name: str = "hand",
    slos: tuple[str, ...] = ("ppl<1.5", "params<=60%"),
    full: tuple[int, ...] = (64, 64, 64),
) -> Any:
    """An Optuna study as ``frontier find`` leaves it, from hand-picked figures: no model.

    Each trial gets a plan, a search record, timing and its SLO constraint values (computed
    from its figures with the SLO language); a trial with ``final_ppl_ratio`` also gets a
    final record. Returns the ``optuna.Study``.
    """
    import optuna

    from frontier.pruning.plan import Plan
    from frontier.study import schema
    from frontier.study.slo import TrialMetrics, parse_slos
    from frontier.study.spec import StudySpec
    from frontier.study.summary import feasible

    parsed = parse_slos(slos)

    def record(kept: float, ratio: float) -> dict[str, Any]:
        return {
            "params_kept": kept,
            "mlp_kept": kept,
            "total_params": 1000.0 * kept,
            "ppl_ratio": ratio,
            "ppl": 10.0 * ratio,
            "nll": math.log(10.0 * ratio),
        }

    def violations(kept: float, ratio: float) -> dict[str, float | None]:
        metrics = TrialMetrics(ppl_ratio=ratio, params_kept=kept, mlp_kept=kept)
        return {str(s): s.violation(metrics) for s in parsed}

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=url, directions=["minimize"] * 2)
    spec = StudySpec(model="hand-model", slos=slos, study=name, storage=url)
    study.set_user_attr(schema.ATTR_SPEC, spec.to_dict())
    study.set_user_attr(
        schema.ATTR_BASELINE,
        {"search_ppl": {"value": 1.0, "raw": 10.0, "details": {"baseline_nll": math.log(10)}}},
    )
    study.set_user_attr(schema.ATTR_PROTOCOL, {"text": "hand-made figures"})
    for number, t in enumerate(trials):
        widths = tuple(max(8, round(f * t.params_kept / 8) * 8) for f in full)
        attrs: dict[str, Any] = {
            schema.ATTR_PLAN: Plan(widths, full).to_dict(),
            schema.ATTR_SEARCH: record(t.params_kept, t.ppl_ratio),
            schema.ATTR_TIMING: {"total": 1.0, "forward": 0.5, "surgery": 0.1},
        }
        if t.state == "pruned":
            attrs[schema.ATTR_SCREENED] = "screened by hand"
        study.add_trial(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState[t.state.upper()],
                values=[t.params_kept, t.ppl_ratio] if t.state == "complete" else None,
                user_attrs=attrs,
                constraints={
                    k: v for k, v in violations(t.params_kept, t.ppl_ratio).items() if v is not None
                },
            )
        )
        if t.final_ppl_ratio is not None:
            vs = violations(t.params_kept, t.final_ppl_ratio)
            final = {
                **record(t.params_kept, t.final_ppl_ratio),
                "violations": vs,
                "feasible": feasible(vs),
            }
            study.set_user_attr(schema.final_key(number), final)
    return study
