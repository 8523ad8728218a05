"""The one door to litellm: every import of litellm in the project goes through :func:`litellm_module`.

litellm fetches its model-cost map over the network when it is first imported, unless
``LITELLM_LOCAL_MODEL_COST_MAP`` is set; this is the only place the project sets it (the test
conftest sets it too, for pytest sessions). Nothing here is imported at module import time, so
importing an adapter never imports litellm.
"""

from __future__ import annotations

import importlib
import logging
import os
from types import ModuleType

LOCAL_COST_MAP = "LITELLM_LOCAL_MODEL_COST_MAP"
_quiet = False


def litellm_module(name: str = "litellm") -> ModuleType:
    """``import name`` (``litellm`` or one of its submodules) with litellm's bundled cost map, never fetched."""
    if not (name == "litellm" or name.startswith("litellm.")):
        raise ValueError(f"{name!r} is not litellm or a litellm submodule")
    global _quiet
    os.environ[LOCAL_COST_MAP] = "True"  # read once, at litellm's first import
    module = importlib.import_module(name)
    if not _quiet:  # its error logs and "Provider List" banners are not findings; the suite reports what it checks
        litellm = importlib.import_module("litellm")
        litellm.suppress_debug_info = True  # type: ignore[attr-defined]
        for logger in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
            logging.getLogger(logger).setLevel(logging.CRITICAL)
        _quiet = True
    return module
