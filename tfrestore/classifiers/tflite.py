"""Import a quantised TFLite image classifier as a float Keras `Classifier`.

The flatbuffer is parsed with the schema that ships with TensorFlow; every weight
is dequantised, real = (q - zero_point) * scale (int8 per-channel along the
tensor's quantised dimension, uint8 per-tensor, int32 biases with scale =
input_scale * weight_scale), and each operator becomes a real Keras layer, so that
the network can be differentiated and every layer addressed like any other
classifier in tfrestore:

    clf = load_tflite("tf2_mobilenet_v2_1.0_224_ptq.tflite")
    clf.layer_names          # ['Conv2d_0_0/lin', 'Conv2d_0_0/relu6', 'Conv2d_0_0', ...]
    clf.feature_model("expanded_conv_3_add")

Activations stay in float (no activation quantisation is simulated), so the
imported model is the float network the quantised one approximates. The input
preprocessing (RGB 0-255 -> float network input) is computed from the file's own
input quantisation.
"""
import os
import re
import warnings

import keras
import numpy as np

from tfrestore.classifiers.applications import imagenet_labels
from tfrestore.classifiers.base import ACT_SEP, Classifier
from tfrestore.classifiers.preprocessing import Preprocessing, make_preprocessing
from tfrestore.classifiers.weights import WeightsError

__all__ = ["load_tflite", "read_tflite", "dequantize", "tflite_preprocessing",
           "UnsupportedOpError", "SUPPORTED_OPS"]

SUPPORTED_OPS = ("ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D",
                 "DEQUANTIZE", "FULLY_CONNECTED", "MAX_POOL_2D", "MEAN", "PAD", "PADV2",
                 "QUANTIZE", "RESHAPE", "SOFTMAX", "SQUEEZE")

# TFLite ActivationFunctionType -> activation name (None: no activation).
_ACTIVATIONS = {0: None, 1: "relu", 3: "relu6"}
_ACTIVATION_NAMES = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH",
                     5: "SIGN_BIT"}

# Last path elements that name what an op did rather than which layer it belongs to,
# and the scopes that wrap them ("block/relu6/Relu6" belongs to layer "block").
_WRAPPER_SCOPES = {"relu", "relu6", "batch_norm", "batchnorm", "biasadd"}
# Per op kind: prefixes of a tensor-name component's last element that identify the
# component naming the op itself (a fused tensor name lists every op folded into it).
_NAME_HINTS = {"MEAN": ("mean",), "AVERAGE_POOL_2D": ("avgpool",), "MAX_POOL_2D": ("maxpool",),
               "RESHAPE": ("reshape", "squeeze"), "SQUEEZE": ("squeeze",),
               "SOFTMAX": ("softmax",), "ADD": ("add",), "CONCATENATION": ("concat",),
               "PAD": ("pad",), "PADV2": ("pad",)}


class UnsupportedOpError(ValueError):
    """The TFLite file uses an operator (or option) that the importer cannot build."""


def _schema():
    # Imported lazily: they pull in the flatbuffers package, only needed here.
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils
    return schema, flatbuffer_utils


def _enum_names(enum_cls):
    return {v: k for k, v in vars(enum_cls).items()
            if not k.startswith("_") and isinstance(v, int)}


_NP_TYPES = {"FLOAT32": np.float32, "FLOAT16": np.float16, "INT8": np.int8, "UINT8": np.uint8,
             "INT16": np.int16, "INT32": np.int32, "INT64": np.int64}


def dequantize(q, scale, zero_point=0, axis=0):
    """real = (q - zero_point) * scale, per-tensor or per-channel along `axis`.

    Args:
      q: integer array.
      scale, zero_point: scalars or 1-D arrays of length 1 (per-tensor) or
        q.shape[axis] (per-channel).
      axis: the quantised dimension for per-channel parameters.
    """
    q = np.asarray(q)
    scale = np.atleast_1d(np.asarray(scale, np.float64))
    zero_point = np.atleast_1d(np.asarray(0 if zero_point is None else zero_point, np.float64))
    if scale.size > 1 or zero_point.size > 1:
        if q.ndim == 0 or scale.size not in (1, q.shape[axis]):
            raise ValueError(f"Per-channel scales of length {scale.size} do not match axis "
                             f"{axis} of a tensor of shape {q.shape}.")
        shape = [1] * q.ndim
        shape[axis] = -1
        scale = scale.reshape(shape) if scale.size > 1 else scale
        zero_point = zero_point.reshape(shape) if zero_point.size > 1 else zero_point
    else:
        scale, zero_point = scale[0], zero_point[0]
    return ((q.astype(np.float64) - zero_point) * scale).astype(np.float32)


