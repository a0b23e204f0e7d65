"""`python -m otel_decisions.cli`: the `otel-decisions` command."""

import sys

from otel_decisions.cli import main

sys.exit(main())
