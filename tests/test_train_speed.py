"""benchmarks/train_speed.py: every option runs a real GAN step and is compared with the plain loop."""

import pytest

from benchmarks import train_speed


def test_each_option_is_a_ratio_to_the_plain_loop_of_the_same_shape(capsys):
    rows = train_speed.run(["cpu"], [64], [1], ["fp32", "bf16"], 0.125, iters=1, repeats=1)
    assert [r["option"] for r in rows] == ["fp32", "bf16"]
    plain, mixed = rows
    assert plain["x_fp32"] == 1.0
    assert mixed["x_fp32"] == pytest.approx(plain["s_per_update_ncritic50"] / mixed["s_per_update_ncritic50"])
    assert all(r["critic_steps_per_s"] > 0 and r["generator_steps_per_s"] > 0 for r in rows)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split()[-1] == "1.00" and len(printed) == 2


def test_without_a_plain_row_there_is_no_ratio():
    rows = train_speed.run(["cpu"], [64], [1], ["channels_last"], 0.125, iters=1, repeats=1)
    assert rows[0]["x_fp32"] is None and train_speed.format_row(rows[0]).split()[-1] == "-"
