"""The runtime model: a compiled graph that runs forward and backward."""
from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from .compiler import Graph, keras_shape
from .core.parallel import one_blas_thread


def _identity(dY):
    return dY


class InputError(ValueError):
    """Arrays given to the model do not fit its inputs."""


class Model:
    """A compiled spec. Knows its layers, shapes and parameter counts at once; allocates
    weights on first use (`build()`), so a huge spec can be summarised without memory.

    Args:
        graph: the result of `layerc.compiler.compile_graph`.
    """

    def __init__(self, graph: Graph):
        self.graph = graph
        self.spec = graph.spec
        self.nodes = graph.nodes
        self.input_names = list(graph.inputs)
        self.output_names = graph.outputs
        self.built = False
        self._by_name = {n.name: n for n in self.nodes}
        self._fed_by_inputs = self._weightless_before()
        self._folded = self._fold_pooling()
        self._one_blas = any(n.layer.splits_work for n in self.nodes)

    def _weightless_before(self) -> list:
        """Layers with no weights anywhere before them (a convolution after a ZeroPadding2D
        on the input, say): their input gradient is wanted only for the model's inputs'."""
        free, layers = set(self.input_names), []
        for node in self.nodes:  # in execution order
            if all(s in free for s in node.inputs):
                layers.append(node.layer)
                if node.n_params == 0:
                    free.add(node.name)
        return layers

    def _blas_threads(self):
        """A one-thread OpenBLAS while the layers run, if some split their work over the
        cores themselves (see core.parallel); else BLAS threads as it likes."""
        return one_blas_thread() if self._one_blas else nullcontext()

    def _fold_pooling(self) -> set:
        """Names of max-pooling nodes whose convolution computes them (see Conv2D.fuse_pool),
        of rectifiers and LayerNormalizations computed by the layer before them
        (fuse_activation, Add.fuse_norm): the folded layer must be its source's only
        consumer and the source no output."""
        uses = {}
        for node in self.nodes:
            for src in node.inputs:
                uses[src] = uses.get(src, 0) + 1
        folded = set()
        for node in self.nodes:
            src = self._by_name.get(node.inputs[0]) if len(node.inputs) == 1 else None
            if (src is not None and uses[src.name] == 1 and src.name not in self.output_names
                    and (hasattr(node.layer, "fusable_window") and hasattr(src.layer, "fuse_pool")
                         and src.layer.fuse_pool(node.layer)
                         # a rectifier folded into the BatchNormalization before it
                         or node.name not in self.output_names and hasattr(src.layer, "fuse_activation")
                         and src.layer.fuse_activation(node.layer)
                         # a LayerNormalization made by the Add before it (a residual block)
                         or hasattr(src.layer, "fuse_norm") and src.layer.fuse_norm(node.layer))):
                folded.add(node.name)
            elif (src is not None and uses[src.name] == 1 and src.name not in self.output_names
                  and hasattr(src.layer, "fuse_batchnorm") and hasattr(node.layer, "inference_affine")):
                src.layer.fuse_batchnorm(node.layer)  # the convolution computes it in inference
        return folded

    # -- what the model is --------------------------------------------------------
    @property
    def name(self) -> str:
        path = self.spec._path
        return self.spec.name or (Path(path).stem if path else "model")

    @property
    def layers(self):
        return [n.layer for n in self.nodes]

    @property
    def input_shapes(self) -> list[tuple]:
        return [tuple(self.graph.inputs[n].shape) for n in self.input_names]

    @property
    def output_shapes(self) -> list[tuple]:
        return [self.graph.shapes[n] for n in self.output_names]

    def output_layers(self):
        return [self._by_name[n].layer for n in self.output_names]

    def count_params(self) -> int:
        return sum(n.n_params for n in self.nodes)

    def count_trainable(self) -> int:
        return sum(n.n_trainable for n in self.nodes)

    def weight_nodes(self):
        """Nodes in the spec's layer order: the order of `get_weights` (Keras's model.weights)."""
        return sorted(self.nodes, key=lambda n: n.index)

    # -- weights -------------------------------------------------------------------
    def build(self) -> "Model":
        """Allocate every layer's weights (idempotent)."""
        if not self.built:
            from .core.allocator import keep_freed_memory

            keep_freed_memory()
            for node in self.nodes:
                node.layer.build(node.input_shape)
            self.built = True
        return self

    def get_weights(self) -> list:
        """All weights, layer by layer in Keras's order and layouts (copies)."""
        self.build()
        return [w.copy() for n in self.weight_nodes() for w in n.layer.weights.values()]

    def set_weights(self, weights) -> None:
        """Load a list in `get_weights` order; shapes must match exactly."""
        import numpy as np

        self.build()
        slots = [(n.name, k, n.layer.weights) for n in self.weight_nodes() for k in n.layer.weights]
        weights = list(weights)
        if len(weights) != len(slots):
            raise ValueError(f"expected {len(slots)} weight arrays for this model, got {len(weights)}")
        for (layer, key, store), w in zip(slots, weights):
            w = np.asarray(w)
            if w.shape != store[key].shape:
                raise ValueError(f"weight {layer}/{key} has shape {store[key].shape}, got {w.shape}")
            store[key] = w.astype(store[key].dtype, copy=True)

    def named_weights(self) -> dict:
        """{'layer/weight': array} (the arrays themselves, not copies)."""
        self.build()
        return {f"{n.name}/{k}": w for n in self.weight_nodes() for k, w in n.layer.weights.items()}

    def trainable_slots(self) -> list[tuple]:
        """(layer, weight name) for every trainable weight, in get_weights order."""
        self.build()
        return [(n.layer, k) for n in self.weight_nodes() for k in n.layer.weights if n.layer.trainable[k]]

    # -- compute ---------------------------------------------------------------------
    def check_inputs(self, inputs) -> list:
        """Inputs as a list of arrays of the right dtype; InputError naming both shapes if not."""
        import numpy as np

        arrays = self._by_names(inputs, self.input_names, "input")
        if len(arrays) != len(self.input_names):
            raise InputError(f"the model takes {len(self.input_names)} inputs "
                             f"({', '.join(self.input_names)}), got {len(arrays)}")
        out = []
        for name, x in zip(self.input_names, arrays):
            spec = self.graph.inputs[name]
            x = np.asarray(x)
            want = tuple(spec.shape)
            if x.ndim != len(want) + 1 or any(w is not None and w != g for w, g in zip(want, x.shape[1:])):
                raise InputError(f"input '{name}' expects shape {keras_shape(want)}, "
                                 f"got an array of shape {x.shape}")
            dtype = self.spec.dtype if spec.dtype.startswith("float") else spec.dtype
            if spec.dtype == "int32":
                if not np.issubdtype(x.dtype, np.integer):
                    if not np.issubdtype(x.dtype, np.floating) or not np.all(np.mod(x, 1) == 0):
                        raise InputError(f"input '{name}' takes integer ids, got {x.dtype} values")
            elif not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
                      or x.dtype == bool):
                raise InputError(f"input '{name}' takes numbers, got an array of {x.dtype}")
            out.append(x if x.dtype == dtype else x.astype(dtype))
        return out

    @staticmethod
    def _by_names(arrays, names, what) -> list:
        """A dict by name (every name, no other), a list in order, or one array -> a list."""
        if isinstance(arrays, dict):
            unknown = [k for k in arrays if k not in names]
            missing = [n for n in names if n not in arrays]
            if unknown or missing:
                raise InputError(f"the model's {what}s are {', '.join(names)}; "
                                 + (f"no {what} {unknown[0]!r}" if unknown else f"{what} {missing[0]!r} is missing"))
            return [arrays[n] for n in names]
        return list(arrays) if isinstance(arrays, (list, tuple)) else [arrays]

    def targets(self, y):
        """Targets as the trainer takes them: one array for a single output, else a list in
        output order (from a dict by output name or a list)."""
        ys = self._by_names(y, self.output_names, "output")
        if len(ys) != len(self.output_names):
            raise InputError(f"the model has {len(self.output_names)} outputs "
                             f"({', '.join(self.output_names)}), got {len(ys)} target arrays")
        if len(ys) == 1:
            return ys[0]
        if any(len(a) != len(ys[0]) for a in ys):
            raise InputError("all targets must have the same number of samples")
        return ys

    def forward(self, inputs, training: bool = False, logits: bool = False, input_grads: bool = False):
        """Run the graph. Returns (outputs, backprop); outputs is an array for a
        single-output model, else a list; backprop takes the same form and stores every
        weight gradient. logits=True runs output layers without their activation;
        input_grads=True makes backprop return the gradients for the inputs too (else None:
        training never needs them, and the first layers skip that work)."""
        self.build()
        xs = self.check_inputs(inputs)
        for layer in self._fed_by_inputs:
            layer.input_grad = input_grads
        values = dict(zip(self.input_names, xs))
        masks = {name: None for name in self.input_names}
        fused = logits if isinstance(logits, list) else [logits] * len(self.output_names)
        for layer, f in zip(self.output_layers(), fused):
            layer.fused_output = f
        tape = []
        with self._blas_threads():
            for node in self.nodes:
                layer = node.layer
                if node.name in self._folded:  # the layer before it already pooled or rectified
                    values[node.name], masks[node.name] = values[node.inputs[0]], masks[node.inputs[0]]
                    tape.append(_identity)
                    continue
                if layer.multi_input:
                    X = [values[s] for s in node.inputs]
                    mask = [masks[s] for s in node.inputs]
                else:
                    X, mask = values[node.inputs[0]], masks[node.inputs[0]]
                Y, backprop = layer.forward(X, training, mask)
                values[node.name] = Y
                masks[node.name] = layer.compute_mask(X, mask)
                tape.append(backprop)
        outs = [values[n] for n in self.output_names]

        def backprop(dY):
            grads = dict(zip(self.output_names, dY if len(outs) > 1 else [dY]))
            with self._blas_threads():
                for node, bp in zip(reversed(self.nodes), reversed(tape)):
                    g = grads.pop(node.name, None)
                    if g is None:
                        continue
                    dX = bp(g)
                    srcs = node.inputs
                    for src, d in zip(srcs, dX if node.layer.multi_input else [dX]):
                        if d is None:
                            continue
                        grads[src] = grads[src] + d if src in grads else d
            dxs = [grads.get(n) for n in self.input_names]
            return dxs if len(dxs) > 1 else dxs[0]

        return (outs if len(outs) > 1 else outs[0]), backprop

    def predict(self, x, batch_size: int | None = None):
        """Outputs for x in inference mode, computed in batches (default the spec's batch_size)."""
        import numpy as np

        xs = self.check_inputs(x)
        n = len(xs[0])
        if any(len(a) != n for a in xs):
            raise InputError("all inputs must have the same number of samples")
        if batch_size is None:
            batch_size = self.spec.train.batch_size if self.spec.train else 32
        chunks = []
        for start in range(0, max(n, 1), batch_size):
            y, _ = self.forward([a[start:start + batch_size] for a in xs], training=False)
            chunks.append(y if isinstance(y, list) else [y])
        outs = [np.concatenate([c[k] for c in chunks]) for k in range(len(chunks[0]))]
        return outs if len(outs) > 1 else outs[0]

    # -- training (Keras's fit / evaluate) ------------------------------------------------
    def trainer(self, train_spec=None):
        """The model's Trainer (kept across `fit` calls, so the optimizer state carries on)."""
        from .train.loop import Trainer

        if getattr(self, "_trainer", None) is None or train_spec is not None:
            spec = train_spec or self.spec.train
            if spec is None:
                raise ValueError("the spec has no `train:` section (optimizer, loss, ...) to fit with")
            self._trainer = Trainer(self, spec)
        return self._trainer

    def fit(self, x, y, epochs=None, batch_size=None, validation_data=None, validation_split=None,
            shuffle=True, verbose=1):
        """Train like Keras's `fit` (defaults from the spec's `train:`); returns the history
        as {name: [value per epoch]}. validation_split takes the last fraction, unshuffled."""
        from .train.callbacks import EpochPrinter

        trainer = self.trainer()
        xs, y = self._by_names(x, self.input_names, "input"), self.targets(y)
        multi = len(self.output_names) > 1
        if validation_split:
            cut = int((len(y[0]) if multi else len(y)) * (1 - validation_split))
            validation_data = ([a[cut:] for a in xs], [a[cut:] for a in y] if multi else y[cut:])
            xs, y = [a[:cut] for a in xs], ([a[:cut] for a in y] if multi else y[:cut])
        elif validation_data is not None:
            validation_data = (self._by_names(validation_data[0], self.input_names, "input"),
                               self.targets(validation_data[1]))
        if validation_data is not None and len(validation_data[0]) == 1:
            validation_data = (validation_data[0][0], validation_data[1])
        epochs = epochs or (self.spec.train.epochs if self.spec.train else 1)
        start = trainer.epoch
        trainer.epoch = trainer.step = 0
        trainer.stop_training = False
        trainer.history = []
        printer = EpochPrinter() if verbose else None
        if printer:
            trainer.callbacks.append(printer)
        try:
            trainer.fit(xs if len(xs) > 1 else xs[0], y, epochs=epochs, batch_size=batch_size,
                        validation_data=validation_data, shuffle=shuffle, seed=self.spec.seed + start)
        finally:
            if printer:
                trainer.callbacks.remove(printer)
            trainer.epoch += start
        keys = list(dict.fromkeys(k for row in trainer.history for k in row if k != "epoch"))
        return {k: [row.get(k) for row in trainer.history] for k in keys}

    def evaluate(self, x, y, batch_size=None) -> dict:
        """Loss and metrics in inference mode, as a dict (`<output>_<metric>` with several outputs)."""
        xs = self._by_names(x, self.input_names, "input")
        return self.trainer().evaluate(xs if len(xs) > 1 else xs[0], self.targets(y), batch_size)

