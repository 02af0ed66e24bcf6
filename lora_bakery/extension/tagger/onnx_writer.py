"""A minimal ONNX writer: ModelProto bytes from plain Python, without the ``onnx`` package.

Why: the A1111 environment pins protobuf 3.20, so ``onnx`` cannot be installed there, yet tests,
``bakery demo`` and the benchmark need a real ``.onnx`` tagger that onnxruntime loads. ONNX files
are protobuf messages; this module encodes the handful of messages a small graph needs, in the
protobuf wire format (varints and length-delimited fields), with the field numbers of
``onnx/onnx.proto`` (onnx/onnx on GitHub; cross-checked against netron's ``onnx-proto.js``).

Field numbers used (message.field = number):

- ModelProto: ir_version=1, producer_name=2, producer_version=3, graph=7, opset_import=8
- OperatorSetIdProto: domain=1, version=2
- GraphProto: node=1, name=2, initializer=5, input=11, output=12
- NodeProto: input=1, output=2, name=3, op_type=4, attribute=5
- AttributeProto: name=1, f=2, i=3, s=4, ints=8, type=20 (FLOAT=1, INT=2, STRING=3, INTS=7)
- TensorProto: dims=1, data_type=2 (FLOAT=1, INT64=7), name=8, raw_data=9 (little-endian)
- ValueInfoProto: name=1, type=2; TypeProto: tensor_type=1; TypeProto.Tensor: elem_type=1, shape=2
- TensorShapeProto: dim=1; Dimension: dim_value=1, dim_param=2

Repeated scalars are written unpacked (one tag per value), which every proto2/proto3 parser accepts.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

FLOAT = 1
INT64 = 7
_NUMPY_TYPES = {np.dtype("float32"): FLOAT, np.dtype("int64"): INT64}

_VARINT, _FIXED32, _BYTES = 0, 5, 2


def _varint(value: int) -> bytes:
    """Protobuf base-128 varint; negative int64 values take their 64-bit two's complement."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire_type: int) -> bytes:
    return _varint((number << 3) | wire_type)


def _int(number: int, value: int) -> bytes:
    return _key(number, _VARINT) + _varint(value)


def _float(number: int, value: float) -> bytes:
    return _key(number, _FIXED32) + struct.pack("<f", value)


def _bytes(number: int, value: bytes | str) -> bytes:
    data = value.encode("utf-8") if isinstance(value, str) else value
    return _key(number, _BYTES) + _varint(len(data)) + data


def tensor(name: str, array: np.ndarray) -> bytes:
    """Encode a TensorProto (initializer) holding ``array`` as little-endian raw data.

    Args:
        name (`str`): the initializer name nodes refer to.
        array (`np.ndarray`): float32 or int64 values.

    Returns:
        `bytes`: the serialised TensorProto.
    """
    array = np.asarray(array)
    data_type = _NUMPY_TYPES[array.dtype]
    out = b"".join(_int(1, d) for d in array.shape)
    out += _int(2, data_type) + _bytes(8, name)
    return out + _bytes(9, array.astype(array.dtype.newbyteorder("<")).tobytes())


def value_info(name: str, shape: Sequence[int | str], elem_type: int = FLOAT) -> bytes:
    """Encode a ValueInfoProto for a graph input/output; ``str`` dims are symbolic (dynamic)."""
    dims = b""
    for dim in shape:
        inner = _bytes(2, dim) if isinstance(dim, str) else _int(1, dim)
        dims += _bytes(1, inner)
    tensor_type = _int(1, elem_type) + _bytes(2, dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


def _attribute(name: str, value: int | float | str | Sequence[int]) -> bytes:
    out = _bytes(1, name)
    if isinstance(value, bool) or isinstance(value, int):
        return out + _int(3, int(value)) + _int(20, 2)
    if isinstance(value, float):
        return out + _float(2, value) + _int(20, 1)
    if isinstance(value, str):
        return out + _bytes(4, value) + _int(20, 3)
    return out + b"".join(_int(8, int(v)) for v in value) + _int(20, 7)


@dataclass
class Node:
    """One graph node: ``op_type(inputs) -> outputs`` with attributes (int, float, str or ints)."""

    op_type: str
    inputs: Sequence[str]
    outputs: Sequence[str]
    attributes: dict[str, int | float | str | Sequence[int]] = field(default_factory=dict)

    def encode(self, index: int) -> bytes:
        out = b"".join(_bytes(1, i) for i in self.inputs)
        out += b"".join(_bytes(2, o) for o in self.outputs)
        out += _bytes(3, f"{self.op_type.lower()}_{index}") + _bytes(4, self.op_type)
        return out + b"".join(_bytes(5, _attribute(k, v)) for k, v in self.attributes.items())


def model(
    nodes: Sequence[Node],
    initializers: dict[str, np.ndarray],
    inputs: Sequence[bytes],
    outputs: Sequence[bytes],
    *,
    graph_name: str = "graph",
    opset: int = 17,
    ir_version: int = 8,
    producer: str = "lora-bakery",
) -> bytes:
    """Serialise a whole ModelProto.

    Args:
        nodes (`Sequence[Node]`): the graph's nodes in topological order.
        initializers (`dict[str, np.ndarray]`): constant tensors by name.
        inputs / outputs (`Sequence[bytes]`): ``value_info(...)`` of the graph inputs and outputs.
        opset (`int`, defaults to 17): default-domain opset; 17 with IR 8 loads in every
            onnxruntime from 1.13 on (the real v3 taggers need ≥ 1.17 anyway).

    Returns:
        `bytes`: the content of a ``.onnx`` file.
    """
    graph = b"".join(_bytes(1, n.encode(i)) for i, n in enumerate(nodes))
    graph += _bytes(2, graph_name)
    graph += b"".join(_bytes(5, tensor(k, v)) for k, v in initializers.items())
    graph += b"".join(_bytes(11, i) for i in inputs)
    graph += b"".join(_bytes(12, o) for o in outputs)
    opset_import = _bytes(1, "") + _int(2, opset)
    return (
        _int(1, ir_version)
        + _bytes(2, producer)
        + _bytes(3, "1")
        + _bytes(7, graph)
        + _bytes(8, opset_import)
    )
