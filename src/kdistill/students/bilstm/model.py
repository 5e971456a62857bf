"""BiLSTM students of Tang et al. (2019), "Distilling Task-Specific Knowledge from BERT into Simple Neural Networks".

(Just over 500 lines: the configuration, the model and its save/load belong together; the word
vectors, ONNX export and the builder live beside it.)

Paper Sec. 3, "Model Architecture" (Figs. 1 and 2):

* single sentence: word embeddings → one bidirectional LSTM layer → the final forward and
  backward hidden states concatenated (``h = [h_fwd; h_bwd]``, ``[B, 2H]``) → a ReLU
  fully-connected layer → a linear layer giving the logits ``[B, C]``;
* sentence pair: the *same* (siamese) BiLSTM encodes both sentences to ``u`` and ``v``;
  ``f(u, v) = [u, v, u ⊙ v, |u − v|]`` (``[B, 8H]``) → ReLU FC → logits;
* embeddings: word2vec vectors in a *multichannel* setup (Kim 2014): one frozen
  ("static") and one trainable ("non-static") copy of the same table. Here the two channels'
  vectors are **summed** by default (``multichannel_merge="sum"``: Kim's one-filter-over-both-
  channels rule, LSTM input width ``E``), or concatenated (``"concat"``, width ``2E``).

The student reads the **teacher's tokenisation** (the engine feeds it ``input_ids``,
``attention_mask``, ``token_type_ids`` of the BERT-style encoding ``[CLS] a [SEP] b [SEP]``),
so the data pipeline, the teacher-logit cache and augmentation are shared with the
transformer students. Inside :meth:`BiLSTMForSequenceClassification.forward`:

* **special tokens** — every position whose id is in ``config.drop_token_ids`` (``[CLS]``,
  ``[SEP]``, ``[PAD]``, ``<s>``, ``</s>``, … — see :meth:`BiLSTMConfig.from_tokenizer`) or whose
  ``attention_mask`` is 0 is removed; the remaining tokens are moved to the front of each
  row in their original order (a stable sort on the keep-mask), so the LSTM reads only the
  sentence's word pieces. ``[MASK]`` and ``[UNK]`` are kept (augmented text contains ``[MASK]``).
  Unlike the paper (a word-level word2vec vocabulary) the units are the teacher's WordPiece pieces.
* **packing** — the compacted rows go through :func:`torch.nn.utils.rnn.pack_padded_sequence`
  with their true lengths, so neither direction ever reads a padding position: the logits of
  a sentence do not depend on how much padding its batch has.
  :func:`~kdistill.students.bilstm.onnx.export_onnx` switches to an equivalent unpacked computation
  (ONNX has no packed sequences).
* **pair split** — a position belongs to the second sentence when its ``token_type_ids`` is 1;
  rows without any type-1 token (tokenizers such as RoBERTa's return no segment ids) are split
  after the first ``config.sep_token_id`` instead.

Weights are saved as Hugging Face-style folders (``config.json`` with
``"model_type": "kdistill-bilstm"`` + ``model.safetensors``); :func:`load_student` dispatches
between this class and ``AutoModelForSequenceClassification``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from transformers import AutoConfig, PreTrainedConfig
from transformers.modeling_outputs import SequenceClassifierOutput

from kdistill.errors import ModelError
from kdistill.students.bilstm.word_vectors import WordVectors

MODEL_TYPE = "kdistill-bilstm"
EMBEDDING_MODES = ("trainable", "frozen", "multichannel")
MULTICHANNEL_MERGES = ("sum", "concat")
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

# Tang et al. (2019), Sec. 4 (experimental setup): BiLSTM hidden size 150 and ReLU layer 200 for single sentences,
# 300 and 400 for sentence pairs (the pair features are 4x wider).
PAPER_SIZES = {False: (150, 200), True: (300, 400)}


class BiLSTMConfig(PreTrainedConfig):
    """Configuration of :class:`BiLSTMForSequenceClassification` (a ``PreTrainedConfig``, so it has
    ``num_labels``, ``id2label``, ``label2id``, ``problem_type`` and JSON round-trips).

    Attributes:
        vocab_size: rows of the embedding table(s); the teacher tokenizer's ``len(tokenizer)``.
        embedding_dim: word-vector width ``E`` (300 for word2vec; the teacher's width when copied
            from it, see :func:`from_teacher_embeddings`).
        hidden_size: LSTM hidden size ``H`` per direction; ``None`` = paper default
            (150 single sentence, 300 pair; Tang et al. 2019, Sec. 4).
        fc_size: width of the ReLU layer; ``None`` = paper default (200 single, 400 pair).
        pair: sentence-pair model (siamese encoder, features ``[u, v, u⊙v, |u−v|]``).
        embedding_mode: ``"trainable"`` (one fine-tuned table), ``"frozen"`` (one fixed table) or
            ``"multichannel"`` (two tables initialised identically, one frozen and one trainable;
            Kim 2014, used by Tang et al. 2019, Sec. 3 "Model Architecture").
        multichannel_merge: how the two channels are combined: ``"sum"`` (default; the LSTM input
            stays ``E`` wide — Kim's rule of applying one filter to both channels and adding the
            results) or ``"concat"`` (``2E`` wide, separate LSTM input weights per channel).
        dropout: dropout probability on the embeddings and on the ReLU layer's output.
        pad_token_id: the tokenizer's padding id (the one dropped when ``drop_token_ids`` is ``None``).
        sep_token_id: separator id, used to split pairs when ``token_type_ids`` are absent.
        drop_token_ids: ids removed before the LSTM (``[CLS]``, ``[SEP]``, ``[PAD]``, ...);
            ``None`` = only ``pad_token_id``.
    """

    model_type = MODEL_TYPE

    vocab_size: int = 30522
    embedding_dim: int = 300
    hidden_size: int | None = None
    fc_size: int | None = None
    pair: bool = False
    embedding_mode: str = "multichannel"
    multichannel_merge: str = "sum"
    dropout: float = 0.1
    pad_token_id: int | None = 0
    sep_token_id: int | None = None
    drop_token_ids: list[int] | None = None

    @classmethod
    def from_tokenizer(cls, tokenizer, **kwargs) -> "BiLSTMConfig":
        """A config whose vocabulary and special-token ids come from a Hugging Face tokenizer.

        ``vocab_size = len(tokenizer)``; ``drop_token_ids`` are the tokenizer's CLS, SEP, PAD,
        BOS and EOS ids (``[MASK]`` and ``[UNK]`` stay in the LSTM input). ``kwargs`` override
        any field (e.g. ``num_labels=2, pair=True, embedding_dim=300``).
        """
        specials = [getattr(tokenizer, f"{name}_token_id", None) for name in ("cls", "sep", "pad", "bos", "eos")]
        defaults: dict[str, Any] = {
            "vocab_size": len(tokenizer),
            "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
            "sep_token_id": getattr(tokenizer, "sep_token_id", None),
            "drop_token_ids": sorted({int(i) for i in specials if i is not None}),
        }
        defaults.update(kwargs)
        return cls(**defaults)


AutoConfig.register(MODEL_TYPE, BiLSTMConfig, exist_ok=True)


def _check_config(config: BiLSTMConfig) -> None:
    """Raise :class:`ModelError` for an unusable config; fill in the paper's default sizes."""
    if not isinstance(config, BiLSTMConfig):
        raise ModelError(f"BiLSTMForSequenceClassification needs a BiLSTMConfig, got {type(config).__name__}")
    if config.embedding_mode not in EMBEDDING_MODES:
        raise ModelError(f"embedding_mode must be one of {', '.join(EMBEDDING_MODES)}, got '{config.embedding_mode}'")
    if config.multichannel_merge not in MULTICHANNEL_MERGES:
        raise ModelError(
            f"multichannel_merge must be one of {', '.join(MULTICHANNEL_MERGES)}, got '{config.multichannel_merge}'"
        )
    hidden, fc = PAPER_SIZES[bool(config.pair)]
    config.hidden_size = hidden if config.hidden_size is None else int(config.hidden_size)
    config.fc_size = fc if config.fc_size is None else int(config.fc_size)
    sizes = {"vocab_size": config.vocab_size, "embedding_dim": config.embedding_dim, "hidden_size": config.hidden_size,
             "fc_size": config.fc_size, "num_labels": config.num_labels}
    bad = {k: v for k, v in sizes.items() if not isinstance(v, int) or v < 1}
    if bad:
        raise ModelError(f"BiLSTM sizes must be positive integers, got {bad}")
    if not 0.0 <= float(config.dropout) < 1.0:
        raise ModelError(f"dropout must be in [0, 1), got {config.dropout}")
    if config.label2id is None and config.id2label is not None:
        config.label2id = {label: int(i) for i, label in config.id2label.items()}


