"""``k=v`` optimizer args: typing as kohya does, forgiving typos, and errors that name the arg."""

from __future__ import annotations

import math

import pytest
import torch

from lora_bakery.trainer.optim.args import (
    OptimizerArgError,
    accepted_args,
    parse_optimizer_args,
    parse_value,
    validate_optimizer_args,
)
from lora_bakery.trainer.optim.lion import Lion


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("True", True),
        ("false", False),
        ("None", None),
        ("2", 2),
        ("0.01", 0.01),
        ("1e-2", 0.01),
        ("0.9,0.99", (0.9, 0.99)),
        ("(0.9, 0.99)", (0.9, 0.99)),
        ("[0.9, 0.99]", (0.9, 0.99)),
        ("2,", 2),  # stray trailing comma (bmaltais #3052) is not a 1-tuple
        ("0.9,0.99,", (0.9, 0.99)),
        ("'fsdp'", "fsdp"),
        ("fsdp", "fsdp"),
        (" 3 ", 3),
    ],
)
def test_parse_value(raw, expected):
    value = parse_value(raw)
    assert value == expected and type(value) is type(expected)


def test_parse_value_infinity():
    assert parse_value("inf") == math.inf
    assert parse_value("0.9,inf") == (0.9, math.inf)


def test_parse_args_from_string_list_and_dict():
    expected = {"decouple": True, "weight_decay": 0.01, "betas": (0.9, 0.99), "d_coef": 2}
    assert parse_optimizer_args("decouple=True weight_decay=0.01 betas=0.9,0.99 d_coef=2") == expected
    assert (
        parse_optimizer_args(["decouple=True", "weight_decay=0.01", "betas=0.9,0.99", "d_coef=2"]) == expected
    )
    assert (
        parse_optimizer_args({"decouple": "True", "weight_decay": 0.01, "betas": (0.9, 0.99), "d_coef": 2})
        == expected
    )
    assert (
        parse_optimizer_args("decouple=True, weight_decay=0.01,\nbetas=(0.9, 0.99)  d_coef = 2") == expected
    )
    assert parse_optimizer_args(["decouple=True weight_decay=0.01", "betas=0.9,0.99", "d_coef=2"]) == expected
    assert (
        parse_optimizer_args(None) == {} and parse_optimizer_args("") == {} and parse_optimizer_args([]) == {}
    )


@pytest.mark.parametrize(
    ("args", "match"), [("decouple", "name=value"), ("=1", "name=value"), ("a=1 a=2", "twice")]
)
def test_parse_args_errors(args, match):
    with pytest.raises(OptimizerArgError, match=match):
        parse_optimizer_args(args)


def test_accepted_args_come_from_the_signature():
    assert list(accepted_args(Lion)) == ["betas", "weight_decay"]
    assert "weight_decay" in accepted_args(torch.optim.AdamW)

    class Anything(torch.optim.Optimizer):
        def __init__(self, params, lr=1.0, **kwargs):
            super().__init__(params, {"lr": lr})

    assert accepted_args(Anything) is None
    assert validate_optimizer_args("Anything", Anything, {"whatever": 1}) == {"whatever": 1}


def test_unknown_arg_names_a_close_match_and_lists_accepted():
    with pytest.raises(OptimizerArgError) as err:
        validate_optimizer_args("Lion", Lion, {"wieght_decay": 0.1})
    message = str(err.value)
    assert "'wieght_decay'" in message and "Did you mean 'weight_decay'" in message
    assert "Accepted: betas, weight_decay" in message


def test_reserved_args_are_refused():
    with pytest.raises(OptimizerArgError, match="learning-rate field"):
        validate_optimizer_args("Lion", Lion, {"lr": 1e-4})


def test_value_kinds_are_checked_and_numbers_coerced():
    got = validate_optimizer_args(
        "SGD", torch.optim.SGD, {"momentum": 1, "nesterov": True, "weight_decay": 0.5}
    )
    assert got == {"momentum": 1, "nesterov": True, "weight_decay": 0.5}
    assert type(validate_optimizer_args("Lion", Lion, {"weight_decay": 1})["weight_decay"]) is float
    assert validate_optimizer_args("Lion", Lion, {"betas": (1, 0.5)}) == {"betas": (1.0, 0.5)}
    with pytest.raises(OptimizerArgError, match=r"nesterov='yes please': expected True or False"):
        validate_optimizer_args("SGD", torch.optim.SGD, {"nesterov": "yes please"})
    with pytest.raises(OptimizerArgError, match=r"expected 2 numbers .*betas=0.9,0.99"):
        validate_optimizer_args("Lion", Lion, {"betas": 0.9})
    with pytest.raises(OptimizerArgError, match="expected a number"):
        validate_optimizer_args("Lion", Lion, {"weight_decay": "lots"})
    with pytest.raises(OptimizerArgError, match="nan"):
        validate_optimizer_args("Lion", Lion, {"weight_decay": math.nan})
