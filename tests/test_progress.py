"""TrainingProgress: Ignite's ProgressBar on a terminal only, and an epoch summary in the log either way."""

from __future__ import annotations

import io
import logging

import pytest
import tqdm.std
from test_trainer import build, deterministic  # noqa: F401 (deterministic: autouse fixture)

from monai_msgsagan.handlers import TrainingProgress


class Terminal(io.StringIO):
    """A text stream that says it is an interactive terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("clock", ["real", "frozen"])
def test_bar_on_a_terminal_and_epoch_summaries_in_the_log(tmp_path, caplog, monkeypatch, clock):
    """``frozen``: tqdm's clock stands still, as on a machine so fast that no rate-limited redraw is ever due."""
    if clock == "frozen":
        monkeypatch.setattr(tqdm.std, "time", lambda: 1000.0)
    terminal = Terminal()
    trainer, *_ = build(tmp_path / "tty", max_epochs=2)
    progress = TrainingProgress(stream=terminal)
    progress.attach(trainer)
    with caplog.at_level(logging.INFO, logger="monai_msgsagan.handlers.progress"):
        trainer.run()
    drawn = terminal.getvalue()
    # What the bar guarantees whatever the machine's speed: tqdm rate-limits redraws of the count (every 0.1 s),
    # so whether "[3/3]" is ever drawn before the bar is cleared depends on timing; Ignite sets the description
    # ("Epoch [e/E]") and the output values with an immediate redraw on every epoch's iterations, and the bar
    # starts at iteration 1 of 3.
    assert progress.bar is not None and "Epoch [1/2]" in drawn and "Epoch [2/2]" in drawn
    assert "[1/3]" in drawn and "d_loss=" in drawn and "g_loss=" in drawn
    summaries = [r.getMessage() for r in caplog.records if r.name == "monai_msgsagan.handlers.progress"]
    assert len(summaries) == 2 and summaries[1].startswith("epoch 2/2: 3 iterations in ")
    assert "d_loss " in summaries[1] and summaries[1].endswith("skipped 0")


def test_no_bar_when_the_output_is_not_a_terminal(tmp_path, caplog):
    log_file = io.StringIO()  # isatty() is False, as for a log file or CI
    trainer, *_ = build(tmp_path, max_epochs=1)
    progress = TrainingProgress(stream=log_file)
    progress.attach(trainer)
    with caplog.at_level(logging.INFO, logger="monai_msgsagan.handlers.progress"):
        trainer.run()
    assert progress.bar is None and log_file.getvalue() == ""
    assert any(r.getMessage().startswith("epoch 1/1: 3 iterations") for r in caplog.records)
