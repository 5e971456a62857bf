"""Deployment: a saved classifier → a verified ONNX Runtime folder (fp32 and int8), measured like for like.

* :func:`kdistill.deploy.export.export_model` — ``kdistill export``: export, parity check, optional transformer
  fusions, dynamic / static (QDQ) / auto int8 behind an accuracy gate, tokenizer, ``predict.py``, model card;
* :mod:`kdistill.deploy.graph` — the ONNX graph and ONNX Runtime's optimizer and quantizers;
* :mod:`kdistill.deploy.runtime` — ORT sessions (spinning off for timing) and :class:`OrtModel`, an ORT graph with a
  module face, so the engine's ``predict`` and the report's interleaved timing treat it like a PyTorch model;
* :mod:`kdistill.deploy.variants` — eager / ORT fp32 / ORT int8 variants of a model for the report;
* serving needs none of this: :mod:`kdistill.serve` imports only onnxruntime, tokenizers and numpy.
"""
