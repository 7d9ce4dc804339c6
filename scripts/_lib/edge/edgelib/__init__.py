"""Shared code for the edge-inference script family (digits MLP/CNN, ONNX, cascade).

Kept split by heavy dependency so that ONNX-only scripts never import torch:
``models`` needs torch, ``ort`` needs onnxruntime, ``data`` and ``stats`` only numpy.
"""
