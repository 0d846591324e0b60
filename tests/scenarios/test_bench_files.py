"""The attachments benchmark runs end to end at a tiny size: a 2 MB file each way and 3 photos through a real
``dmbridge serve`` and through the ceiling process. Only that it produced figures and that the bytes matched is
checked; no figure is asserted (timings belong in bench/RESULTS.md, not in tests)."""

from __future__ import annotations

from bench import files


def test_the_attachments_benchmark_produces_figures_with_the_same_bytes_on_the_other_side() -> None:
    f = files.run(2, 3, 2, settle=0.5)
    assert f.inbound_sha_ok and f.outbound_sha_ok and f.photos_sha_ok
    assert f.idle_hwm_mb > 0 and f.inbound_hwm_mb > 0 and f.outbound_hwm_mb > 0
    assert len(f.bridge_ms) == len(f.ceiling_ms) == 3 and min(f.bridge_ms + f.ceiling_ms) > 0
    rows = files.table(f, 2, 3, 2, out=lambda row: None)
    assert len(rows) == 5 and all(r.value for r in rows)
