"""TensorFlow and Keras 3 (TensorFlow backend) built-ins: eager, ``@function`` and ``@xla``.

TensorFlow is imported inside each function. ``@function`` is ``tf.function(fn)`` and ``@xla``
``tf.function(fn, jit_compile=True)``, built on the first call (one trace per shape and dtype).
The axis is always passed: ``tf.math.reduce_logsumexp`` reduces over everything by default.
Keras losses are built with ``reduction=None`` (per row); they compute in their ``dtype``,
which defaults to ``keras.backend.floatx()`` = float32, so their output is float32 whatever
the input dtype (float64 logits are narrowed) -- scored against that output dtype.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

from harness.registry import Implementation
from harness.vocabulary import DTYPE_NAMES
from harness.worker.impls import with_modes

DEVICES = ("cpu", "cuda")


def tf_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    import tensorflow as tf

    return tf.function(fn)


def tf_xla(fn: Callable[..., Any]) -> Callable[..., Any]:
    import tensorflow as tf

    return tf.function(fn, jit_compile=True)


MODES = {"function": tf_function, "xla": tf_xla}


def softmax(x: Any) -> Any:
    import tensorflow as tf

    return tf.nn.softmax(x, axis=-1)


def log_softmax(x: Any) -> Any:
    import tensorflow as tf

    return tf.nn.log_softmax(x, axis=-1)


def reduce_logsumexp(x: Any) -> Any:
    import tensorflow as tf

    return tf.math.reduce_logsumexp(x, axis=-1)


def softmax_cross_entropy_with_logits(x: Any, labels: Any) -> Any:
    import tensorflow as tf

    return tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=x, axis=-1)


def sparse_softmax_cross_entropy_with_logits(x: Any, labels: Any) -> Any:
    import tensorflow as tf

    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=x)


@functools.cache
def _keras_loss(kind: str) -> Any:
    keras = importlib.import_module("keras")  # untyped; found, not imported, at listing
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"keras runs on the {keras.backend.backend()!r} backend in this "
                           "process; the keras.* built-ins of the TensorFlow worker need "
                           "KERAS_BACKEND=tensorflow before keras is first imported")
    loss_class = getattr(keras.losses, kind)
    return loss_class(from_logits=True, reduction=None)


def keras_categorical_crossentropy(x: Any, labels: Any) -> Any:
    return _keras_loss("CategoricalCrossentropy")(y_true=labels, y_pred=x)


def keras_sparse_categorical_crossentropy(x: Any, labels: Any) -> Any:
    return _keras_loss("SparseCategoricalCrossentropy")(y_true=labels, y_pred=x)


def composed_pick(x: Any, labels: Any) -> Any:
    import tensorflow as tf

    log_p = tf.math.log(tf.nn.softmax(x, axis=-1))
    picked = tf.gather(log_p, tf.expand_dims(labels, -1), axis=-1,
                       batch_dims=len(labels.shape))
    return -tf.squeeze(picked, axis=-1)


def composed_dot(x: Any, labels: Any) -> Any:
    import tensorflow as tf

    return -tf.reduce_sum(labels * tf.math.log(tf.nn.softmax(x, axis=-1)), axis=-1)


def implementations() -> list[Implementation]:
    def entry(name: str, op: str, fn: Callable[..., Any], description: str
              ) -> list[Implementation]:
        return with_modes(name, op, "tensorflow", fn, modes=MODES, dtypes=DTYPE_NAMES,
                          devices=DEVICES, description=description)

    impls = [
        *entry("tensorflow.nn.softmax", "softmax", softmax,
               "tf.nn.softmax(x, axis=-1); CPU kernel in the input dtype, multiplies by 1/sum"),
        *entry("tensorflow.nn.log_softmax", "log_softmax", log_softmax,
               "tf.nn.log_softmax(x, axis=-1): (x - max) - log(sum(exp(x - max)))"),
        *entry("tensorflow.math.reduce_logsumexp", "logsumexp", reduce_logsumexp,
               "tf.math.reduce_logsumexp(x, axis=-1): log(sum(exp(x - max))) + max, no upcast"),
        *entry("tensorflow.nn.softmax_cross_entropy_with_logits", "softmax_cross_entropy",
               softmax_cross_entropy_with_logits,
               "tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=x, axis=-1); logits "
               "gradient p - y"),
        *entry("tensorflow.nn.sparse_softmax_cross_entropy_with_logits",
               "sparse_softmax_cross_entropy", sparse_softmax_cross_entropy_with_logits,
               "tf.nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x)"),
        *entry("tensorflow.composed_softmax_log_pick", "sparse_softmax_cross_entropy",
               composed_pick,
               "-tf.gather(tf.math.log(tf.nn.softmax(x)), t, batch_dims): composed, unfused"),
        *entry("tensorflow.composed_softmax_log_dot", "softmax_cross_entropy", composed_dot,
               "-tf.reduce_sum(y * tf.math.log(tf.nn.softmax(x)), -1): composed, unfused"),
    ]
    if importlib.util.find_spec("keras") is not None:  # found, not imported
        impls += [
            *entry("keras.losses.CategoricalCrossentropy(from_logits=True)",
                   "softmax_cross_entropy", keras_categorical_crossentropy,
                   "keras.losses.CategoricalCrossentropy(from_logits=True, reduction=None)(y, x)"
                   " on the TensorFlow backend; computes and returns float32"),
            *entry("keras.losses.SparseCategoricalCrossentropy(from_logits=True)",
                   "sparse_softmax_cross_entropy", keras_sparse_categorical_crossentropy,
                   "keras.losses.SparseCategoricalCrossentropy(from_logits=True, "
                   "reduction=None)(t, x) on the TensorFlow backend; computes and returns "
                   "float32"),
        ]
    return impls
