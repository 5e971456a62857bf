"""Data augmentation for task-specific distillation: two augmenters sharing one on-disk cache.

* :mod:`~kdistill.data.augment.tang` — Tang et al. (2019), Sec. 3 "Data Augmentation for
  Distillation": masking, POS-guided replacement and n-gram sampling of whitespace words; the
  run-level transfer set (:func:`~kdistill.data.augment.tang.augment_train_split`: originals plus
  augmented rows without gold labels, for ``--augment tang``) and the POS tagger it needs
  (:func:`~kdistill.data.augment.tang.pos_tagger_for`);
* :mod:`~kdistill.data.augment.tinybert` — Jiao et al. (2020), Sec. 3.3, Algorithm 1: words
  replaced by masked-LM predictions or embedding neighbours
  (:func:`~kdistill.data.augment.tinybert.augment_dataset`), with the candidate generators in
  :mod:`~kdistill.data.augment.candidates` and the ``kdistill augment`` command (loading a task,
  writing the augmented file) in :mod:`~kdistill.data.augment.tinybert_io`;
* :mod:`~kdistill.data.augment.cache` — the cache both use: folders ``aug-<method>-<key>`` under
  the cache directory, one key function, one info file and one row convention (only augmented rows
  are stored, each with its original's label and ``source_idx``, and ``idx`` continuing after the
  originals).

Nothing is imported here, so importing one augmenter does not load the other (or torch).
"""
