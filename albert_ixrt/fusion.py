"""onnxruntime's BERT fusion for ALBERT, with every attention layer fused (layer 0 too), and the
check that the installed onnxruntime fused what the model config says it should.

Why a subclass (the only hand-written part, kept to one retry): onnxruntime's ``FusionAttention``
starts from the SkipLayerNormalization after each attention block and looks for the attention
output among its parents with ``match_parent_path(node, ["Add", "MatMul", "Reshape", ...],
[None, ...])``, which takes the *first* input produced by an Add.  In layers 1..11 the residual
operand is a LayerNorm output, so the first Add parent is the attention output projection.  In
layer 0 the residual is ALBERT's embedding projection (``embedding_hidden_mapping_in``: MatMul then
Add), which is input 0, so the matcher follows the embedding projection, fails, and layer 0 stays
unfused (11 of 12 Attention nodes, on every onnxruntime release up to 1.32 at least).

The fix retries the same library matcher with the SkipLayerNormalization's two summed operands
(``input`` and ``skip``) in the other order, and keeps the swap only when the attention fuses.
That is exact: SkipLayerNormalization computes LayerNorm(input + skip + bias), IEEE addition is
commutative, and a successful match proves both operands have the attention input's shape (one is
the attention input, the other the attention output computed from it), so no broadcast changes.
No option or fusion class of onnxruntime covers this (``FusionOptions`` only switches fusions on
and off; the ALBERT ``Einsum`` branch of the matcher is for TensorFlow exports).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

from .config import ONNXRUNTIME_FLOOR, ONNXRUNTIME_FLOOR_REASON
from .errors import AlbertIxrtError

#: FusionOptions model type: ALBERT's encoder is BERT's (the onnxruntime optimizer has no "albert").
FUSION_MODEL_TYPE = "bert"


class FusionCheckError(AlbertIxrtError):
    """The installed onnxruntime fused fewer (or other) ops than the model config implies."""


@dataclass(frozen=True)
class FusionResult:
    model: object            # the onnxruntime OnnxModel (save with save_model_to_file)
    operand_swaps: int       # SkipLayerNormalizations whose operands were swapped (ALBERT: layer 0)


def fuse_albert(model_proto, num_heads: int, hidden_size: int) -> FusionResult:
    """onnxruntime's python BERT fusions (no onnxruntime session passes: ``optimize_model`` at
    opt_level 0 does exactly this), with ``AlbertAttentionFusion`` in place of FusionAttention."""
    import onnxruntime
    import onnxruntime.transformers.onnx_model_bert as bert

    fusion_cls = _attention_fusion_class(bert.FusionAttention)
    with quiet_onnxruntime_logs():
        optimizer = bert.BertOnnxModel(model_proto, num_heads, hidden_size)
        attention = fusion_cls(optimizer, optimizer.hidden_size, optimizer.num_heads, optimizer.attention_mask)
        optimizer.attention_fusion = attention
        optimizer.optimize(bert.FusionOptions(FUSION_MODEL_TYPE))
        optimizer.topological_sort()
    optimizer.model.producer_name = "onnxruntime.transformers"
    optimizer.model.producer_version = onnxruntime.__version__
    return FusionResult(optimizer, getattr(attention, "swapped", 0))


def _attention_fusion_class(base):
    """Built at call time: onnxruntime.transformers imports its modules as top-level names
    (``fusion_attention``), so the base class is taken from the module BertOnnxModel uses."""

    class AlbertAttentionFusion(base):
        """FusionAttention that also tries the other operand order of a SkipLayerNormalization
        (see the module docstring: ALBERT's layer 0)."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.swapped = 0

        def fuse(self, node, input_name_to_nodes, output_name_to_node):
            before = len(self.nodes_to_add)
            super().fuse(node, input_name_to_nodes, output_name_to_node)
            if len(self.nodes_to_add) > before or node.op_type != "SkipLayerNormalization" or len(node.input) < 2:
                return
            node.input[0], node.input[1] = node.input[1], node.input[0]
            super().fuse(node, input_name_to_nodes, output_name_to_node)
            if len(self.nodes_to_add) > before:
                self.swapped += 1
            else:
                node.input[0], node.input[1] = node.input[1], node.input[0]

    return AlbertAttentionFusion


@contextlib.contextmanager
def quiet_onnxruntime_logs():
    """onnxruntime's transformer tools log every fusion at INFO/WARNING, under top-level logger
    names (``fusion_attention``, ``onnx_model_bert``, ...: they put their folder on sys.path), so
    no single parent logger silences them.  The manifest records what they would say (fused-op
    counts), so logging below ERROR is switched off while they run."""
    import logging

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


# ---------------------------------------------------------------------------------------------
# The fused-op check: a stack that fuses less fails at convert, with one line
# ---------------------------------------------------------------------------------------------
def fusion_shortfall(fused_ops: dict[str, int], expected: dict[str, int]) -> list[str]:
    """``"Attention 0 of 12"``-style lines for every expected op whose count differs."""
    return [f"{op} {fused_ops.get(op, 0)} of {want}" for op, want in expected.items() if fused_ops.get(op, 0) != want]


def check_fusion(fused_ops: dict[str, int], expected: dict[str, int], ort_version: str | None = None) -> None:
    """Raise one clear line when the fused graph lacks the ops the model config implies."""
    missing = fusion_shortfall(fused_ops, expected)
    if not missing:
        return
    if ort_version is None:
        import onnxruntime

        ort_version = onnxruntime.__version__
    from packaging.version import InvalidVersion, Version

    try:
        below = Version(ort_version) < Version(ONNXRUNTIME_FLOOR)
    except InvalidVersion:
        below = True
    advice = (f"install onnxruntime>={ONNXRUNTIME_FLOOR} ({ONNXRUNTIME_FLOOR_REASON})" if below else
              f"the floor is onnxruntime>={ONNXRUNTIME_FLOOR}, so its fusion patterns changed: pin a release "
              f"that fuses this model")
    raise FusionCheckError(f"onnxruntime {ort_version} fused {', '.join(missing)} expected from the model config; "
                           f"{advice}")
