from __future__ import annotations

import json

import pytest

from tests.clirun import assert_user_error, effnas


def test_show_b0_json_is_exact():
    result = effnas("show", "efficientnet-b0", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert (info["params"], info["macs"], info["resolution"], info["num_classes"]) == (5288548, 385814752, 224, 1000)
    assert len(info["stages"]) == 7
    assert sum(s["params"] for s in info["stages"]) + info["stem"]["params"] + info["head"]["params"] == 5288548


def test_show_table_says_macs_are_multiply_adds():
    result = effnas("show", "efficientnet-b2")
    assert result.returncode == 0
    assert "260x260" in result.stdout and "multiply-adds" in result.stdout and "9,109,994" in result.stdout


def test_show_flags_override_preset():
    info = json.loads(effnas("show", "efficientnet-b2", "--width", "1", "--depth", "1", "--resolution", "224",
                             "--json").stdout)
    assert info["params"] == 5288548 and info["macs"] == 385814752


def test_show_arch_string_with_classes():
    info = json.loads(effnas("show", "ir_r1_k3_s2_e6_c16", "--resolution", "33", "--num-classes", "10",
                             "--json").stdout)
    assert info["num_classes"] == 10 and info["stages"][0]["out_size"] == 9


@pytest.mark.parametrize("args, fragment", [
    (["show", "ir_r1_k4_s1_e6_c16"], "kernel must be odd"),
    (["show", "ir_r1_k3_s3_e6_c16"], "stride"),
    (["show", "ir_r0_k3_s1_e6_c16"], "repeats"),
    (["show", "ir_r1_k3_s1_e6_c-8"], "channels"),
    (["show", "ir_r1_k3_s1_e6_c8_se2"], "se ratio"),
    (["show", "zz_r1_k3_s1_e6_c8"], "unknown block type"),
    (["show", "efficientnet-b9"], "efficientnet-b0"),
    (["show", "efficientnet-b0", "--resolution", "0"], "resolution"),
    (["show", "efficientnet-b0", "--width", "-1"], "width"),
    (["show", "efficientnet-b0", "--depth", "0"], "depth"),
    (["show", "efficientnet-b0", "--num-classes", "0"], "num-classes"),
    (["show", "efficientnet-b0", "--bogus"], "unrecognized"),
    ([], "command"),
])
def test_show_bad_input_is_one_line_exit_2(args, fragment):
    assert_user_error(effnas(*args), fragment)
