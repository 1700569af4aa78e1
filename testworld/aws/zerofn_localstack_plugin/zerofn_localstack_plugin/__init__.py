"""zerofn's LocalStack plugin (see ../pyproject.toml for the entry points).

- executor.py: the "zerofn-noop" Lambda runtime executor (no Docker, no code
  runs; functions become Active at once, or after
  ZEROFN_LAMBDA_PREPARE_DELAY_MS).
- conflicts.py: AWS-like 409s for updates during Pending/InProgress (only with
  a delay).
- tagging.py: Lambda functions in the tagging API's GetResources (LocalStack
  answers it from moto, whose Lambda is not LocalStack's).
- faults.py: /_zerofn/faults, make chosen operations fail N times (throttling).
- launch.py: ``python -m zerofn_localstack_plugin.launch`` starts LocalStack
  with its files in the run's directory and its connections on loopback.

This module stays free of LocalStack imports: LocalStack imports it early to
find the hook in conflicts.py.
"""

import os

# How long each new function version stays Pending / InProgress.
PREPARE_DELAY_S = int(os.environ.get("ZEROFN_LAMBDA_PREPARE_DELAY_MS") or 0) / 1000