def _quant(tensor):
    """(scale array, zero-point array, axis) of a tensor, or None if not quantised."""
    q = tensor.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    zp = q.zeroPoint if q.zeroPoint is not None and len(q.zeroPoint) else np.zeros(1)
    return np.asarray(q.scale, np.float64), np.asarray(zp, np.int64), int(q.quantizedDimension)


def tflite_preprocessing(input_type, quant, default="tf"):
    """The `Preprocessing` mapping RGB 0-255 to the float input a quantised input implies.

    A uint8 input with (scale s, zero point z) holds the pixel value v itself and means
    (v - z) * s; an int8 input holds v - 128 and means (v - 128 - z) * s. A float input
    carries no such information: `default` (a preset name) is used.
    """
    if input_type in ("UINT8", "INT8") and quant is not None:
        scale, zp, _ = quant
        if scale.size != 1:
            raise UnsupportedOpError("The model input is quantised per channel; only "
                                     "per-tensor input quantisation is supported.")
        mean = float(zp[0]) + (128.0 if input_type == "INT8" else 0.0)
        std = 1.0 / float(scale[0])
        return Preprocessing(mean=(mean,) * 3, std=(std,) * 3, name="preprocessing")
    if input_type in ("UINT8", "INT8"):
        return make_preprocessing("raw")
    return make_preprocessing(default)


class _Graph:
    """The first subgraph of a TFLite model, with constants and names resolved."""

    def __init__(self, path):
        schema, flatbuffer_utils = _schema()
        try:
            self.model = flatbuffer_utils.read_model(path)
        except Exception as e:
            raise WeightsError(f"Cannot read TFLite file '{path}': {type(e).__name__}: {e}. "
                               f"Is it a .tflite flatbuffer?") from e
        if not self.model.subgraphs:
            raise WeightsError(f"TFLite file '{path}' has no subgraph.")
        self.path = path
        self.g = self.model.subgraphs[0]
        op_names = _enum_names(schema.BuiltinOperator)
        self.type_names = _enum_names(schema.TensorType)
        self.kinds = []
        for op in self.g.operators:
            code = self.model.operatorCodes[op.opcodeIndex]
            # Codes above 127 live in builtinCode; deprecatedBuiltinCode holds older ones.
            bc = max(code.builtinCode, code.deprecatedBuiltinCode)
            kind = op_names.get(bc, f"BUILTIN_{bc}")
            if kind == "CUSTOM":
                custom = code.customCode.decode() if code.customCode else "?"
                kind = f"CUSTOM({custom})"
            self.kinds.append(kind)
        self.producer = {}
        for i, op in enumerate(self.g.operators):
            for t in op.outputs:
                self.producer[int(t)] = i
        self.names = _layer_scopes(self)

    def tensor(self, i):
        return self.g.tensors[i]

    def type_name(self, i):
        return self.type_names.get(self.tensor(i).type, str(self.tensor(i).type))

    def tensor_name(self, i):
        name = self.tensor(i).name
        return name.decode() if isinstance(name, bytes) else str(name)

    def shape(self, i):
        return [int(d) for d in self.tensor(i).shape]

    def raw(self, i):
        """The constant data of tensor `i` as a typed array, or None if not a constant."""
        t = self.tensor(i)
        buf = self.model.buffers[t.buffer] if t.buffer < len(self.model.buffers) else None
        if buf is None or buf.data is None or len(buf.data) == 0:
            if buf is not None and getattr(buf, "offset", 0):
                raise UnsupportedOpError(f"Tensor '{self.tensor_name(i)}' stores its data "
                                         f"outside the flatbuffer (models over 2 GB); "
                                         f"not supported.")
            return None
        dtype = _NP_TYPES.get(self.type_name(i))
        if dtype is None:
            raise UnsupportedOpError(f"Constant tensor '{self.tensor_name(i)}' has type "
                                     f"{self.type_name(i)}; supported: {sorted(_NP_TYPES)}.")
        data = np.frombuffer(np.asarray(buf.data, np.uint8).tobytes(), dtype=dtype)
        return data.reshape(self.shape(i))

    def constant(self, i, bias_scale=None):
        """Dequantised float32 value of constant tensor `i` (None if it is not constant).

        `bias_scale`: the scale to use for an int32 bias that carries none in the file.
        """
        raw = self.raw(i)
        if raw is None:
            return None
        quant = _quant(self.tensor(i))
        if np.issubdtype(raw.dtype, np.floating):
            return raw.astype(np.float32)
        if quant is None:
            if raw.dtype == np.int32 and bias_scale is not None:
                return dequantize(raw, bias_scale, 0, axis=0)
            return raw  # integer parameters (shapes, axes, paddings)
        scale, zp, axis = quant
        return dequantize(raw, scale, zp, axis)


