"""``dmbridge demo`` exits 0 only when every round trip (X, Messenger, Instagram) happened."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_all_channels_and_exits_zero() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bridge", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "· Messenger · *Lena Fischer*" in done.stdout and "· Instagram · *Tomás Ruiz*" in done.stdout
    assert "[file IMG_4471.png, " in done.stdout  # Tomás's photo, copied into his thread
    assert "Demo complete" in done.stdout
