"""The campaign's re-creation steps (issue 27): a step whose script is stopped by a signal — or fails — is timed and
reported as stopped (resumable), never lost in a traceback. Needs no `../shared` and no models."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import campaign  # noqa: E402


@pytest.mark.parametrize("code, said", [(-15, "stopped before finishing"), (1, "failed (exit code 1)")])
def test_a_step_killed_by_a_signal_or_failing_is_timed_and_raised_as_stopped(tmp_path, monkeypatch, code, said):
    import sst2_mpnet_teacher

    monkeypatch.setattr(sst2_mpnet_teacher, "OUT", tmp_path / "teacher")
    monkeypatch.setattr(campaign, "CACHE", tmp_path)
    (tmp_path / "teacher").mkdir()
    (tmp_path / "teacher" / "model.safetensors").write_bytes(b"")  # the teacher is there: only the set is re-created
    calls = []
    monkeypatch.setattr(campaign.subprocess, "run",
                        lambda args, **kw: calls.append(args) or subprocess.CompletedProcess(args, code))
    with pytest.raises(campaign.Stopped) as stop:
        campaign.ensure(["set:train"])
    assert said in str(stop.value) and list(stop.value.made) == ["set:train"] and stop.value.made["set:train"] >= 0
    assert calls[0][1:] == ["benchmarks/label_mpnet_sst2.py"]