def _layer_scopes(graph):
    """A readable, Keras-safe layer name for every operator, from its output tensor's name."""
    scopes = []
    for i, op in enumerate(graph.g.operators):
        kind = graph.kinds[i]
        name = graph.tensor_name(op.outputs[0]) if len(op.outputs) else ""
        parts = [p for p in name.split(";") if p and not p.startswith("StatefulPartitionedCall")]
        parts = parts or [p for p in name.split(";") if p]
        chosen = parts[0] if parts else ""
        for part in parts:
            if part.split("/")[-1].lower().startswith(_NAME_HINTS.get(kind, ("\0",))):
                chosen = part
                break
        elems = [e for e in re.sub(r":\d+$", "", chosen).split("/") if e]
        elems = elems[:-1]  # the last element names the TF op (Relu6, Conv2D, Add, ...)
        while elems and elems[-1].lower() in _WRAPPER_SCOPES:
            elems.pop()
        scopes.append(elems)
    # Drop the model-wide leading scopes ("MobileNetV2/", "functional_1/"), and repeats of
    # them ("MobilenetV1/MobilenetV1/Conv2d_0").
    multi = [s for s in scopes if len(s) >= 2]
    prefix = []
    if multi:
        for elems in zip(*multi):
            if len(set(elems)) != 1:
                break
            prefix.append(elems[0])
    stripped = []
    for elems in scopes:
        if elems[:len(prefix)] == prefix:
            elems = elems[len(prefix):]
        while elems and elems[0] in prefix and len(elems) > 1:
            elems = elems[1:]
        stripped.append(list(elems))
    # Keras 3 exports scope every layer as "<layer>_1": give users the layer's own name.
    firsts = [s[0] for s in stripped if s]
    if firsts and all(f.endswith("_1") and len(f) > 2 for f in firsts):
        for s in stripped:
            if s:
                s[0] = s[0][:-2]
    names = [_sanitise("_".join(s)) if s else "" for s in stripped]
    return [n or graph.kinds[i].lower() for i, n in enumerate(names)]


def _sanitise(name):
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", name)
    name = re.sub(r"_{2,}", "_", name)  # "__" separates a layer from its split activation
    return name.strip("_") or "layer"


