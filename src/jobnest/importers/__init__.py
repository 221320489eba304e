"""Switching to jobnest: bring in what people already run, and write jobs back out as code.

    base.py           what an importer returns (jobs and notes), and valid, unique names
    crontab.py        crontab text → jobs (pure)
    shell.py          the shell side of cron lines: ``%`` stdin, environment, ``&&``/``;`` chains
    dagobah.py        dagobah job exports → jobs (pure)
    dagobah_email.py  dagobahd.yml's ``Email:`` section → ``[smtp]`` and ``notify:`` (pure)
    smtp.py           the ``[smtp]`` section of jobnest's config file, as TOML text
    export.py         jobs → YAML that ``jobnest run``/``serve --jobs`` load back equal
    sources.py        reading the files (or stdin) importers convert: the I/O edge
    apply.py          sending jobs to a running daemon over HTTP: the other edge

Converters never touch the disk, the clock or the network; everything they could not carry
over is a note in their result, for the user to read before the jobs go live.
"""
