"""Recipe ``mlm-head``: fit a masked-LM head onto a frozen encoder that ships none (``kdistill fit-mlm-head``).

all-MiniLM-L6-v2 and all-mpnet-base-v2 come without the masked-LM head DistilBERT's general distillation needs from
its teacher. This recipe builds the model's ``AutoModelForMaskedLM`` (the decoder tied to the input embeddings, as in
BERT), freezes the whole encoder (and so the tied decoder weights), and trains only the head's transform layer and
output bias with the masked-LM loss on dynamically masked text. The first ``eval_passages`` passages are held out; the
head's masked-token accuracy on them is written to ``mlm_head.json``. A head fitted this way sees only the frozen
encoder's last layer: it is a weaker teacher signal than a head pretrained with the encoder.
"""

from __future__ import annotations

from kdistill.recipes.base import Prepared, Recipe, Stage, register


def load_mlm_head(cfg) -> Prepared:
    from kdistill.data.masking import Masker
    from kdistill.data.streaming import count_passages, stream_loader, text_stream
    from kdistill.errors import DataError
    from kdistill.models import load_mlm, load_tokenizer
    from kdistill.objectives import Objective, make_term

    n = count_passages(cfg.text_files)
    if n <= cfg.eval_passages:
        raise DataError(f"the text files hold {n} passages, not more than the {cfg.eval_passages} held out: pass more text "
                        "or a smaller --eval-passages")
    model = load_mlm(cfg.student.path, "model", require_head=False)
    tokenizer = load_tokenizer(cfg.student.path)
    model.base_model.requires_grad_(False)  # the encoder (and the decoder tied to its embeddings) stays as it is
    objective = Objective("mlm-head", None, [("mlm", 1.0, make_term("mlm"))], select_best=False,
                          uses_all_parameters=False, prepare_batch=Masker(tokenizer))
    stream = text_stream(tokenizer, files=cfg.text_files, max_length=cfg.max_length, seed=cfg.train.seed,
                         skip=cfg.eval_passages)
    loader = stream_loader(stream, tokenizer, batch_size=cfg.train.batch_size)
    return Prepared(cfg=cfg, task=None, tokenizer=tokenizer, student=model, loader=loader,
                    info={"objective": objective})


def masked_token_accuracy(model, tokenizer, passages: list[str], *, max_length: int, seed: int = 0,
                          batch_size: int = 32) -> float:
    """Share of masked positions whose arg-max prediction is the original token (BERT's masking, seeded), over
    ``passages``."""
    import torch

    from kdistill.data.masking import Masker

    masker, hits, total = Masker(tokenizer), 0, 0
    gen = torch.Generator().manual_seed(seed)
    was = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(passages), batch_size):
            enc = tokenizer(passages[start:start + batch_size], truncation=True, max_length=max_length, padding=True,
                            return_tensors="pt")
            batch = masker(dict(enc), gen)
            labels = batch.pop("labels")
            logits = model(**{k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}).logits
            where = labels != -100
            hits += int((logits.argmax(-1)[where] == labels[where]).sum())
            total += int(where.sum())
    model.train(was)
    return hits / total if total else float("nan")


def mlm_head_summary(p: Prepared, result) -> dict:
    from kdistill.data.streaming import first_passages

    cfg = p.cfg
    held_out = first_passages(cfg.text_files, cfg.eval_passages)
    acc = masked_token_accuracy(p.student, p.tokenizer, held_out, max_length=cfg.max_length, seed=cfg.train.seed)
    decoder = p.student.get_output_embeddings().weight
    tied = decoder.data_ptr() == p.student.get_input_embeddings().weight.data_ptr()
    return {"method": "mlm-head", "masked_token_accuracy": acc, "eval_passages": len(held_out),
            "decoder_tied_to_embeddings": tied, "model": cfg.student.path,
            "note": "head fitted onto a frozen encoder: a weaker teacher signal than a pretrained one"}


MLM_HEAD = register(Recipe(
    name="mlm-head", students=("pretrained",), load=load_mlm_head,
    stages=lambda p: [Stage("", lambda p: p.info["objective"], lambda p: p.cfg.train)], summary=mlm_head_summary,
))
