"""Training: losses, optimizers, schedules, metrics, regularizers, the fit loop and callbacks."""
