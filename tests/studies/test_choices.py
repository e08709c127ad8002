"""Choices a flag offers are read from the registries, so a strategy, executor, augmentation or dataset kind added
to its registry is offered, checked and listed in --help with nothing else to edit."""
from __future__ import annotations

import pytest

from effnas.search import samplers
from effnas.search.data import augment, kinds
from effnas.search.executors import EXECUTORS
from effnas.space.errors import UserError
from effnas.studies.cli import make_parser
from effnas.studies.config import FIELD_BY_NAME, load_config


@pytest.fixture()
def help_of(capsys):
    def read(command: str) -> str:
        with pytest.raises(SystemExit):
            make_parser().parse_args([command, "--help"])
        return " ".join(capsys.readouterr().out.split())
    return read


@pytest.mark.parametrize(("field", "registry"), [("sampler", samplers.SAMPLERS), ("executor", EXECUTORS),
                                                 ("augment", augment.KINDS)])
def test_a_flags_choices_are_its_registrys(field, registry, help_of):
    assert FIELD_BY_NAME[field].choices == tuple(registry)
    command = "train" if field == "augment" else "search"
    assert f"one of {', '.join(registry)}" in help_of(command)


def test_the_dataset_help_lists_every_kind_by_its_dimensionality(help_of):
    text = help_of("search")
    assert f"images: {kinds.usage(2)}; volumes: {kinds.usage(3)}" in text
    assert ("images: digits, cifar10:PATH, folder:PATH, fashion-mnist, idx:PATH; volumes: shapes3d, volumes:PATH"
            in text)


def test_a_name_outside_the_registry_is_refused_with_the_registrys_names():
    with pytest.raises(UserError, match="allowed: nsga2, tpe, random, mnas"):
        load_config(overrides={"sampler": "cmaes"})
