"""Public names of :mod:`measurement` from this part of the package: name -> defining module."""

EXPORTS: dict[str, str] = {
    "weight_statistics": "measurement._weight_statistics",
    "WeightStats": "measurement._stats",
    "gaussian_kl": "measurement._weight_kl",
    "per_tensor_scales": "measurement._weight_kl",
    "KLResult": "measurement._weight_kl",
    "weight_bound": "measurement._weight_kl",
    "WeightBoundResult": "measurement._weight_kl",
    "lora_sq_norm": "measurement._lora_transforms",
    "open_checkpoint": "measurement._checkpoint",
    "checkpoint_fingerprint": "measurement._checkpoint",
    "checkpoint_folders": "measurement._output_folder",
    "resolve_output_folder": "measurement._output_folder",
    "resolve_model_path": "measurement._output_folder",
    "Checkpoint": "measurement._checkpoint",
    "TensorInfo": "measurement._checkpoint",
}
