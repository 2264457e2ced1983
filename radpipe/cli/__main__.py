"""`python -m radpipe.cli`: the same as the `radpipe` command."""

import sys

from radpipe.cli import main

sys.exit(main())