class _Builder:
    """Turns the graph into Keras layers, lazily from the outputs back (so that shape
    arithmetic feeding a RESHAPE, never needed in float, is never built)."""

    def __init__(self, graph):
        self.graph = graph
        self.values = {}       # tensor index -> Keras tensor or float constant
        self.used = set()
        self.points = {}       # Keras layer name -> tensor index it reproduces
        self.relu_aliases = {}

    def unique(self, name):
        base, k = name, 1
        while name in self.used or name == "input":
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name

    def value(self, i):
        if i in self.values:
            return self.values[i]
        const = self.graph.constant(i)
        if const is not None:
            self.values[i] = const
            return const
        if i not in self.graph.producer:
            raise WeightsError(f"TFLite tensor '{self.graph.tensor_name(i)}' has no producer "
                               f"and no data; the file is not a single-input graph.")
        # Iterative depth-first build: deep networks would overflow Python's recursion.
        stack = [self.graph.producer[i]]
        while stack:
            op_i = stack[-1]
            op = self.graph.g.operators[op_i]
            missing = [int(t) for t in self._needed_inputs(op_i)
                       if int(t) not in self.values and self.graph.raw(int(t)) is None]
            missing = [t for t in missing if t in self.graph.producer]
            pending = [self.graph.producer[t] for t in missing if self.graph.producer[t] not in stack]
            if pending:
                stack.extend(pending[:1])
                continue
            stack.pop()
            if int(op.outputs[0]) not in self.values:
                self._build(op_i)
        return self.values[i]

    def _needed_inputs(self, op_i):
        op, kind = self.graph.g.operators[op_i], self.graph.kinds[op_i]
        ins = [int(t) for t in op.inputs if t >= 0]
        if kind in ("RESHAPE", "SQUEEZE", "MEAN", "PAD", "PADV2"):
            return ins[:1]  # the rest are shapes / axes / paddings: read as constants
        return ins

    def _input(self, i):
        if i in self.values:
            return self.values[i]
        const = self.graph.constant(i)
        if const is not None:
            return const
        return self.value(i)

    def _scale(self, i):
        q = _quant(self.graph.tensor(i))
        return None if q is None else q[0]

    def _activation(self, x, name, code, op_i):
        if code not in _ACTIVATIONS:
            raise UnsupportedOpError(
                f"Operator {op_i} ({self.graph.kinds[op_i]}, '{name}') has fused activation "
                f"{_ACTIVATION_NAMES.get(code, code)}; supported: NONE, RELU, RELU6.")
        act = _ACTIVATIONS[code]
        if act is None:
            return x
        # A separate layer named "<layer>__<act>" is what `Classifier` addresses as
        # "<layer>/<act>", with "<layer>/lin" the pre-activation output.
        layer = keras.layers.ReLU(max_value=6.0 if act == "relu6" else None,
                                  name=f"{name}{ACT_SEP}{act}")
        if act == "relu6":
            self.relu_aliases[f"{name}/relu"] = f"{name}/relu6"
        return layer(x)

    def _options(self, op):
        return op.builtinOptions

    def final_softmax(self, out):
        """{"softmax": point, "logits": point} when the output is a softmax, else {}."""
        layer = out._keras_history[0]
        if not isinstance(layer, keras.layers.Softmax):
            return {}
        src = layer._inbound_nodes[0].input_tensors[0]._keras_history[0].name
        if ACT_SEP in src:
            src = "/".join(src.rsplit(ACT_SEP, 1))
        return {"softmax": layer.name, "logits": src}

    def _build(self, op_i):
        g = self.graph
        op, kind = g.g.operators[op_i], g.kinds[op_i]
        if kind not in SUPPORTED_OPS:
            raise UnsupportedOpError(
                f"TFLite operator {kind} (operator {op_i}, output "
                f"'{g.tensor_name(op.outputs[0])}') is not supported by the importer of "
                f"'{os.path.basename(g.path)}'. Supported operators: {', '.join(SUPPORTED_OPS)}.")
        out_i = int(op.outputs[0])
        ins = [int(t) for t in op.inputs]
        opts = self._options(op)
        if kind in ("QUANTIZE", "DEQUANTIZE"):
            # Float model: (re)quantisation is the identity on real values.
            self.values[out_i] = self._input(ins[0])
            return
        name = self.unique(g.names[op_i])
        x = self._input(ins[0])
        if isinstance(x, np.ndarray):
            raise UnsupportedOpError(f"Operator {op_i} ({kind}, '{name}') computes on a "
                                     f"constant only; constant folding is not supported.")
        act_code = getattr(opts, "fusedActivationFunction", 0) if opts is not None else 0
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            y = self._weighted(op_i, kind, name, x, ins, opts)
        elif kind == "ADD":
            other = self._input(ins[1])
            if isinstance(other, np.ndarray):
                raise UnsupportedOpError(f"ADD '{name}' adds a constant; only the sum of "
                                         f"two computed tensors is supported.")
            y = keras.layers.Add(name=name)([x, other])
        elif kind == "CONCATENATION":
            parts = [self._input(t) for t in ins]
            if any(isinstance(p, np.ndarray) for p in parts):
                raise UnsupportedOpError(f"CONCATENATION '{name}' has a constant input; "
                                         f"not supported.")
            y = keras.layers.Concatenate(axis=int(opts.axis), name=name)(parts)
        elif kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            cls = keras.layers.AveragePooling2D if kind == "AVERAGE_POOL_2D" else \
                keras.layers.MaxPooling2D
            y = cls(pool_size=(opts.filterHeight, opts.filterWidth),
                    strides=(opts.strideH, opts.strideW), padding=_padding(opts.padding),
                    name=name)(x)
        elif kind == "MEAN":
            axes = sorted(int(a) % len(g.shape(ins[0])) for a in np.ravel(g.raw(ins[1])))
            if axes != [1, 2] or len(g.shape(ins[0])) != 4:
                raise UnsupportedOpError(f"MEAN '{name}' over axes {axes}; only the spatial "
                                         f"mean (axes 1, 2 of an NHWC tensor) is supported.")
            y = keras.layers.GlobalAveragePooling2D(keepdims=bool(opts.keepDims), name=name)(x)
        elif kind in ("RESHAPE", "SQUEEZE"):
            # The output's static shape is authoritative (the shape input may be computed).
            target = g.shape(out_i)[1:]
            y = keras.layers.Reshape(tuple(target), name=name)(x)
        elif kind == "SOFTMAX":
            beta = float(getattr(opts, "beta", 1.0) or 1.0)
            if abs(beta - 1.0) > 1e-6:
                raise UnsupportedOpError(f"SOFTMAX '{name}' has beta={beta}; only beta=1.")
            y = keras.layers.Softmax(axis=-1, name=name)(x)
        elif kind in ("PAD", "PADV2"):
            pads = np.asarray(g.raw(ins[1])).reshape(-1, 2)
            if len(ins) > 2 and ins[2] >= 0:
                value = g.constant(ins[2])
                if value is not None and np.any(np.asarray(value) != 0):
                    raise UnsupportedOpError(f"PADV2 '{name}' pads with a non-zero value.")
            if pads.shape[0] != 4 or pads[0].any() or pads[3].any():
                raise UnsupportedOpError(f"PAD '{name}' with paddings {pads.tolist()}; only "
                                         f"spatial padding of NHWC tensors is supported.")
            y = keras.layers.ZeroPadding2D(((int(pads[1, 0]), int(pads[1, 1])),
                                            (int(pads[2, 0]), int(pads[2, 1]))), name=name)(x)
        else:  # pragma: no cover - SUPPORTED_OPS and this chain must agree
            raise UnsupportedOpError(f"Operator {kind} is listed as supported but not built.")
        y = self._activation(y, name, act_code, op_i)
        self.values[out_i] = y
        self.points[name] = out_i

    def _weighted(self, op_i, kind, name, x, ins, opts):
        g = self.graph
        w = g.constant(ins[1])
        if w is None:
            raise UnsupportedOpError(f"{kind} '{name}' has computed (non-constant) weights; "
                                     f"only constant weights are supported.")
        bias = None
        if len(ins) > 2 and ins[2] >= 0:
            in_scale, w_scale = self._scale(ins[0]), self._scale(ins[1])
            fallback = None if in_scale is None or w_scale is None else in_scale * w_scale
            bias = g.constant(ins[2], bias_scale=fallback)
            if bias is not None and not np.issubdtype(np.asarray(bias).dtype, np.floating):
                raise WeightsError(f"{kind} '{name}': integer bias without any scale.")
        in_shape = g.shape(ins[0])
        if kind == "FULLY_CONNECTED":
            units, depth = w.shape
            if len(in_shape) != 2:
                if getattr(opts, "keepNumDims", False):
                    raise UnsupportedOpError(f"FULLY_CONNECTED '{name}' with keep_num_dims "
                                             f"on a rank-{len(in_shape)} input.")
                x = keras.layers.Reshape((depth,), name=self.unique(f"{name}_flatten"))(x)
            layer = keras.layers.Dense(units, use_bias=bias is not None, name=name)
            y = layer(x)
            layer.set_weights([w.T] + ([bias] if bias is not None else []))
            return y
        dilation = (int(getattr(opts, "dilationHFactor", 1) or 1),
                    int(getattr(opts, "dilationWFactor", 1) or 1))
        common = dict(strides=(opts.strideH, opts.strideW), padding=_padding(opts.padding),
                      dilation_rate=dilation, use_bias=bias is not None, name=name)
        if kind == "CONV_2D":
            # TFLite filters are [out, kh, kw, in]; Keras kernels [kh, kw, in, out].
            out_ch, kh, kw, in_ch = w.shape
            groups = in_shape[-1] // in_ch
            layer = keras.layers.Conv2D(out_ch, (kh, kw), groups=groups, **common)
            kernel = np.transpose(w, (1, 2, 3, 0))
        else:
            # TFLite depthwise filters are [1, kh, kw, in * multiplier], channel c*m + k.
            _, kh, kw, total = w.shape
            in_ch = in_shape[-1]
            mult = total // in_ch
            layer = keras.layers.DepthwiseConv2D((kh, kw), depth_multiplier=mult, **common)
            kernel = w.reshape(kh, kw, in_ch, mult)
        y = layer(x)
        layer.set_weights([kernel] + ([bias] if bias is not None else []))
        return y


