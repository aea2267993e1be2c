"""Shared fixtures. Real data lives in ../shared/data beside the checkout; tests that need it skip without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import settings

# No per-example deadline for Hypothesis: the suite runs two workers on two shared cores, so an example's wall time
# says nothing about the code (a test that needs a time limit asserts it itself).
settings.register_profile("merkit", deadline=None)
settings.load_profile("merkit")

os.environ.setdefault("HF_HUB_OFFLINE", "1")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # The README's test command runs two pytest-xdist workers on a 2-core machine: one intra-op thread each, so that
    # they do not fight over the cores (tests that need a thread count set their own).
    torch.set_num_threads(1)

SHARED_DATA = Path(os.environ.get("MERKIT_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; the test is skipped when it is absent (a user's checkout does not have it)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def composite_dir(shared_data: Path) -> Path:
    path = shared_data / "megc2019-composite"
    if not (path / "manifest.csv").is_file():
        pytest.skip("MEGC2019 composite not available")
    return path


@pytest.fixture
def one_thread():
    """One intra-op thread for tests of many tiny tensor steps: on a shared 2-core machine two spinning threads
    make them many times slower. Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def pexels_frames(shared_data) -> list:
    """Frames 0, 6, ..., 36 of the Pexels video as RGB uint8 arrays: the head turns by about 40 px over them."""
    from merkit.media import read_video

    video = read_video(shared_data / "faces" / "WolfgangLanger_Pexels.mp4", 0, 36, step=6)
    assert video.numbers == list(range(0, 37, 6))
    return video.frames
