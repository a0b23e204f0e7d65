"""`python -m otel_decisions`: the `otel-decisions` command, for environments without the script."""

import sys

from otel_decisions.cli import main

sys.exit(main())
