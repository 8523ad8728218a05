"""Never let litellm fetch its price map over the network: it reads this before its first import."""

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
