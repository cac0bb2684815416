"""``python -m edgessl``: the same as the ``edgessl`` command."""

from edgessl.cli import main

main()
