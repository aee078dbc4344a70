"""The one training loop (:class:`Trainer`), its config (:class:`ExperimentConfig`), checkpoints and evaluation.

``Trainer(config, run_dir).run()`` trains; ``Trainer(...).run(resume=True)`` continues from the run
directory's last checkpoint; :func:`evaluate_checkpoint` scores a saved model on a split from the
checkpoint alone. See docs/training.md.
"""

from iirsnn.train.checkpoint import CheckpointError
from iirsnn.train.config import ConfigError, ExperimentConfig, apply_overrides, config_from_dict, load_config
from iirsnn.train.evaluate import evaluate_checkpoint
from iirsnn.train.loop import Trainer

__all__ = ["CheckpointError", "ConfigError", "ExperimentConfig", "Trainer", "apply_overrides", "config_from_dict",
           "evaluate_checkpoint", "load_config"]
