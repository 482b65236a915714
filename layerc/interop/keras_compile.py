"""Keras's compile_config (optimizer, loss, metrics) as a spec's `train:` section."""
from __future__ import annotations

from .keras_config import LOSSES, OPTIMIZERS, is_builtin, short_float
from .keras_layers import show


def train_section(compile_config, notes) -> dict | None:
    """Keras's compile_config as a train section, where it maps; the rest goes to the notes."""
    from ..spec.train import LOSS_ALIASES, METRIC_ALIASES, _models_by_type, LossSpec, MetricSpec, OptimizerSpec
    from ..spec.names import snake_case

    if not isinstance(compile_config, dict) or not compile_config:
        return None
    loss = compile_config.get("loss")
    if isinstance(loss, dict) and is_builtin(loss) and loss.get("class_name") in {v: k for k, v in LOSSES.items()}:
        ltype = {v: k for k, v in LOSSES.items()}[loss["class_name"]]
        model = _models_by_type(LossSpec)[ltype]
        args = {k: short_float(v) if isinstance(v, float) else v for k, v in (loss.get("config") or {}).items()
                if k in model.model_fields and v != model.model_fields[k].default}
        loss = {ltype: args} if args else ltype
    elif isinstance(loss, str) and LOSS_ALIASES.get(loss, loss) in _models_by_type(LossSpec):
        loss = LOSS_ALIASES.get(loss, loss)
    else:
        notes.append(f"training: the loss {show(loss) if isinstance(loss, dict) else loss!r} has no layerc form; "
                     "no train section (add one to train)")
        return None
    train = {}
    opt = compile_config.get("optimizer")
    otype = None
    if isinstance(opt, str):
        otype = opt.lower() if opt.lower() in OPTIMIZERS else None
    elif isinstance(opt, dict) and is_builtin(opt):
        otype = {v: k for k, v in OPTIMIZERS.items()}.get(opt.get("class_name"))
    if otype is None:
        notes.append(f"training: the optimizer {show(opt) if isinstance(opt, dict) else opt!r} has no layerc form; "
                     "Keras's default rmsprop is used")
    else:
        model = _models_by_type(OptimizerSpec)[otype]
        args = {}
        for k, v in ((opt.get("config") or {}) if isinstance(opt, dict) else {}).items():
            v = short_float(v) if isinstance(v, float) else v
            if k in model.model_fields and k != "type":
                if isinstance(v, dict):
                    notes.append(f"training: optimizer {k} {show(v)} not imported; {model.model_fields[k].default} used")
                elif v is not None and v != model.model_fields[k].default:
                    args[k] = v
            elif not (v is None or v is False or k in ("name", "ema_momentum")):
                notes.append(f"training: optimizer option {k}={v!r} not imported (layerc has no such option)")
        train["optimizer"] = {otype: args} if args else otype
    train["loss"] = loss
    metrics = []
    for m in compile_config.get("metrics") or []:
        name = m if isinstance(m, str) else snake_case(m.get("class_name", "")) if isinstance(m, dict) and is_builtin(m) else None
        name = METRIC_ALIASES.get(name, name)
        if name in _models_by_type(MetricSpec) and name not in ("precision", "recall", "auc", "top_k_accuracy"):
            metrics.append(name)
        elif isinstance(m, (str, dict)):
            notes.append(f"training: metric {show(m) if isinstance(m, dict) else repr(m)} not imported")
    if metrics:
        train["metrics"] = metrics
    return train
