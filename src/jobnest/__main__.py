"""``python -m jobnest``: the same as the ``jobnest`` command."""

from jobnest.cli import main

main()
