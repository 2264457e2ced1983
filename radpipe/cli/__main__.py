"""`python -m radpipe.cli`: the same as the `radpipe` command."""

from radpipe.cli import entry

entry()
