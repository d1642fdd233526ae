"""``python -m blindmatch`` is the ``blindmatch`` command."""

import sys

from blindmatch.cli.main import main

sys.exit(main())
