"""Which settings `resume=` compares with the checkpoint's: an argument added to a class after the
run was written passes at its default (the old run behaved that way) and is refused otherwise."""

from omegaconf import DictConfig, OmegaConf

from genlab.resume import differing_settings

DATA = {"_target_": "datamodules.torchvision_datamodule.TorchvisionDataModule", "name": "mnist", "image_size": 28}


def config_with(**data_settings) -> DictConfig:
    return OmegaConf.create({"model": {"lr": 0.1}, "data": {**DATA, **data_settings}})


def test_a_setting_added_later_at_its_default_is_not_a_difference() -> None:
    stored = {"model": {"lr": 0.1}, "data": DATA}  # written before `data.pad` existed
    assert differing_settings(stored, config_with(pad=False)) == []


def test_a_setting_added_later_away_from_its_default_is_a_difference() -> None:
    stored = {"model": {"lr": 0.1}, "data": DATA}
    assert differing_settings(stored, config_with(pad=True)) == ["data.pad"]


def test_a_changed_setting_is_a_difference_even_at_its_default() -> None:
    stored = {"model": {"lr": 0.1}, "data": {**DATA, "pad": True}}
    assert differing_settings(stored, config_with(pad=False)) == ["data.pad"]


def test_an_unknown_new_key_is_a_difference() -> None:
    stored = {"model": {"lr": 0.1}, "data": DATA}
    assert differing_settings(stored, config_with(no_such_argument=1)) == ["data.no_such_argument"]