def _padding(code):
    # Padding enum: 0 = SAME (identical to TF's SAME), 1 = VALID.
    return {0: "same", 1: "valid"}[int(code)]


def read_tflite(path):
    """(float Keras model, details dict) for a TFLite file; see `load_tflite`."""
    graph = _Graph(path)
    g = graph.g
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise UnsupportedOpError(f"'{path}' has {len(g.inputs)} inputs and {len(g.outputs)} "
                                 f"outputs; only single-input single-output classifiers.")
    in_i, out_i = int(g.inputs[0]), int(g.outputs[0])
    in_shape = graph.shape(in_i)
    if len(in_shape) != 4:
        raise UnsupportedOpError(f"'{path}' input has shape {in_shape}; expected NHWC images.")
    builder = _Builder(graph)
    inp = keras.Input(tuple(in_shape[1:]), name="input")
    builder.values[in_i] = inp
    out = builder.value(out_i)
    name = os.path.splitext(os.path.basename(path))[0]
    model = keras.Model(inp, out, name=_sanitise(name))
    details = {"input_type": graph.type_name(in_i), "input_quant": _quant(graph.tensor(in_i)),
               "output_type": graph.type_name(out_i), "points": builder.points,
               "relu_aliases": builder.relu_aliases,
               "ops": sorted(set(graph.kinds[graph.producer[t]] for t in builder.points.values()))}
    details.update(builder.final_softmax(out))
    return model, details


