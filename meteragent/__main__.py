"""``python -m meteragent``: the service console (see :mod:`meteragent.console`)."""

import sys

from meteragent.console import main

sys.exit(main())
