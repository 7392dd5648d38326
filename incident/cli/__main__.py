"""`python -m incident.cli`, the same as the `incident` command."""

import sys

from incident.cli.commands import main

sys.exit(main())