class BiLSTMForSequenceClassification(nn.Module):
    """Tang et al. (2019) BiLSTM student (Sec. 3, "Model Architecture") with the engine's calling convention.

    ``student(input_ids=..., attention_mask=..., token_type_ids=...)`` returns a
    :class:`~transformers.modeling_outputs.SequenceClassifierOutput` whose ``logits`` are ``[B, C]``,
    exactly like a Hugging Face sequence classifier, and :meth:`save_pretrained` /
    :meth:`from_pretrained` write and read the same folder layout.

    Modules: ``embedding`` (trainable unless ``embedding_mode="frozen"``), ``embedding_static``
    (``multichannel`` only, always frozen), ``lstm`` (1 layer, bidirectional, ``batch_first``),
    ``fc`` (ReLU layer) and ``classifier`` (logits).
    """

    config_class = BiLSTMConfig
    main_input_name = "input_ids"

    def __init__(self, config: BiLSTMConfig):
        super().__init__()
        _check_config(config)
        self.config = config
        V, E, H = config.vocab_size, config.embedding_dim, config.hidden_size
        self.embedding = nn.Embedding(V, E)
        nn.init.normal_(self.embedding.weight, std=0.1)
        self.embedding_static: nn.Embedding | None = None
        if config.embedding_mode == "multichannel":
            self.embedding_static = nn.Embedding(V, E)
            with torch.no_grad():
                self.embedding_static.weight.copy_(self.embedding.weight)
        self.set_embedding_mode(config.embedding_mode)
        lstm_in = 2 * E if config.embedding_mode == "multichannel" and config.multichannel_merge == "concat" else E
        self.lstm = nn.LSTM(lstm_in, H, num_layers=1, batch_first=True, bidirectional=True)
        features = 2 * H * (4 if config.pair else 1)
        self.dropout = nn.Dropout(float(config.dropout))
        self.fc = nn.Linear(features, config.fc_size)
        self.classifier = nn.Linear(config.fc_size, config.num_labels)
        drop = config.drop_token_ids if config.drop_token_ids is not None else [config.pad_token_id or 0]
        self.pack_sequences = True  # False: ONNX-exportable path of :meth:`encode` (same numbers)
        self.register_buffer("drop_ids", torch.tensor(sorted({int(i) for i in drop}) or [-1], dtype=torch.long),
                             persistent=False)

    # ------------------------------------------------------------------ embeddings
    def get_input_embeddings(self) -> nn.Embedding:
        """The trainable (``"frozen"`` mode: the only) word-embedding table, ``[V, E]``."""
        return self.embedding

    def set_embedding_mode(self, mode: str) -> None:
        """Set ``requires_grad`` of the tables for ``mode`` (the static channel is always frozen).

        Raises:
            ModelError: unknown mode, or switching to/from ``"multichannel"`` (a different module layout).
        """
        if mode not in EMBEDDING_MODES:
            raise ModelError(f"embedding_mode must be one of {', '.join(EMBEDDING_MODES)}, got '{mode}'")
        if (mode == "multichannel") != (self.embedding_static is not None):
            raise ModelError("cannot switch to or from 'multichannel' on a built model; build a new one with that embedding_mode")
        self.config.embedding_mode = mode
        self.embedding.weight.requires_grad_(mode != "frozen")
        if self.embedding_static is not None:
            self.embedding_static.weight.requires_grad_(False)

    @torch.no_grad()
    def init_embeddings(self, vectors: "torch.Tensor | WordVectors") -> None:
        """Copy ``vectors`` (``[V, E]``, or a :class:`WordVectors`) into every embedding table.

        Raises:
            ModelError: if the shape is not ``[vocab_size, embedding_dim]``.
        """
        weight = vectors.weight if isinstance(vectors, WordVectors) else torch.as_tensor(vectors)
        expected = (self.config.vocab_size, self.config.embedding_dim)
        if tuple(weight.shape) != expected:
            raise ModelError(
                f"embedding vectors have shape {tuple(weight.shape)} but the student needs {expected}; "
                "build the config with vocab_size=len(tokenizer) and embedding_dim=the vectors' width"
            )
        self.embedding.weight.copy_(weight)
        if self.embedding_static is not None:
            self.embedding_static.weight.copy_(weight)

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` ids → ``[B, T, E]`` (or ``[B, T, 2E]`` for concatenated channels)."""
        x = self.embedding(ids)
        if self.embedding_static is not None:
            static = self.embedding_static(ids)
            x = x + static if self.config.multichannel_merge == "sum" else torch.cat([x, static], dim=-1)
        return x

    # ------------------------------------------------------------------ encoding
    def _keep_mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """``[B, L]`` bool: real, non-special tokens (the LSTM's input)."""
        keep = ~(input_ids.unsqueeze(-1) == self.drop_ids).any(-1)
        if attention_mask is not None:
            keep = keep & attention_mask.bool()
        return keep

    def _second_segment(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
                        keep: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` bool: positions of the pair's second sentence (see the module docstring)."""
        after_sep = None
        if self.config.sep_token_id is not None:
            is_sep = (input_ids == int(self.config.sep_token_id)).long()
            after_sep = (is_sep.cumsum(1) - is_sep) > 0
        if token_type_ids is not None:
            by_type = token_type_ids > 0
            if after_sep is None:
                return by_type
            has_type = (by_type & keep).any(1, keepdim=True)
            return (has_type & by_type) | (~has_type & after_sep)  # (no bool Where: ONNX Runtime lacks it)
        if after_sep is None:
            raise ModelError("a pair BiLSTM needs token_type_ids or config.sep_token_id to split the pair; "
                             "pass the tokenizer's token_type_ids or build the config with BiLSTMConfig.from_tokenizer")
        return after_sep

    @staticmethod
    def _compact(input_ids: torch.Tensor, keep: torch.Tensor, reverse: bool = False) -> torch.Tensor:
        """Permute each row of ``input_ids`` ``[B, L]`` so the kept tokens come first, in their original
        order (``reverse=False``) or reversed (``reverse=True``), followed by the dropped ones.

        Equivalent to a stable sort on the keep-mask, but built from ``cumsum``/``scatter`` so
        that it also exports to ONNX.
        """
        k = keep.long()
        lengths = k.sum(1, keepdim=True)
        kept_rank = k.cumsum(1) - 1
        drop_rank = (1 - k).cumsum(1) - 1
        dest = torch.where(keep, lengths - 1 - kept_rank if reverse else kept_rank, lengths + drop_rank)
        return torch.zeros_like(input_ids).scatter(1, dest, input_ids)

    def encode(self, input_ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Encode the kept tokens of each row with the BiLSTM.

        With ``self.pack_sequences`` (the default) the compacted rows are packed with their true
        lengths. Otherwise (used by :func:`~kdistill.students.bilstm.onnx.export_onnx`; ONNX has no
        packed sequences) each direction runs over its own compaction — the forward weights over
        the sentence, the backward weights over the reversed sentence, padding after the last word
        in both — and the state after the last real word is gathered: the same numbers, still
        without reading padding, but computed over all ``L`` positions.

        Args:
            input_ids: ``[B, L]`` token ids.
            keep: ``[B, L]`` bool, the positions that form the sentence (any pattern; order is kept).

        Returns:
            ``[B, 2H]``: final forward state ``h_fwd`` (after the last kept token) concatenated
            with the final backward state ``h_bwd`` (after the first kept token); a zero vector
            for a row with no kept token.
        """
        lengths = keep.sum(1)  # [B]
        if self.pack_sequences:
            compact = self._compact(input_ids, keep)
            compact = compact[:, : max(int(lengths.max()) if lengths.numel() else 0, 1)]
            x = self.dropout(self._embed(compact))  # [B, T, E]
            packed = pack_padded_sequence(x, lengths.clamp_min(1).cpu(), batch_first=True, enforce_sorted=False)
            _, (h_n, _) = self.lstm(packed)  # h_n: [2, B, H], already back in batch order
            h = torch.cat([h_n[0], h_n[1]], dim=-1)
        else:
            H = self.lstm.hidden_size
            last = (lengths - 1).clamp_min(0).view(-1, 1, 1).expand(-1, 1, H)
            finals = []
            for reverse, suffix in ((False, ""), (True, "_reverse")):
                x = self.dropout(self._embed(self._compact(input_ids, keep, reverse)))
                weights = [getattr(self.lstm, f"{n}_l0{suffix}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
                h0 = x.new_zeros(1, x.size(0), H)
                out = torch.lstm(x, (h0, h0), weights, True, 1, 0.0, False, False, True)[0]  # [B, L, H]
                finals.append(out.gather(1, last).squeeze(1))
            h = torch.cat(finals, dim=-1)
        return h * (lengths > 0).unsqueeze(-1).to(h.dtype)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = False,
        return_dict: bool | None = True,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        """Classify a batch of BERT-style encodings.

        Args:
            input_ids: ``[B, L]`` ids of the teacher's tokenizer (``[CLS] a [SEP] (b [SEP])``, padded).
            attention_mask: ``[B, L]``, 1 for real tokens, 0 for padding; ``None`` = all real
                (padding ids in ``drop_token_ids`` are removed anyway).
            token_type_ids: ``[B, L]`` segment ids; pair models use them to split the pair.
            labels: ``[B]`` class ids (cross-entropy), or ``[B]`` floats for ``num_labels == 1``
                (MSE); when given, ``loss`` is filled in as in Hugging Face classifiers.
            output_hidden_states: also return ``hidden_states = (features [B, F], relu_layer [B, fc_size])``
                where ``F = 2H`` (single) or ``8H`` (pair). These are sentence-level vectors, not
                per-token states: hidden-state distillation losses do not apply to this student.
            return_dict, kwargs: accepted for interface compatibility and ignored (e.g. ``position_ids``).

        Returns:
            ``SequenceClassifierOutput`` with ``logits`` ``[B, C]`` (and ``loss``, ``hidden_states``).

        Raises:
            ModelError: a pair model given neither ``token_type_ids`` nor a ``sep_token_id`` in its config.
        """
        keep = self._keep_mask(input_ids, attention_mask)
        if self.config.pair:
            second = self._second_segment(input_ids, token_type_ids, keep)
            # One batched pass of the shared (siamese) encoder over both sides.
            both = self.encode(torch.cat([input_ids, input_ids]), torch.cat([keep & ~second, keep & second]))
            u, v = both.chunk(2, dim=0)
            features = torch.cat([u, v, u * v, (u - v).abs()], dim=-1)
        else:
            features = self.encode(input_ids, keep)
        hidden = self.dropout(F.relu(self.fc(features)))
        logits = self.classifier(hidden)
        loss = self._loss(logits, labels) if labels is not None else None
        states = (features, hidden) if output_hidden_states else None
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=states)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if cfg.problem_type is None:
            if cfg.num_labels == 1:
                cfg.problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int):
                cfg.problem_type = "single_label_classification"
            else:
                cfg.problem_type = "multi_label_classification"
        if cfg.problem_type == "regression":
            return F.mse_loss(logits.squeeze(-1).float(), labels.float().reshape(-1))
        if cfg.problem_type == "single_label_classification":
            return F.cross_entropy(logits.float(), labels.long().reshape(-1))
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())

    # ------------------------------------------------------------------ helpers
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def num_parameters(self, only_trainable: bool = False) -> int:
        """Number of (trainable, if asked) parameter scalars."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not only_trainable)

    # ------------------------------------------------------------------ save / load
    def save_pretrained(self, save_directory: str | Path, **kwargs: Any) -> None:
        """Write ``config.json`` (``model_type`` ``kdistill-bilstm``) and ``model.safetensors`` to a folder.

        Extra keyword arguments of ``PreTrainedModel.save_pretrained`` (``safe_serialization``, ...) are ignored.
        """
        out = Path(save_directory)
        out.mkdir(parents=True, exist_ok=True)
        self.config.architectures = [type(self).__name__]
        self.config.save_pretrained(out)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(out / WEIGHTS_NAME), metadata={"format": "pt"})

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs: Any) -> "BiLSTMForSequenceClassification":
        """Load a folder written by :meth:`save_pretrained` (eval mode, CPU).

        Raises:
            ModelError: no ``config.json``/``model.safetensors`` there, another model type, or mismatched weights.
        """
        path = Path(path)
        model_type = _model_type(path)
        if model_type != MODEL_TYPE:
            raise ModelError(f"{path} holds a '{model_type}' model, not a BiLSTM student; load it with load_student()")
        if not (path / WEIGHTS_NAME).exists():
            raise ModelError(f"{path} has no {WEIGHTS_NAME}; point to a folder written by save_pretrained()")
        config = BiLSTMConfig.from_pretrained(str(path))
        model = cls(config)
        try:
            model.load_state_dict(load_file(str(path / WEIGHTS_NAME)), strict=True)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[-1].strip()
            raise ModelError(f"weights in {path} do not match its config.json ({first}); re-save the student") from None
        return model.eval()


