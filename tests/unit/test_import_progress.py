"""Import progress: plain lines when the output is not a terminal (CI logs)."""

from __future__ import annotations

import io

from app.referential import progress


async def test_plain_lines_say_how_much_of_the_file_is_read(monkeypatch):
    monkeypatch.setattr(progress, "PLAIN_EVERY_SECONDS", 0.0)
    out = io.StringIO()
    with progress.import_progress(2_000_000, out) as report:
        await report(500_000, 12_000)
        await report(2_000_000, 48_000)
    assert out.getvalue().splitlines() == [
        "esms-usage: 25 % of the file read (500,000 of 2,000,000 bytes), 12,000 structures",
        "esms-usage: 100 % of the file read (2,000,000 of 2,000,000 bytes), 48,000 structures",
    ]
    assert "\x1b[" not in out.getvalue()


async def test_plain_lines_are_spaced_out(monkeypatch):
    out = io.StringIO()
    with progress.import_progress(100, out) as report:
        for done in range(0, 101, 10):
            await report(done, done)
    assert out.getvalue() == ""  # under PLAIN_EVERY_SECONDS: nothing yet
