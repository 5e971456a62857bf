"""``kdistill provision``: a student chosen to fit a latency (and size) budget measured on this machine, in the runtime
it will be deployed in; see :mod:`kdistill.provision.run`. Latency measurement and its cache:
:mod:`kdistill.provision.latency`; the candidate students: :mod:`kdistill.provision.candidates`."""

import importlib

#: Each public name and the module that defines it: imported on first use, so that reading the provisioning config
#: (``kdistill --help``) does not import torch (:mod:`kdistill.provision.latency` does).
_WHERE = {**dict.fromkeys(("KINDS", "Candidate", "enumerate_candidates", "teacher_shape"), "candidates"),
          **dict.fromkeys(("RUNTIMES", "LatencyCache", "Measurement", "measure", "measure_dir"), "latency"),
          **dict.fromkeys(("ProvisionConfig", "ProvisionResult", "provision", "run_provision"), "run")}


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'kdistill.provision' has no attribute '{name}'")
    return getattr(importlib.import_module(f"kdistill.provision.{_WHERE[name]}"), name)

__all__ = ["KINDS", "RUNTIMES", "Candidate", "LatencyCache", "Measurement", "ProvisionConfig", "ProvisionResult",
           "enumerate_candidates", "measure", "measure_dir", "provision", "run_provision", "teacher_shape"]
