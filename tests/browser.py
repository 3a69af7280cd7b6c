"""Headless Chromium (Debian's) driven by Playwright, for browser tests; no browser download."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    """Path of Debian's chromium binary, or None."""
    return shutil.which("chromium") or (os.path.exists("/usr/bin/chromium") and "/usr/bin/chromium") or None


def launch_chromium(playwright):
    """Launch headless Debian Chromium; skips (or fails when OUTREACH_TEST_SERVERS=required) without it."""
    path = chromium_path()
    if path is None:
        message = "Debian's chromium is not installed"
        if os.environ.get("OUTREACH_TEST_SERVERS") == "required":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)


def screenshot(page, name: str) -> Path:
    """Save a full-page PNG under tests/artifacts/ (git-ignored, kept by CI); returns its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
