"""Transfer sets: the teacher's outputs as a dataset, labelled once and reused by every student (Hinton et al. 2015,
Sec. 2). :func:`~kdistill.transfer.label.write_transfer_set` writes one (Parquet shards + a manifest, resumable);
:func:`~kdistill.transfer.inspect.inspect_transfer_set` summarises one."""

from kdistill.transfer.label import MANIFEST, file_sha256, read_complete_set, shard_logits, teacher_fingerprint, write_transfer_set
from kdistill.transfer.inspect import inspect_transfer_set

__all__ = ["MANIFEST", "file_sha256", "read_complete_set", "inspect_transfer_set", "shard_logits", "teacher_fingerprint",
           "write_transfer_set"]
