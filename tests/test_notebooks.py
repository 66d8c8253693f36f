"""The notebooks run top to bottom against the emulator, with no token and no network."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
NAMES = ["quickstart", "scheduled_refresh", "live_stream"]


def outputs(nb: nbformat.NotebookNode) -> tuple[str, list[str]]:
    """All text the notebook printed or displayed, and the MIME types of its displays."""
    text, displays = [], []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                text.append(out.text)
            elif out.output_type in ("execute_result", "display_data"):
                text.append(out.data.get("text/plain", ""))
                displays += list(out.data)
    return "\n".join(text), displays


def run(name: str, workdir: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    return nb


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No token (so the notebooks start the emulator), and a cache in a tmp dir."""
    monkeypatch.delenv("ALLTICK_TOKEN", raising=False)
    monkeypatch.delenv("ALLTICK_BASE_URL", raising=False)
    monkeypatch.setenv("ALLTICK_CACHE_DIR", str(tmp_path / "cache"))
    workdir = tmp_path / "work"
    workdir.mkdir()
    return workdir


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_have_no_outputs(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_quickstart_runs_top_to_bottom(offline):
    nb = run("quickstart", offline)
    text, displays = outputs(nb)
    assert "emulator at http://127.0.0.1:" in text
    assert "image/png" in displays  # the closing-price chart
    assert "NOSUCHCODE.US" in text and "code-invalid" in text
    # The cross-market daily frame (a row per session, a column per market), and the
    # completeness table.
    assert re.search(r"code +AAPL.US +700.HK +600519.SH +EURUSD +BTCUSDT\nsession +\n", text)
    assert re.search(r"code +expected +received +missing +coverage", text)
    assert list(offline.iterdir()) == []  # nothing written next to the notebook


def test_scheduled_refresh_runs_top_to_bottom(offline):
    nb = run("scheduled_refresh", offline)
    text, _ = outputs(nb)
    assert "route=kline; calls={'kline': 53}; 0 series from the cache" in text
    assert "route=cache; calls={}; 53 series from the cache" in text
    assert "batch-kline" in text.split("route=cache")[1]
    assert list(offline.iterdir()) == []  # the job's files were cleaned up


def test_live_stream_runs_top_to_bottom(offline, monkeypatch):
    monkeypatch.setenv("ALLTICK_LIVE_SECONDS", "8")  # seconds instead of a minute
    nb = run("live_stream", offline)
    text, _ = outputs(nb)
    assert re.search(r"BTCUSDT 1 +\d+\.\d+ +\d+\.\d+", text)  # the book, best level ...
    assert re.search(r"\n +5 +\d+\.\d+ +\d+\.\d+", text)  # ... down to crypto's fifth
    assert re.search(r"AAPL.US 2024-05-15 14:\d\d:\d\d\.\d+\+00:00 +18\d\.", text)  # the tape
    assert "'too_many': 0" in text and "'reconnects': 0" in text
    assert "Empty DataFrame" in text  # every code arrived
    assert re.search(r"BTCUSDT +1m 2024-05-15 14:00:00\+00:00", text)  # bars from ticks
    assert list(offline.iterdir()) == []
