"""``kdistill provision``: a student chosen to fit a latency (and size) budget measured on this machine, in the runtime
it will be deployed in; see :mod:`kdistill.provision.run`. Latency measurement and its cache:
:mod:`kdistill.provision.latency`; the candidate students: :mod:`kdistill.provision.candidates`."""

from kdistill.provision.candidates import KINDS, Candidate, enumerate_candidates, teacher_shape
from kdistill.provision.latency import RUNTIMES, LatencyCache, Measurement, measure, measure_dir
from kdistill.provision.run import ProvisionConfig, ProvisionResult, provision, run_provision

__all__ = ["KINDS", "RUNTIMES", "Candidate", "LatencyCache", "Measurement", "ProvisionConfig", "ProvisionResult",
           "enumerate_candidates", "measure", "measure_dir", "provision", "run_provision", "teacher_shape"]
