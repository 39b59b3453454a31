"""``python -m frontier.cli``: the same as the ``frontier`` command."""

import sys

from frontier.cli import main

sys.exit(main())