def _model_type(path: Path) -> str | None:
    cfg_file = path / CONFIG_NAME
    if not cfg_file.is_file():
        raise ModelError(f"no {CONFIG_NAME} in {path}; point to a saved model folder")
    try:
        return json.loads(cfg_file.read_text()).get("model_type")
    except (json.JSONDecodeError, AttributeError):
        raise ModelError(f"{cfg_file} is not a JSON object; re-save the model") from None


def is_bilstm_dir(path: str | Path) -> bool:
    """True when ``path/config.json`` names the ``kdistill-bilstm`` model type."""
    try:
        return _model_type(Path(path)) == MODEL_TYPE
    except ModelError:
        return False


def load_student(path: str | Path, **kwargs: Any):
    """Load a saved student: a :class:`BiLSTMForSequenceClassification` when ``config.json`` says
    ``kdistill-bilstm``, else ``AutoModelForSequenceClassification.from_pretrained(path, **kwargs)``.

    Raises:
        ModelError: no readable ``config.json`` in ``path``.
    """
    path = Path(path)
    if _model_type(path) == MODEL_TYPE:
        return BiLSTMForSequenceClassification.from_pretrained(path)
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(str(path), **kwargs)


# ---------------------------------------------------------------------- initialisation
def from_teacher_embeddings(
    teacher,
    tokenizer=None,
    *,
    pair: bool = False,
    embedding_mode: str = "multichannel",
    seed: int | None = None,
    **config_kwargs: Any,
) -> BiLSTMForSequenceClassification:
    """A BiLSTM student whose embedding table(s) are copies of the teacher's input word embeddings.

    A stand-in for the paper's word2vec initialisation (Sec. 4) that needs no download: row
    ``i`` of every table is ``teacher.get_input_embeddings().weight[i]`` (the teacher's vector for
    token ``i`` of its tokenizer), so ``embedding_dim`` is the teacher's embedding width (384 for
    MiniLM-L6). Labels (``num_labels``, ``id2label``, ``label2id``, ``problem_type``) come from the
    teacher's config.

    Args:
        teacher: a Hugging Face model with ``get_input_embeddings()``.
        tokenizer: the teacher's tokenizer; gives the special-token ids to drop (see
            :meth:`BiLSTMConfig.from_tokenizer`). Without it only padding is dropped, and a pair model
            relies on ``token_type_ids``.
        pair: build the sentence-pair (siamese) model.
        embedding_mode: ``"trainable"``, ``"frozen"`` or ``"multichannel"``.
        seed: seed for the LSTM and FC initialisation.
        config_kwargs: other :class:`BiLSTMConfig` fields (``hidden_size``, ``fc_size``, ``dropout``, ...).

    Raises:
        ModelError: the teacher has no input embeddings, or its table is smaller than the tokenizer.
    """
    try:
        weight = teacher.get_input_embeddings().weight.detach()
    except (AttributeError, NotImplementedError):
        raise ModelError(f"{type(teacher).__name__} has no input word embeddings to copy; use load_word_vectors() instead") from None
    rows, dim = weight.shape
    tcfg = teacher.config
    fields = {
        "embedding_dim": int(dim), "pair": pair, "embedding_mode": embedding_mode,
        "num_labels": tcfg.num_labels, "id2label": dict(tcfg.id2label), "label2id": dict(tcfg.label2id or {}) or None,
        "problem_type": tcfg.problem_type,
    }
    if tokenizer is not None:
        if len(tokenizer) > rows:
            raise ModelError(f"the tokenizer has {len(tokenizer)} tokens but the teacher's embedding table only {rows}; "
                             "pass the teacher's own tokenizer")
        config = BiLSTMConfig.from_tokenizer(tokenizer, **{**fields, "vocab_size": int(rows), **config_kwargs})
    else:
        pad = getattr(tcfg, "pad_token_id", None)
        config = BiLSTMConfig(vocab_size=int(rows), pad_token_id=pad if pad is not None else 0,
                              **{**fields, **config_kwargs})
    if seed is not None:
        torch.manual_seed(seed)
    model = BiLSTMForSequenceClassification(config)
    model.init_embeddings(weight.float().cpu())
    return model.train()



__all__ = [
    "CONFIG_NAME", "EMBEDDING_MODES", "MODEL_TYPE", "MULTICHANNEL_MERGES", "PAPER_SIZES", "WEIGHTS_NAME",
    "BiLSTMConfig", "BiLSTMForSequenceClassification", "from_teacher_embeddings", "is_bilstm_dir", "load_student",
]
