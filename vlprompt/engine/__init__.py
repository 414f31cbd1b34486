from .trainer import Trainer, classification_loss

__all__ = ["Trainer", "classification_loss"]
