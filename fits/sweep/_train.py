"""One SFT run with ``transformers.Trainer``, written as a standard Hugging Face output folder.

The folder receives, in order:

1. the final weights (``save_model``: ``config.json``, ``model.safetensors``,
   ``generation_config.json``; for LoRA the adapter files ``adapter_config.json`` and
   ``adapter_model.safetensors``) and the tokenizer;
2. ``train_results.json`` / ``eval_results.json`` / ``all_results.json``
   (``Trainer.save_metrics``): the HF training metrics (``train_loss`` is the run average, as in
   HF) and ``eval_<slice>_loss`` / ``eval_<slice>_accuracy`` for the test slices and for
   ``train`` (the final model on its own training subset, eval mode);
3. ``trainer_state.json`` (``Trainer.save_state``) whose ``log_history`` is the real training
   log, with the evaluation appended through ``Trainer.log``;
4. ``weight_stats.parquet`` / ``.json`` (:func:`measurement.weight_statistics` against the
   base; for LoRA, of the adapter on top of the base, its adapter-space prior centred at the
   initialisation below).

For LoRA the adapter's initialisation is recorded before training, so that the adapter-space
prior can be centred at it (:func:`measurement.adapter_prior_centre`): ``adapter_init/`` (the
adapter as peft initialised it, a PEFT adapter folder) and ``adapter_seed.json``
(``{"seed": s}``, the seed set right before the base model was loaded and peft drew A₀).

Loss is on completion tokens only (prompt and padding labels are -100).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from fits.sweep._plan import PlannedRun
from fits.sweep._spec import SweepSpec
from fits.sweep._tasks import Difficulty, Record
from pacbound.exceptions import InvalidParameterError

__all__ = ["encode_records", "evaluate_records", "lora_config", "train_one", "training_features"]


def encode_records(
    tokenizer, records: list[Record], max_length: int | None = None, *, chat: bool = False
):
    """Prompt ids (with the tokenizer's special tokens) and completion ids (EOS appended).

    With ``chat`` each prompt is the user turn of the tokenizer's chat template followed by
    the assistant's generation prompt, and the completion ends with the template's
    end-of-turn token (the tokenizer's EOS for chat models such as SmolLM2's ``<|im_end|>``).
    With ``max_length`` the prompt is cut from the left and the completion from the right so
    that the pair fits.
    """
    if not records:
        return [], []
    if chat:
        if not getattr(tokenizer, "chat_template", None):
            raise InvalidParameterError(
                f"task.chat = true needs a tokenizer with a chat template; "
                f"{type(tokenizer).__name__} ({tokenizer.name_or_path!r}) has none."
            )
        prompts = [_chat_ids(tokenizer, [{"role": "user", "content": r.prompt}]) for r in records]
    else:
        prompts = tokenizer([r.prompt for r in records])["input_ids"]
    comps = tokenizer([r.completion for r in records], add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    out_p, out_c = [], []
    for p, c in zip(prompts, comps, strict=True):
        p, c = list(p), [*c, eos]
        if max_length is not None and len(p) + len(c) > max_length:
            c = c[: max(1, max_length // 2)] if len(c) > max_length // 2 else c
            p = p[-(max_length - len(c)) :]
        out_p.append(p)
        out_c.append(c)
    return out_p, out_c


def lora_config(spec: SweepSpec):
    """The ``peft.LoraConfig`` of a spec's ``train.lora_*`` fields (causal LM)."""
    from peft import LoraConfig

    return LoraConfig(
        r=spec["train.lora_r"],
        lora_alpha=spec["train.lora_alpha"],
        lora_dropout=spec["train.lora_dropout"],
        target_modules=list(spec["train.lora_targets"]),
        use_rslora=spec["train.lora_rslora"],
        task_type="CAUSAL_LM",
    )


def training_features(prompts: list, comps: list) -> dict[str, list]:
    """``input_ids`` = prompt + completion; ``labels`` mask the prompt with -100 (loss on the
    completion tokens only)."""
    return {
        "input_ids": [p + c for p, c in zip(prompts, comps, strict=True)],
        "labels": [[-100] * len(p) + c for p, c in zip(prompts, comps, strict=True)],
    }


def _chat_ids(tokenizer, messages: list[dict]) -> list[int]:
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if isinstance(ids, dict) or hasattr(ids, "keys"):  # transformers >= 5 returns an encoding
        ids = ids["input_ids"]
    return list(ids)


def evaluate_records(model, tokenizer, task, records, slices, *, batch_size, accuracy=True):
    """``{<slice>_loss, <slice>_accuracy, <slice>_n}`` for ``records`` (see ``_evaluate``)."""
    from measurement import EvalExample, score_examples, summarize_scores

    max_length = task.spec["task.max_length"] if task.kind == "dataset" else None
    prompts, comps = encode_records(tokenizer, records, max_length, chat=task.chat)
    examples = [
        EvalExample(tuple(p), tuple(c), r.answer)
        for p, c, r in zip(prompts, comps, records, strict=True)
    ]
    scores = score_examples(
        model,
        tokenizer,
        examples,
        answer_fn=task.answer_fn,
        max_new_tokens=task.max_new_tokens,
        batch_size=batch_size,
        decode_batch_size=batch_size,
        accuracy=accuracy,
    )
    out = summarize_scores(scores, slices)
    return out, scores


def _device(spec: SweepSpec) -> str:
    import torch

    want = spec["resources.device"]
    if want == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return want


def train_one(
    spec: SweepSpec,
    run: PlannedRun,
    difficulty: Difficulty,
    task,
    base_dir: Path,
    out_dir: Path,
    *,
    test_records: list[Record] | None = None,
) -> dict:
    """Train ``run`` from ``base_dir`` into ``out_dir``; return timings and key metrics.

    Parameters
    ----------
    test_records : list of Record, optional
        The task's test set, when the caller already has it (it is the same for every run).
    """
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        PrinterCallback,
        ProgressCallback,
        Trainer,
        TrainingArguments,
    )
    from transformers.utils import logging as hf_logging

    from pacbound.support import write_json

    hf_logging.disable_progress_bar()
    t_start = time.perf_counter()
    cpu_start = time.process_time()
    torch.set_num_threads(spec["resources.threads_per_run"])
    device = _device(spec)
    dtype = torch.bfloat16 if spec["train.dtype"] == "bfloat16" else torch.float32
    tok = AutoTokenizer.from_pretrained(base_dir)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"  # training batches: right padding keeps positions 0..L-1
    torch.manual_seed(run.seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype)
    if spec["train.finetune"] == "lora":
        from peft import get_peft_model

        model = get_peft_model(model, lora_config(spec))
        # the data-free initialisation θ₀, the adapter-space prior's centre
        model.save_pretrained(str(Path(out_dir) / "adapter_init"))
        write_json(Path(out_dir) / "adapter_seed.json", {"seed": int(run.seed)})
    records = task.train_records(difficulty, run.n, run.seed)
    max_length = spec["task.max_length"] if task.kind == "dataset" else None
    prompts, comps = encode_records(tok, records, max_length, chat=task.chat)
    from datasets import Dataset

    features = training_features(prompts, comps)
    n_tokens = int(sum(len(x) for x in features["input_ids"]))
    n_completion_tokens = int(sum(len(c) for c in comps))
    dataset = Dataset.from_dict(features)
    args = TrainingArguments(
        output_dir=str(out_dir),
        per_device_train_batch_size=spec["train.batch_size"],
        gradient_accumulation_steps=spec["train.grad_accum"],
        learning_rate=spec["train.lr"],
        lr_scheduler_type=spec["train.scheduler"],
        warmup_steps=spec["train.warmup_ratio"],
        weight_decay=spec["train.weight_decay"],
        max_grad_norm=spec["train.max_grad_norm"],
        logging_steps=spec["train.logging_steps"],
        logging_first_step=True,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        seed=run.seed,
        data_seed=run.seed,
        use_cpu=device == "cpu",
        bf16=spec["train.dtype"] == "bfloat16" and device == "cuda",
        dataloader_num_workers=0,
        dataloader_pin_memory=device == "cuda",
        disable_tqdm=True,
        optim="adamw_torch",
        include_num_input_tokens_seen="all",
        **(
            {"max_steps": run.steps}
            if run.budget_mode == "steps"
            else {"num_train_epochs": run.epochs}
        ),
    )
    collator = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=collator,
        processing_class=tok,
    )
    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)
    t0 = time.perf_counter()
    result = trainer.train()
    train_seconds = time.perf_counter() - t0
    trainer.save_model(str(out_dir))
    trainer.save_metrics("train", result.metrics)

    t0 = time.perf_counter()
    model.eval()
    if test_records is None:
        test_records = task.test_records()
    batch = spec["eval.batch_size"]
    acc = spec["eval.accuracy"]
    test_metrics, _ = evaluate_records(
        model,
        tok,
        task,
        test_records,
        task.slices(test_records, difficulty),
        batch_size=batch,
        accuracy=acc,
    )
    train_metrics, train_scores = evaluate_records(
        model,
        tok,
        task,
        records,
        {"train": np.ones(len(records), dtype=bool)},
        batch_size=batch,
        accuracy=acc,
    )
    eval_seconds = time.perf_counter() - t0
    metrics = {f"eval_{k}": v for k, v in {**test_metrics, **train_metrics}.items()}
    metrics["eval_train_decoded"] = train_scores.decoded
    metrics["eval_seconds"] = eval_seconds
    trainer.log(dict(metrics))
    trainer.save_metrics("eval", metrics)
    trainer.save_state()
    args_path = Path(out_dir) / "training_args.bin"
    if args_path.exists():  # a pickle; nothing reads it and it should not be trusted
        args_path.unlink()

    t0 = time.perf_counter()
    from measurement import weight_statistics

    if spec["train.finetune"] == "lora":
        stats = weight_statistics(
            base_dir, adapter=out_dir, adapter_init=Path(out_dir) / "adapter_init"
        )
    else:
        stats = weight_statistics(base_dir, out_dir)
    stats.save(out_dir)
    stats_seconds = time.perf_counter() - t0
    return {
        "n_tokens": n_tokens,
        "n_completion_tokens": n_completion_tokens,
        "global_step": int(trainer.state.global_step),
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "weight_stats_seconds": stats_seconds,
        "total_seconds": time.perf_counter() - t_start,
        "cpu_seconds": time.process_time() - cpu_start,
        "device": device,
        "threads": torch.get_num_threads(),
        "test_accuracy": metrics.get("eval_test_accuracy"),
        "test_loss": metrics.get("eval_test_loss"),
    }
