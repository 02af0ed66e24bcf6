"""Fake ``modules.errors``: reports are recorded instead of printed."""

reports = []


def report(message, *, exc_info=False):
    reports.append(message)


def display(e, task, *, full_traceback=False):
    reports.append(f"{task}: {e}")