def _read_labels(labels, n_out):
    if labels is None:
        if n_out == 1001:
            return ["background"] + imagenet_labels()
        if n_out == 1000:
            return imagenet_labels()
        return None
    if isinstance(labels, str):
        if not os.path.exists(labels):
            raise WeightsError(f"Labels file '{labels}' does not exist.")
        with open(labels) as f:
            labels = [line.rstrip("\n") for line in f]
        while labels and not labels[-1].strip():
            labels.pop()
    labels = list(labels)
    if n_out is not None and len(labels) != n_out:
        raise WeightsError(f"{len(labels)} labels for a model with {n_out} outputs.")
    return labels


def load_tflite(path, labels=None, preprocessing=None):
    """A float `Classifier` built from a (quantised) TFLite image classifier.

    Args:
      path: the .tflite file.
      labels: a labels file (one per line) or list; default: ImageNet labels when the model
        has 1000 outputs, with "background" prepended when it has 1001.
      preprocessing: override of the RGB 0-255 -> input mapping (a preset name or
        `Preprocessing`); by default it is computed from the input quantisation
        (a float-input model defaults to the "tf" preset, [-1, 1], with a warning).
    Returns:
      a `Classifier`; `clf.tflite_tensors` maps each layer to the TFLite tensor it reproduces.
    """
    if not os.path.exists(path):
        raise WeightsError(f"TFLite file '{path}' does not exist.")
    model, details = read_tflite(path)
    if preprocessing is None:
        if details["input_type"] not in ("UINT8", "INT8"):
            warnings.warn(f"'{path}' takes float input: assuming the 'tf' preprocessing "
                          f"(RGB / 127.5 - 1); pass preprocessing= to override.")
        preprocessing = tflite_preprocessing(details["input_type"], details["input_quant"])
    n_out = model.output_shape[-1] if isinstance(model.output_shape, tuple) else None
    aliases = dict(details["relu_aliases"])
    names = {l.name for l in model.layers}
    for alias in ("logits", "softmax"):
        if details.get(alias) and alias not in names:
            aliases[alias] = details[alias]
    clf = Classifier(os.path.splitext(os.path.basename(path))[0], model, preprocessing,
                     aliases=aliases, labels=_read_labels(labels, n_out),
                     weights=os.path.abspath(path))
    clf.tflite_tensors = dict(details["points"])
    return clf
