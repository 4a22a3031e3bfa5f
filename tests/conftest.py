"""Shared fixtures. Tests run offline: nothing may reach a hub or a telemetry endpoint."""

import os

for key, value in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                   "MLFLOW_DISABLE_TELEMETRY": "true", "DVC_NO_ANALYTICS": "1",
                   "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": ""}.items():
    os.environ.setdefault(key, value)
