"""The engine on a CUDA device gives what it gives on the CPU (skipped without a GPU).

CI has no GPU, so these run only where one is present (``make test-gpu``); they check
that calibration, plan application, perplexity and export keep every tensor on the
model's device and agree with the CPU within float tolerance.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from frontier.arch import adapter_for
from frontier.export import export_model, load_pruned
from frontier.importance import get_criterion
from frontier.importance._stats import calibration_pass, collect_stats
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner, Selection
from frontier.testing import TINY_CONFIGS, tiny_loaded, tiny_model
from objectives._lm import mean_nll

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

FAMILIES = sorted(TINY_CONFIGS)
IDS = torch.randint(3, 300, (4, 24), generator=torch.Generator().manual_seed(0))


def _on_cuda(model: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(model).to("cuda")


def _scores(model: torch.nn.Module) -> list[torch.Tensor]:
    adapter = adapter_for(model.config)
    stats = collect_stats(model, adapter, IDS, batch_size=2)
    return get_criterion("activation").fn(adapter.handles(model), stats)


def _logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        device = next(model.parameters()).device
        return model(input_ids=IDS.to(device)).logits.float().cpu()


@pytest.fixture(autouse=True)
def _exact_fp32() -> None:
    # TF32 matmuls would make CUDA and CPU differ by 1e-3; compare true fp32.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


@pytest.mark.parametrize("model_type", FAMILIES)
def test_calibration_and_pruning_on_cuda_match_the_cpu(model_type: str) -> None:
    cpu = tiny_model(model_type)
    gpu = _on_cuda(cpu)
    s_cpu, s_gpu = _scores(cpu), _scores(gpu)
    for a, b in zip(s_cpu, s_gpu, strict=True):
        assert b.device.type == "cpu"  # scores stay on the CPU (and in the disk cache)
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
    plan = Plan.from_ratios([0.5, 0.25, 0.875], Pruner(cpu, s_cpu).full)
    before = _logits(gpu)
    p_cpu, p_gpu = Pruner(cpu, s_cpu), Pruner(gpu, s_gpu)
    with p_cpu.pruned(plan), p_gpu.pruned(plan):
        assert all(p.device.type == "cuda" for p in gpu.parameters())
        pruned_cpu, pruned_gpu = _logits(cpu), _logits(gpu)
    assert torch.allclose(pruned_gpu, pruned_cpu, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(pruned_gpu, before, atol=1e-3)
    assert torch.equal(_logits(gpu), before)  # restore is exact on the device too


@pytest.mark.parametrize("model_type", ["llama", "gpt2"])  # without and with a down bias
def test_greedy_obs_on_cuda_orders_neurons_as_on_the_cpu(model_type: str) -> None:
    # the same (CPU) statistics for both: the downdates then run on each model's device
    cpu = tiny_model(model_type)
    gpu = _on_cuda(cpu)
    adapter = adapter_for(cpu.config)
    stats, _ = calibration_pass(cpu, adapter, IDS, batch_size=2, grams=True)
    crit = get_criterion("obs-greedy")
    ranks = [crit.fn(adapter.handles(model), stats) for model in (cpu, gpu)]
    for a, b in zip(*ranks, strict=True):
        assert b.device.type == "cpu" and b.dtype == torch.float64
        assert torch.equal(a, b)  # float64 on both: the same removal order


def test_bias_compensation_on_cuda_matches_the_cpu() -> None:
    cpu = tiny_model("llama")
    gpu = _on_cuda(cpu)
    adapter = adapter_for(cpu.config)
    stats = collect_stats(cpu, adapter, IDS, batch_size=2)
    scores = get_criterion("fluctuation").fn(adapter.handles(cpu), stats)
    plan = Plan.from_ratios([0.5, 0.25, 0.875], Pruner(cpu, scores).full)
    p_cpu = Pruner(cpu, scores, mean_activation=stats.mean)
    p_gpu = Pruner(gpu, scores, mean_activation=stats.mean)
    with p_cpu.pruned(plan, compensate=True), p_gpu.pruned(plan, compensate=True):
        assert torch.allclose(_logits(gpu), _logits(cpu), atol=1e-4, rtol=1e-4)


def test_perplexity_on_cuda_matches_the_cpu() -> None:
    cpu = tiny_model("llama")
    ids = torch.randint(3, 300, (3, 64), generator=torch.Generator().manual_seed(1))
    a, b = mean_nll(cpu, ids), mean_nll(_on_cuda(cpu), ids)
    assert abs(a - b) <= 1e-5 * abs(a)


@pytest.mark.parametrize("fmt", ["padded", "heterogeneous"])
def test_export_from_a_cuda_model_reloads_with_the_same_logits(fmt: str, tmp_path: Path) -> None:
    lm = tiny_loaded("llama")
    lm.model.to("cuda")
    pruner = Pruner(lm.model, _scores(lm.model))
    selection = pruner.select(Plan.from_ratios([0.5, 0.75, 0.25], pruner.full))
    expected = _logits(_zeroed_copy(lm.model, pruner, selection))
    result = export_model(lm, selection, tmp_path / fmt, format=fmt)
    assert result.max_abs_logit_diff < 1e-4
    model, _tok = load_pruned(tmp_path / fmt)
    assert torch.allclose(_logits(model), expected, atol=1e-4, rtol=1e-4)


def _zeroed_copy(model: torch.nn.Module, pruner: Pruner, selection: Selection) -> torch.nn.Module:
    """The model as the pruned export must compute it: pruned in place, then copied."""
    with pruner.pruned(selection):
        return copy.deepcopy(model)


# -- studies on the GPU (issue #13) ------------------------------------------------------
def test_a_ten_trial_study_runs_on_the_gpu_and_agrees_with_the_cpu(
    tiny_folder: Path, tmp_path: Path
) -> None:
    from frontier.search.find import find
    from frontier.search.storage import n_finished
    from frontier.study.schema import ATTR_PROTOCOL, ATTR_SEARCH
    from frontier.testing import small_spec

    runs = {}
    for device in ("cuda", "cpu"):
        spec = small_spec(
            tiny_folder,
            f"sqlite:///{tmp_path}/{device}.db",
            trials=10,
            device=device,
            dtype="fp32",
        )
        runs[device] = find(spec).study
    gpu, cpu = runs["cuda"], runs["cpu"]
    assert n_finished(gpu) == 10
    assert gpu.user_attrs[ATTR_PROTOCOL]["device"].startswith("cuda:0 (")
    # the warm start is deterministic: the same plans, the same figures within fp32 noise
    for a, b in zip(gpu.trials[:5], cpu.trials[:5], strict=True):
        assert a.user_attrs["frontier:plan"] == b.user_attrs["frontier:plan"]
        ga, gb = a.user_attrs[ATTR_SEARCH], b.user_attrs[ATTR_SEARCH]
        assert abs(ga["ppl_ratio"] - gb["ppl_ratio"]) <= 1e-4 * gb["ppl_ratio"]


def test_a_bf16_study_runs_on_the_gpu(tiny_folder: Path, tmp_path: Path) -> None:
    from frontier.search.find import find
    from frontier.testing import small_spec

    spec = small_spec(tiny_folder, f"sqlite:///{tmp_path}/s.db", trials=4, device="cuda")
    study = find(spec).study  # dtype auto: bf16 on the GPU
    assert study.user_attrs["frontier:spec"]["dtype"] in ("bf16", "fp16")
    assert all(t.values is not None for t in study.trials if t.state.name == "COMPLETE")


def test_task_results_on_the_gpu_equal_the_cpus_in_fp32(tmp_path: Path) -> None:
    from frontier.data.mirror import build_mirror
    from objectives import create

    mirror = build_mirror(tmp_path / "lmeval", tasks=["arc_easy"])
    lm = tiny_loaded("llama")
    figures = {}
    for device in ("cpu", "cuda"):
        lm.model.to(device)
        obj = create("tasks", tasks=["arc_easy"], n_docs=12, mirror=str(mirror), batch_size=4)
        obj.prepare(lm)
        figures[device] = obj.baseline_docs  # type: ignore[attr-defined]
    assert figures["cuda"] == figures["cpu"]


def test_refit_factors_streamed_from_the_host_equal_resident_ones() -> None:
    from frontier.pruning.placement import Refitter

    lm = tiny_loaded("llama")
    lm.model.to("cuda")
    adapter = adapter_for(lm.model.config)
    stats, grams = calibration_pass(lm.model, adapter, IDS, batch_size=2)
    handles = adapter.handles(lm.model)
    orders = [torch.argsort(stats.var[h.index], descending=True) for h in handles]
    resident = Refitter.build(handles, grams, orders, alphas=[1e-2] * len(handles))
    streamed = Refitter.build(handles, grams, orders, alphas=[1e-2] * len(handles), budget=0)
    assert grams is not None
    assert resident.placement()["host_layers"] == 0
    assert streamed.placement()["resident_layers"] == 0
    assert streamed.layers[0]._l.is_pinned()
    kept = [o[:20].sort().values for o in orders]
    downs = [h.down_module for h in handles]
    for a, b in zip(
        resident.weights(kept, downs, adapter.layout),
        streamed.weights(kept, downs, adapter.layout),
        strict=True,
    ):
        assert a is not None and b is not None and a.weight.device.type == "cuda"
        assert torch.allclose(a.weight, b.weight, atol=1e-6, rtol=1e-5)


def test_grams_summed_on_the_gpu_in_groups_equal_the_cpus() -> None:
    from frontier.importance._gram import gram_bytes

    cpu = tiny_model("llama")
    gpu = _on_cuda(cpu)
    adapter = adapter_for(cpu.config)
    _s, want = calibration_pass(cpu, adapter, IDS, batch_size=2)
    budget = gram_bytes(max(h.width for h in adapter.handles(gpu)))
    _s, got = calibration_pass(gpu, adapter, IDS, batch_size=2, gram_budget=budget)
    assert want is not None and got is not None
    for a, b in zip(want.fit + want.held, got.fit + got.held, strict=True):
        assert b.device.type == "cpu"
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)


def test_an_oversized_model_is_refused_in_one_line() -> None:
    from frontier.errors import FrontierError
    from frontier.models._load import check_fits
    from frontier.testing import real_shape_config

    free, _total = torch.cuda.mem_get_info()
    config = real_shape_config("llama-3.1-8b")
    if free > 40 * 2**30:
        pytest.skip("this GPU fits an 8B model in fp32")
    with pytest.raises(FrontierError, match="GiB of GPU memory in fp32"):
        check_fits("llama-3.1-8b", config, "fp32", "cuda:0")


def test_a_trial_parked_in_pinned_host_memory_gives_the_same_logits() -> None:
    """The unpruned projections parked in pinned host memory (a GPU with no room for
    them beside the pruned copies) come back bit for bit, and every trial reuses the
    same pinned buffers."""
    model = _on_cuda(tiny_model("llama"))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    pruner = Pruner(model, [s.cuda() for s in _scores(model.cpu())])
    model.cuda()
    plan = Plan.uniform(0.5, pruner.full)
    ids = IDS.cuda()
    with torch.no_grad(), pruner.pruned(plan):
        expected = model(input_ids=ids).logits
    for _ in range(2):
        with torch.no_grad():
            pruner.apply(plan, room=-(10**12))
            assert len(pruner.parking) > 0
            buffers = list(pruner.parking._buffers.values())
            assert all(b.is_pinned() for b in buffers)
            assert torch.equal(model(input_ids=ids).logits, expected)
            pruner.restore()
    after = model.state_dict()
    assert all(torch.equal(state[k], after[k]) and after[k].is_cuda for k in state)
