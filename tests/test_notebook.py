"""notebooks/quickstart.ipynb runs top to bottom (on a tiny random LDM, 2 steps, 0.64 s) and is
committed without outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"


def pin_kernel(folder: Path) -> None:
    """A "python3" kernelspec that runs this interpreter (the venv's), found before any other:
    a user-level python3 kernel must not run the notebook on another Python."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (test)",
                "language": "python",
            }
        )
    )


@pytest.mark.slow
def test_quickstart_runs(tiny_ldm_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbclient import NotebookClient

    ckpt = tiny_ldm_checkpoint
    pin_kernel(tmp_path / "jupyter")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("AUDIOLDM_CKPT", str(ckpt))
    monkeypatch.setenv("AUDIOLDM_STEPS", "2")
    monkeypatch.setenv("AUDIOLDM_SECONDS", "0.64")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")

    nb = nbformat.read(NOTEBOOK, as_version=4)
    n_cells = len(nb.cells)
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
    # raises CellExecutionError (with the traceback) if any cell fails
    NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(REPO / "notebooks")}}
    ).execute()

    assert nb.cells[-1].outputs[0]["text"].strip() == sys.executable, "the kernel ran on another Python"
    outputs = [o for cell in nb.cells[:n_cells] if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    data = [o.get("data", {}) for o in outputs if o.output_type in ("display_data", "execute_result")]
    audio = [d for d in data if "<audio" in d.get("text/html", "")]
    images = [d for d in data if "image/png" in d]
    assert len(audio) == 2 and len(images) == 2, (len(audio), len(images))  # the generation and the edit


def test_quickstart_is_committed_clean() -> None:
    """Outputs and execution counts are stripped before commit (diffs stay readable)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4 and nb.metadata.kernelspec.name == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [], f"cell {cell.get('id')} has outputs: clear them before committing"
        assert cell.execution_count is None, f"cell {cell.get('id')} has an execution count"
    assert "AUDIOLDM_CKPT" in code[0].source and "HF_HUB_OFFLINE" in code[0].source
