"""A report as words: the subject, a plain-text body and an HTML body of an email.

Pure functions of a ``Report``. The HTML escapes every piece of text that comes from a
job, a task or a log, and keeps its styles inline, as mail clients want. The subject is a
single line whatever the names hold.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta

from jobnest.notify.base import Failure, Group, Report

MAX_SUBJECT_NAME = 80
_NOT_IN_A_LINE = frozenset({"Cc", "Cf", "Zl", "Zp"})  # controls, format characters, breaks
_STATUS_ORDER = (
    "succeeded",
    "failed",
    "cancelled",
    "upstream_failed",
    "skipped",
    "pending",
    "queued",
    "running",
)
_REASONS = {
    "exit_code": "exit code {code}",
    "signal": "killed by a signal (status {code})",
    "soft_timeout": "soft timeout: stopped with SIGTERM",
    "hard_timeout": "hard timeout: killed with SIGKILL",
    "lost": "lost: its runner died while it ran",
    "cancelled": "cancelled",
    "error": "could not start",
    "host_unreachable": "its SSH host could not be reached",
    "auth_failed": "its SSH host refused the connection's keys",
}
_COLOURS = {"succeeded": "#1a7f37", "failed": "#cf222e", "cancelled": "#9a6700"}


# --- shared wording ----------------------------------------------------------------------------


def subject(report: Report) -> str:
    """``[jobnest] nightly failed: 2 tasks (run 42)``, on one line."""
    name = one_line(report.job)
    if len(name) > MAX_SUBJECT_NAME:
        name = name[: MAX_SUBJECT_NAME - 1] + "…"
    failed = len(report.failures) + report.more_failures
    what = f"{report.outcome}: {_plural(failed, 'task')}" if failed else report.outcome
    retry = f", retry {report.retries}" if report.retries else ""
    return f"[jobnest] {name} {what} (run {report.run_id}{retry})"


def one_line(text: str) -> str:
    """``text`` with line breaks and other control or format characters as spaces."""
    return "".join(" " if unicodedata.category(ch) in _NOT_IN_A_LINE else ch for ch in text)


def counts(tally: Mapping[str, int]) -> str:
    """``3 succeeded, 1 failed``, in a fixed order of statuses."""
    known = [status for status in _STATUS_ORDER if tally.get(status)]
    others = sorted(status for status in tally if status not in _STATUS_ORDER and tally[status])
    return ", ".join(f"{tally[status]} {status}" for status in known + others) or "none"


def why(failure: Failure) -> str:
    """Why the task failed, in words, with its attempts."""
    template = _REASONS.get(failure.reason or "", failure.reason or failure.status)
    text = template.format(code=failure.exit_code)
    if failure.reason != "exit_code" and failure.exit_code is not None:
        text += f" (exit code {failure.exit_code})"
    return f"{text}, after {_plural(failure.attempts, 'attempt')}"


def trigger(report: Report) -> str:
    started = {"schedule": "by its schedule", "manual": "by hand"}.get(
        report.trigger, f"by {report.trigger}"
    )
    if report.scheduled_for is not None:
        started += f" (slot {instant(report.scheduled_for)})"
    if report.retries:
        return f"retry #{report.retries} of a run started {started}"
    return f"started {started}"


def instant(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S %Z")


def duration(value: timedelta) -> str:
    seconds = max(0, round(value.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "min"), (seconds, "s")]
    return " ".join(f"{n} {unit}" for n, unit in parts if n) or "0 s"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _facts(report: Report) -> list[tuple[str, str]]:
    facts = [
        ("Job", one_line(report.job)),
        ("Outcome", report.outcome),
        ("Run", f"{report.run_id}, {trigger(report)}"),
        ("Started", instant(report.started_at)),
        ("Finished", f"{instant(report.finished_at)}, {_took(report)}"),
        ("Tasks", f"{report.root.tasks}: {counts(report.root.counts)}"),
    ]
    noisy, quiet = len(report.root.children), report.root.quiet
    if noisy or quiet:
        failing = f"{noisy} with failures inside" if noisy else "none with failures"
        facts.append(("Child jobs", f"{noisy + quiet}, {failing}"))
    return facts + ([("Run page", report.url)] if report.url else [])


def _took(report: Report) -> str:
    took = duration(report.duration)
    return f"{took} after the run first started" if report.retries else f"after {took}"


def _group_line(group: Group) -> str:
    if not group.path:
        return f"{group.job} ({_plural(group.tasks, 'task')}: {counts(group.counts)})"
    return f"{group.name} → job {group.job} ({counts(group.counts)})"


def _quiet_line(group: Group) -> str:
    jobs = "child job" if group.quiet == 1 else "child jobs"
    return f"{group.quiet} more {jobs} without failures ({counts(group.quiet_counts)})"


def _more_line(report: Report) -> str:
    return f"… and {_plural(report.more_failures, 'more failed task')}, not shown"


# --- plain text --------------------------------------------------------------------------------


def text_body(report: Report) -> str:
    """The plain-text part: the facts, the tree, then each failure with its stderr."""
    width = max(len(label) for label, _ in _facts(report)) + 1
    lines = [subject(report).removeprefix("[jobnest] "), ""]
    lines += [f"{label + ':':<{width}} {value}" for label, value in _facts(report)]
    if report.failures or report.root.children:
        lines += ["", "Where it failed:", "", _group_line(report.root)]
        lines += _text_tree(report.root, "")
    for failure in report.failures:
        lines += ["", *_text_failure(failure)]
    if report.more_failures:
        lines += ["", _more_line(report)]
    return "\n".join(lines) + "\n"


def _text_tree(group: Group, indent: str) -> Iterator[str]:
    entries: list[Failure | Group | str] = [*group.failures, *group.children]
    if group.quiet:
        entries.append(_quiet_line(group))
    for index, entry in enumerate(entries):
        last = index == len(entries) - 1
        branch, below = ("└── ", "    ") if last else ("├── ", "│   ")
        if isinstance(entry, Failure):
            yield f"{indent}{branch}✗ {entry.name}: {why(entry)}"
        elif isinstance(entry, Group):
            yield f"{indent}{branch}{_group_line(entry)}"
            yield from _text_tree(entry, indent + below)
        else:
            yield f"{indent}{branch}{entry}"


def _text_failure(failure: Failure) -> list[str]:
    lines = [f"✗ {failure.path}", f"  {why(failure)}"]
    if not failure.stderr:
        return [*lines, "  (nothing on stderr)"]
    cut = ", earlier lines left out" if failure.stderr_cut else ""
    lines.append(f"  stderr{cut}:")
    return lines + [f"  | {line}" for line in failure.stderr.split("\n")]


# --- HTML --------------------------------------------------------------------------------------

_PAGE = (
    '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title></head>\n'
    '<body style="margin:0;padding:16px;background:#f6f8fa;'
    'font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1f2328">\n'
    '<div style="max-width:760px;margin:0 auto;background:#fff;border:1px solid #d0d7de;'
    'border-radius:6px;overflow:hidden">\n{body}\n</div>\n</body></html>\n'
)
_PRE = (
    "margin:4px 0 0;padding:8px;background:#f6f8fa;border:1px solid #d0d7de;"
    "border-radius:4px;font:12px/1.45 ui-monospace,Menlo,Consolas,monospace;"
    "white-space:pre-wrap;word-break:break-all"
)
_TREE = "list-style:none;margin:4px 0 4px 10px;padding-left:14px;border-left:2px solid #d0d7de"


def html_body(report: Report) -> str:
    """The HTML part: the same as the text, every piece of it escaped."""
    parts = [_html_header(report), _html_facts(report)]
    if report.failures or report.root.children:
        parts.append(_section("Where it failed", _html_tree(report.root)))
        parts.append(_section("Failed tasks", "".join(map(_html_failure, report.failures))))
    if report.more_failures:
        parts.append(f'<p style="padding:0 16px">{_e(_more_line(report))}</p>')
    return _PAGE.format(title=_e(subject(report)), body="\n".join(parts))


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _html_header(report: Report) -> str:
    colour = _COLOURS.get(report.outcome, "#57606a")
    title = subject(report).removeprefix("[jobnest] ")
    return (
        f'<div style="background:{colour};color:#fff;padding:12px 16px;font-size:18px">'
        f"<strong>{_e(title)}</strong></div>"
    )


def _html_facts(report: Report) -> str:
    rows = []
    for label, value in _facts(report):
        shown = _e(value)
        if label == "Run page":
            shown = f'<a href="{_e(value)}" style="color:#0969da">{shown}</a>'
        rows.append(
            f'<tr><th style="text-align:left;padding:2px 12px 2px 0;vertical-align:top;'
            f'color:#57606a;font-weight:normal">{_e(label)}</th><td>{shown}</td></tr>'
        )
    return f'<table style="margin:12px 16px;border-collapse:collapse">{"".join(rows)}</table>'


def _section(title: str, content: str) -> str:
    return (
        f'<div style="padding:0 16px 12px"><h3 style="margin:12px 0 6px;font-size:15px">'
        f"{_e(title)}</h3>{content}</div>"
    )


def _html_tree(group: Group) -> str:
    return f"<div><strong>{_e(_group_line(group))}</strong>{_html_entries(group)}</div>"


def _html_entries(group: Group) -> str:
    items = [
        f'<li><span style="color:#cf222e">✗</span> <code>{_e(f.name)}</code>: {_e(why(f))}</li>'
        for f in group.failures
    ]
    items += [
        f"<li><strong>{_e(_group_line(child))}</strong>{_html_entries(child)}</li>"
        for child in group.children
    ]
    if group.quiet:
        items.append(f'<li style="color:#57606a">{_e(_quiet_line(group))}</li>')
    return f'<ul style="{_TREE}">{"".join(items)}</ul>'


def _html_failure(failure: Failure) -> str:
    head = (
        f'<div style="margin:10px 0"><div><span style="color:#cf222e">✗</span> '
        f"<code><strong>{_e(failure.path)}</strong></code></div>"
        f'<div style="color:#57606a">{_e(why(failure))}</div>'
    )
    if not failure.stderr:
        return head + '<div style="color:#57606a">(nothing on stderr)</div></div>'
    cut = ", earlier lines left out" if failure.stderr_cut else ""
    return (
        f'{head}<div style="margin-top:4px">stderr{_e(cut)}:</div>'
        f'<pre style="{_PRE}">{_e(failure.stderr)}</pre></div>'
    )
