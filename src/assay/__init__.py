"""assay: grounded, critiqued, filtered synthetic fine-tuning data from your own documents."""

import os

# Nothing phones home: telemetry off and presidio's email check (tldextract) never fetches the
# public suffix list. Hub access stays the user's choice (HF_HUB_OFFLINE is set by the Makefile).
for _key, _value in {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",
}.items():
    os.environ.setdefault(_key, _value)

__version__ = "0.1.0"
