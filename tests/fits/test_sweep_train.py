"""One run with transformers.Trainer: tokenisation, the HF output folder, full and LoRA."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from transformers import AutoTokenizer

from fits import SweepSpec, find_synthetic_base
from fits.sweep._plan import plan_runs
from fits.sweep._spec import SpecError
from fits.sweep._tasks import Record, make_task
from fits.sweep._train import encode_records, train_one
from pacbound.exceptions import InvalidParameterError

pytestmark = pytest.mark.usefixtures("sweep_env")


def test_encode_records_appends_eos_and_truncates():
    tok = AutoTokenizer.from_pretrained(find_synthetic_base())
    recs = [Record("a = 1 , ? a >", "a = 1 + 0 = 1", "1", 1.0)]
    (p,), (c,) = encode_records(tok, recs)
    assert p[0] == tok.bos_token_id and c[-1] == tok.eos_token_id
    assert tok.decode(c[:-1]) == "a = 1 + 0 = 1"
    (p2,), (c2,) = encode_records(tok, recs, max_length=10)
    assert len(p2) + len(c2) <= 10 and c2[0] == c[0] and p2[-1] == p[-1]
    assert encode_records(tok, []) == ([], [])


@pytest.mark.parametrize("finetune", ["full", "lora"])
def test_train_one_writes_a_standard_hf_run_folder(tmp_path, finetune):
    spec = SweepSpec.from_dict(
        {
            "task": {"test_per_op": 2},
            "difficulty": {"centers": [6]},
            "budget": {"n": [8]},
            "train": {"finetune": finetune, "batch_size": 4, "logging_steps": 1, "lora_r": 4},
            "eval": {"batch_size": 64},
        }
    )
    task = make_task(spec)
    diff = task.difficulties()[0]
    (run,) = plan_runs(spec, [diff], {"kind": "synthetic"}, task.fingerprint())
    base = find_synthetic_base()
    summary = train_one(spec, run, diff, task, base, tmp_path)
    assert summary["global_step"] == 6 and summary["n_tokens"] > 8 * 60
    names = {p.name for p in tmp_path.iterdir()}
    weights = {
        "full": {"config.json", "model.safetensors"},
        "lora": {"adapter_config.json", "adapter_model.safetensors"},
    }[finetune]
    assert weights <= names and "training_args.bin" not in names
    state = json.loads((tmp_path / "trainer_state.json").read_text())
    losses = [e["loss"] for e in state["log_history"] if "loss" in e]
    assert len(losses) == 6 and all(np.isfinite(losses))
    results = json.loads((tmp_path / "all_results.json").read_text())
    assert results["eval_train_n"] == 8 and results["eval_test_n"] == 16
    assert 0 <= results["eval_train_accuracy"] <= 1 and results["train_loss"] > 0
    stats = pd.read_parquet(tmp_path / "weight_stats.parquet")
    moved = stats[stats["sq_delta"] > 0]
    assert len(moved) > 0
    if finetune == "lora":
        assert set(moved["kind"]) == {"lora"}
        # the initialisation is recorded, and the adapter-space prior is centred at it: A
        # moved much less from its initial value than from 0
        from measurement import adapter_prior_centre

        assert json.loads((tmp_path / "adapter_seed.json").read_text()) == {"seed": run.seed}
        centre = adapter_prior_centre(tmp_path)
        assert centre.kind == "recorded" and centre.path == str(tmp_path / "adapter_init")
        adapter = pd.read_parquet(tmp_path / "adapter_stats.parquet")
        a_rows = adapter[adapter["kind"] == "lora_A"]
        assert len(a_rows) > 0 and (a_rows["sq_base"] > 0).all()
        assert a_rows["sq_delta"].sum() < 0.1 * a_rows["sq_finetuned"].sum()
        # the runs table carries both spaces: ||ΔW||² of the factored update, ||θ - θ0||²
        from fits import load_runs

        (tmp_path / "run_meta.json").write_text(json.dumps({"difficulty": 6, "n": 8, "seed": 0}))
        row = load_runs(tmp_path).iloc[0]
        assert row["sq_dist"] == pytest.approx(stats["sq_delta"].sum(), rel=1e-12)
        assert row["adapter_sq_dist"] == pytest.approx(adapter["sq_delta"].sum(), rel=1e-12)


CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def test_chat_rendering_wraps_the_prompt_in_the_template_and_ends_the_turn():
    tok = AutoTokenizer.from_pretrained(find_synthetic_base())
    recs = [Record("a = 1 , ? a >", "a = 1 + 0 = 1", "1", 1.0)]
    (plain,), (comp_plain,) = encode_records(tok, recs)
    with pytest.raises(InvalidParameterError, match="chat template"):
        encode_records(tok, recs, chat=True)
    tok.chat_template = CHAT_TEMPLATE
    (p,), (c,) = encode_records(tok, recs, chat=True)
    rendered = tok.apply_chat_template(
        [{"role": "user", "content": recs[0].prompt}], add_generation_prompt=True, tokenize=False
    )
    assert rendered.startswith("<|user|>a = 1") and rendered.endswith("<|assistant|>")
    # the template carries any special tokens itself: none are added around it
    assert p == tok(rendered, add_special_tokens=False)["input_ids"] and p != plain
    # the completion is the same and ends the turn with EOS either way
    assert c == comp_plain and c[-1] == tok.eos_token_id


def test_synthetic_task_on_a_foreign_base_names_its_inrange_slice():
    base = {
        "base": {"kind": "path", "path": "somewhere"},
        "difficulty": {"centers": [2]},
        "budget": {"n": [8]},
    }
    with pytest.raises(SpecError, match=r"task\.inrange_ops"):
        SweepSpec.from_dict(base)
    spec = SweepSpec.from_dict({**base, "task": {"inrange_ops": "1-2", "chat": True}})
    task = make_task(spec)
    assert task.chat and task.inrange_ops == (1, 2)
