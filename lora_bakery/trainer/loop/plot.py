"""The loss curve as a PNG (matplotlib, Agg backend) and TensorBoard scalars, both optional.

Neither is a dependency: without matplotlib the plot is skipped with one note, without
tensorboard the scalars are. The PNG is rewritten atomically after every epoch so the UI can show it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..atomic import write_via_temp


def moving_average(values: list[float], window: int) -> list[float]:
    """Trailing mean over ``window`` values (shorter at the start)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def write_loss_plot(path: Path, losses: list[float], epoch_ends: list[int], title: str = "") -> str | None:
    """Draw loss per optimizer step (and its moving average) with epoch boundaries.

    Args:
        path (`Path`): the PNG to (re)write.
        losses (`list[float]`): loss per optimizer step.
        epoch_ends (`list[int]`): step counts at which epochs ended.
        title (`str`, *optional*): plot title.

    Returns:
        `str` or `None`: a note when the plot could not be drawn (matplotlib missing), else ``None``.
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure
    except Exception:  # not installed, or a broken install
        return "matplotlib is not installed: no loss plot (pip install matplotlib to get one)."
    fig = Figure(figsize=(6, 3.2), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    steps = list(range(1, len(losses) + 1))
    ax.plot(steps, losses, color="#9ab", linewidth=0.8, label="loss")
    if len(losses) > 2:
        ax.plot(steps, moving_average(losses, max(2, len(losses) // 20)), color="#c50", linewidth=1.5, label="average")
    for end in epoch_ends:
        ax.axvline(end, color="#ccc", linewidth=0.6, linestyle="--")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    write_via_temp(path, lambda stream: fig.savefig(stream, format="png"))
    return None


class ScalarLog:
    """TensorBoard scalars when ``torch.utils.tensorboard`` imports, else nothing (with one note)."""

    def __init__(self, log_dir: Path | None, enabled: bool) -> None:
        self.writer: Any = None
        self.note: str | None = None
        if not enabled or log_dir is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception:
            self.note = "tensorboard is not installed: no TensorBoard logs (pip install tensorboard to get them)."
            return
        self.writer = SummaryWriter(str(log_dir))

    def add(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
