"""Every user-facing error is a `UserError` and keeps its built-in base; `exit_on_user_error` ends on one line."""

import pytest

from datamodules.errors import BadImageError, DatasetNotFoundError
from foundation.atomic_files import DiskFullError
from foundation.errors import UserError, exit_on_user_error
from genlab.checkpoints import CheckpointError
from genlab.evaluation.measure import EvaluationSettingError
from genlab.resume import ResumeError
from genlab.settings import SettingError
from genlab.sweeps import SweepConfigError
from genlab.trainer_settings import TrainerSettingError
from lightning_modules.callbacks.interruption import RunInterruptedError
from lightning_modules.metrics.feature_extractors import InceptionUnavailableError
from lightning_modules.metrics.fid_kid_is import TooFewSamplesError
from lightning_modules.training.guards import NonFiniteLossError

BUILT_IN_BASES = {
    SettingError: ValueError,
    TrainerSettingError: ValueError,
    ResumeError: ValueError,
    CheckpointError: RuntimeError,
    DiskFullError: OSError,
    EvaluationSettingError: ValueError,
    SweepConfigError: ValueError,
    TooFewSamplesError: ValueError,
    InceptionUnavailableError: RuntimeError,
    DatasetNotFoundError: FileNotFoundError,
    BadImageError: ValueError,
    NonFiniteLossError: RuntimeError,
}


@pytest.mark.parametrize("error_class", BUILT_IN_BASES, ids=lambda error_class: error_class.__name__)
def test_user_errors_keep_their_built_in_base(error_class: type[Exception]) -> None:
    error = error_class("what was wrong; the fix")
    assert isinstance(error, UserError) and isinstance(error, BUILT_IN_BASES[error_class])
    assert str(error) == "what was wrong; the fix"


def test_an_interrupted_run_is_not_a_user_error() -> None:
    """It carries its own exit status (130, 143), which train.py uses instead of 1."""
    assert not issubclass(RunInterruptedError, UserError)


def test_exit_on_user_error_prints_one_line_and_exits_1(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        exit_on_user_error(SettingError("data.batch_size=0 must be at least 1"))
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == "error: data.batch_size=0 must be at least 1\n"


def test_exit_on_user_error_leaves_other_errors_to_the_caller() -> None:
    exit_on_user_error(KeyError("a bug"))  # returns: the caller re-raises it with its traceback
