"""Wires tokenspec into pytest: options, implementation discovery, hypothesis profiles, device info."""

from __future__ import annotations

import importlib.util
import os
import platform

from hypothesis import HealthCheck, settings

# litellm fetches its price map over the network at import unless told otherwise; tests never do.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

# Triton kernels run on the CPU through the interpreter when no GPU is visible; the variable must
# be set before triton is first imported.
if importlib.util.find_spec("torch") is not None:
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
        workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
        if workers > 1:  # pytest -n N on the CPU: share the cores instead of N × all of them
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    elif torch.cuda.device_count() > 1 and os.environ.get("PYTEST_XDIST_WORKER", "").startswith("gw"):
        # pytest -n <number of GPUs>: worker gwN works on GPU N (modulo the count).
        torch.cuda.set_device(int(os.environ["PYTEST_XDIST_WORKER"][2:]) % torch.cuda.device_count())

pytest_plugins = ["suite.plugin"]

_slow_ok = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile("quick", max_examples=12, derandomize=True, deadline=None,
                          suppress_health_check=_slow_ok, print_blob=True)
settings.register_profile("thorough", max_examples=400, deadline=None, suppress_health_check=_slow_ok,
                          print_blob=True)
settings.register_profile("dev", max_examples=30, deadline=None, suppress_health_check=_slow_ok)
_profile = os.environ.get("TOKENSPEC_PROFILE", "quick")
if os.environ.get("TOKENSPEC_EXAMPLES"):  # the profile with another number of examples per property
    _given = os.environ["TOKENSPEC_EXAMPLES"]
    _examples = int(_given) if _given.strip().isdigit() else 0
    if _examples < 1:
        raise ValueError(f"TOKENSPEC_EXAMPLES must be a positive whole number of examples per property; got {_given!r}")
    settings.register_profile(f"{_profile}-{_examples}", settings.get_profile(_profile), max_examples=_examples)
    _profile = f"{_profile}-{_examples}"
settings.load_profile(_profile)


def pytest_report_header() -> list[str]:
    lines = [f"python {platform.python_version()} on {platform.machine()}"]
    if importlib.util.find_spec("torch") is not None:
        import torch

        device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"
        lines.append(f"torch {torch.__version__}; {device}; TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET', '')}")
    return lines
