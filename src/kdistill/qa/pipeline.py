"""A transformers pipeline for extractive question answering, since transformers 5 removed ``question-answering``
(``pipeline("question-answering")`` raises, pointing to chat models).

``import kdistill.qa.pipeline`` registers it as ``extractive-question-answering``::

    import kdistill.qa.pipeline  # noqa: F401 - registers the task
    from transformers import pipeline

    qa = pipeline("extractive-question-answering", model="runs/squad-l3")
    qa(question="Who wrote it?", context="The book was written by Jane Austen.")
    # {"answer": "Jane Austen", "score": ..., "start": 24, "end": 35}

Each context is cut into windows of ``max_length`` tokens (default 384, or the model's position limit) overlapping by
``doc_stride`` tokens (default: the ``kdistill_doc_stride`` a kdistill run saved in the config, else 128), all windows
run as one batch, and the answer is :func:`kdistill.serve.best_answers`' — the post-processing of transformers' former
pipeline and ``run_qa``: ``n_best`` start/end candidates, at most ``max_answer_length`` tokens, ``score`` the
probability of the start times the end in the answer's window; with ``null_threshold`` (SQuAD v2.0) an empty answer
when the null score beats the best span by more than it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from transformers import AutoModelForQuestionAnswering, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from kdistill.serve import best_answers

TASK = "extractive-question-answering"


class ExtractiveQAPipeline(Pipeline):
    """``pipe(question=..., context=...)`` or ``pipe({"question": ..., "context": ...})`` → ``{"answer", "score",
    "start", "end"}`` (characters of the context). Options (call or constructor): ``max_length``, ``doc_stride``,
    ``n_best``, ``max_answer_length``, ``null_threshold``.

    Raises:
        ValueError: an input without a question and a context (one line).
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    def __call__(self, inputs=None, *args, question: str | None = None, context: str | None = None, **kwargs):
        if inputs is None:
            inputs = {"question": question, "context": context}
        return super().__call__(inputs, *args, **kwargs)

    def _sanitize_parameters(self, max_length=None, doc_stride=None, n_best=None, max_answer_length=None,
                             null_threshold=None, **_):
        config = self.model.config
        longest = int(getattr(config, "max_position_embeddings", 512) or 512)
        length = max_length or min(384, longest - (2 if config.model_type in ("roberta", "xlm-roberta", "camembert") else 0))
        stride = doc_stride or getattr(config, "kdistill_doc_stride", None) or min(128, length // 3)
        pre = {"max_length": length, "doc_stride": stride}
        post = {"n_best": n_best or 20, "max_answer_length": max_answer_length or 30, "null_threshold": null_threshold}
        return pre, {}, post

    def preprocess(self, inputs: dict, max_length: int = 384, doc_stride: int = 128) -> dict[str, Any]:
        if not isinstance(inputs, dict) or not isinstance(inputs.get("question"), str) \
                or not isinstance(inputs.get("context"), str):
            raise ValueError("extractive question answering takes question= and context= strings (or a dict of both)")
        enc = self.tokenizer(inputs["question"].lstrip(), inputs["context"], truncation="only_second",
                             max_length=max_length, stride=min(doc_stride, max_length - 1),
                             return_overflowing_tokens=True, return_offsets_mapping=True, padding=True,
                             return_tensors="pt")
        offsets = [[tuple(o) if s == 1 else None for o, s in zip(enc["offset_mapping"][w].tolist(), enc.sequence_ids(w))]
                   for w in range(len(enc["input_ids"]))]
        names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        return {"model": {k: enc[k] for k in names}, "offsets": offsets, "context": inputs["context"]}

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        out = self.model(**model_inputs["model"])
        return {"start": out.start_logits, "end": out.end_logits, "offsets": model_inputs["offsets"],
                "context": model_inputs["context"]}

    def postprocess(self, outputs: dict[str, Any], n_best: int = 20, max_answer_length: int = 30,
                    null_threshold: float | None = None) -> dict[str, Any]:
        offsets = outputs["offsets"]
        start, end = (np.asarray(outputs[k].float().numpy()) for k in ("start", "end"))
        best = best_answers([outputs["context"]], [0] * len(offsets), offsets,
                            [s[: len(o)] for s, o in zip(start, offsets)], [e[: len(o)] for e, o in zip(end, offsets)],
                            n_best=n_best, max_answer_length=max_answer_length, null_threshold=null_threshold)[0]
        return {"answer": best["text"], "score": best["probability"], "start": best["start"], "end": best["end"]}


PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=ExtractiveQAPipeline, pt_model=AutoModelForQuestionAnswering,
                                    type="text")

__all__ = ["ExtractiveQAPipeline", "TASK"]
