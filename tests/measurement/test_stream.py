"""The streaming engine: chunking, numerics, device staging, non-finite weights, resuming."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from measurement import open_checkpoint, weight_statistics
from measurement._checkpoint_reader import CheckpointReader
from measurement._pairing import pair_checkpoints
from measurement._stream import CpuStager, Segment, StreamJob, chunk_ranges, run_jobs, sum_squares
from measurement._stream_device import PipelinedStager, make_stager, resolve_device
from measurement.exceptions import DeviceUnavailableError, NonFiniteWeightError
from pacbound.exceptions import InvalidParameterError

COLUMNS = ["sq_delta", "sq_base", "sq_finetuned", "max_abs_delta"]


@pytest.mark.parametrize(
    ("numel", "row", "budget"), [(10, 1, 3), (12, 4, 9), (12, 4, 2), (0, 1, 5), (7, 7, 100)]
)
def test_chunk_ranges_cover_whole_rows(numel, row, budget):
    ranges = list(chunk_ranges(numel, row, budget))
    flat = [i for a, b in ranges for i in range(a, b)]
    assert flat == list(range(numel))
    assert all(a % row == 0 and (b - a) % row == 0 for a, b in ranges if b < numel)
    assert all(b - a <= max(budget, row) for a, b in ranges)


def test_sum_squares_is_float64_accurate():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3 * 4096 + 17, generator=gen) * 1e-3
    ref = float((x.double() ** 2).sum())
    got = sum_squares(x)
    assert got.dtype == torch.float64
    assert float(got) == pytest.approx(ref, rel=1e-7)
    assert float(sum_squares(x.double())) == pytest.approx(ref, rel=1e-14)


def _jobs(sharded_base, full_finetune):
    base, ft = open_checkpoint(sharded_base), open_checkpoint(full_finetune)
    rb, rf = CheckpointReader(base), CheckpointReader(ft)
    plan = pair_checkpoints(base, ft)
    jobs = [
        StreamJob(p.name, p.kind, p.numel, Segment(rf, p.finetuned, p.start, p.stop),
                  Segment(rb, p.base, p.start, p.stop))
        for p in plan.pairs
    ]  # fmt: skip
    return jobs, (rb, rf)


def test_tiny_chunk_budget_gives_the_same_statistics(sharded_base, full_finetune):
    default = weight_statistics(sharded_base, full_finetune, device="cpu")
    tiny = weight_statistics(sharded_base, full_finetune, device="cpu", chunk_bytes=1000)
    np.testing.assert_allclose(tiny.table[COLUMNS], default.table[COLUMNS], rtol=1e-6, atol=0)
    assert tiny.table["n_zero_delta"].equals(default.table["n_zero_delta"])
    assert tiny.meta["bytes_read"] == default.meta["bytes_read"]
    assert default.meta["bytes_read"] == (
        open_checkpoint(sharded_base).total_bytes + open_checkpoint(full_finetune).total_bytes
    )


def test_thread_count_is_set_for_the_pass_and_restored(sharded_base, full_finetune):
    before = torch.get_num_threads()
    one = weight_statistics(sharded_base, full_finetune, device="cpu", threads=1)
    assert torch.get_num_threads() == before and one.meta["threads"] == 1
    default = weight_statistics(sharded_base, full_finetune, device="cpu")
    np.testing.assert_allclose(one.table[COLUMNS], default.table[COLUMNS], rtol=1e-6)
    with pytest.raises(InvalidParameterError, match="`threads` must be an integer >= 1; got 0"):
        weight_statistics(sharded_base, full_finetune, threads=0)


def test_pipelined_stager_matches_direct_buffers_on_cpu(sharded_base, full_finetune):
    jobs, readers = _jobs(sharded_base, full_finetune)
    try:
        direct = list(run_jobs(jobs, stager=CpuStager(700), chunk_elems=700))
        staged = list(
            run_jobs(jobs, stager=PipelinedStager(torch.device("cpu"), 700), chunk_elems=700)
        )
    finally:
        for r in readers:
            r.close()
    for a, b in zip(direct, staged, strict=True):
        assert (a.name, a.numel, a.n_zero_delta) == (b.name, b.numel, b.n_zero_delta)
        assert a.sq_delta == pytest.approx(b.sq_delta, rel=1e-12)
        assert a.max_abs_delta == b.max_abs_delta


def test_device_choice():
    cpu = torch.device("cpu")
    assert resolve_device("cpu") == cpu
    assert resolve_device(" CPU ") == cpu
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None) == resolve_device("auto")
    assert isinstance(make_stager(cpu, 64), CpuStager)
    assert isinstance(make_stager(cpu, 64, pipelined=True), PipelinedStager)
    with pytest.raises(
        InvalidParameterError, match="`device` must be one of 'auto', 'cpu', 'cuda'; got 'tpu'"
    ):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceUnavailableError, match="sees no CUDA device"):
            resolve_device("cuda")


def _poisoned(tmp_path, full_finetune, name, value):
    sd = load_file(full_finetune / "model.safetensors")
    sd[name] = sd[name].clone()
    sd[name].view(-1)[5] = value
    save_file(sd, tmp_path / "model.safetensors", metadata={"format": "pt"})
    (tmp_path / "config.json").write_text((full_finetune / "config.json").read_text())
    return tmp_path


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_name_the_tensor(tmp_path, sharded_base, full_finetune, value):
    bad = _poisoned(tmp_path, full_finetune, "model.layers.1.mlp.down_proj.weight", value)
    with pytest.raises(NonFiniteWeightError) as info:
        weight_statistics(sharded_base, bad, device="cpu", chunk_bytes=4096)
    message = str(info.value)
    assert "`model.layers.1.mlp.down_proj.weight`" in message and str(bad) in message
    assert "(fine-tuned)" in message and "first at flat index 5" in message


def test_float32_overflow_is_recomputed_in_float64(tmp_path):
    base = {"w": torch.full((10,), 1e20), "v": torch.ones(3)}
    ft = {"w": torch.full((10,), 3e20), "v": torch.ones(3)}
    save_file(base, tmp_path / "base.safetensors")
    save_file(ft, tmp_path / "ft.safetensors")
    stats = weight_statistics(
        tmp_path / "base.safetensors", tmp_path / "ft.safetensors", device="cpu"
    )
    row = stats.table.set_index("name").loc["w"]
    b, f = base["w"].double(), ft["w"].double()  # the stored float32 values, exactly
    assert not np.isfinite(float((ft["w"] - base["w"]).square().sum()))  # fp32 overflows
    assert row["sq_delta"] == pytest.approx(float((f - b).square().sum()), rel=1e-14)
    assert row["sq_base"] == pytest.approx(float(b.square().sum()), rel=1e-14)
    assert row["max_abs_delta"] == float((f - b).abs().max())


def test_killed_pass_resumes_from_the_journal(tmp_path, monkeypatch, sharded_base, full_finetune):
    import measurement._weight_statistics as ws

    journal = tmp_path / "journal.jsonl"
    fresh = weight_statistics(sharded_base, full_finetune, device="cpu")

    @contextlib.contextmanager
    def killing_progress(description, total, enabled=True):
        calls = []

        def advance(nbytes):
            calls.append(nbytes)
            if len(calls) == 9:
                raise KeyboardInterrupt

        yield advance

    monkeypatch.setattr(ws, "_JOURNAL_FLUSH_S", -1.0)
    monkeypatch.setattr(ws, "byte_progress", killing_progress)
    with pytest.raises(KeyboardInterrupt):
        weight_statistics(sharded_base, full_finetune, device="cpu", journal=journal)
    lines = journal.read_text().splitlines()
    assert "fingerprint" in json.loads(lines[0]) and len(lines) == 9  # 8 tensors done
    monkeypatch.undo()
    resumed = weight_statistics(sharded_base, full_finetune, device="cpu", journal=journal)
    assert resumed.meta["resumed_tensors"] == 8
    assert not journal.exists()
    np.testing.assert_allclose(resumed.table[COLUMNS], fresh.table[COLUMNS], rtol=1e-12)
    assert list(resumed.table["name"]) == list(fresh.table["name"])


def test_progress_bar_reports_bytes(sharded_base, full_finetune, capsys):
    weight_statistics(sharded_base, full_finetune, device="cpu", progress=True)
    err = capsys.readouterr().err
    assert "weight statistics" in err and "kB" in err
