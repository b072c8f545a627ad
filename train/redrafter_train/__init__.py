"""redrafter_train: train Apple-format ReDrafter drafters (see train/README.md)."""
from .model import Drafter, DrafterConfig, load_drafter, save_drafter, warp_logits  # noqa: F401
from .loss import drafter_loss, drafter_loss_sums  # noqa: F401
