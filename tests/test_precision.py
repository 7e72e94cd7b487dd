"""--precision: Keras's dtype policy for a run, auto's choice by the hardware, saved
models kept apart by precision, and the engine beside the plain path in bf16."""

import json

import keras
import numpy as np
import pytest

import tl_mnist
from common.runs import cli, cpu, device


@pytest.fixture(autouse=True)
def float32_after():
    yield
    keras.config.set_dtype_policy("float32")  # the policy is global: leave it as found


def test_auto_chooses_bf16_only_where_the_hardware_has_it(tmp_path):
    with_bf16, without = tmp_path / "bf16", tmp_path / "avx2"
    with_bf16.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n")
    without.write_text("flags\t\t: fpu sse2 avx2 fma\n")
    assert device.bf16_hardware([], str(with_bf16)) == "this CPU has AVX512_BF16"
    assert device.bf16_hardware([], str(without)) == ""
    assert device.bf16_hardware([], str(tmp_path / "missing")) == ""  # not Linux: no claim
    assert device.bf16_hardware([("NVIDIA H100", True)], str(without)) == "the GPU has bf16"
    assert device.bf16_hardware([("Tesla T4", False)], str(with_bf16)) == ""
    assert device.capability("9.0") and device.capability("8.6") and not device.capability("7.5")


def test_the_first_line_names_the_precision_and_auto_says_why():
    line = device.configure_device("auto")
    reason = device.bf16_hardware(device.visible_gpus())
    expected = "mixed_bfloat16" if reason else "float32"
    assert keras.config.dtype_policy().name == expected
    assert line.endswith(f", {expected} (auto: {reason or 'no bf16 hardware found'})")
    assert device.configure_device("mixed_float16").endswith(", mixed_float16")
    assert device.configure_device().endswith(", mixed_float16")  # None: left as it is
    assert device.configure_device("float32").endswith(", float32")
    bf16 = device.configure_device("mixed_bfloat16")  # asked for: warned where it is slow
    assert bf16.endswith(", mixed_bfloat16") == bool(reason)
    assert ("expect it much slower" in bf16) == (not reason)


def test_a_wrong_precision_is_one_line_naming_the_flag(capsys):
    with pytest.raises(SystemExit):
        cli.parse_config(tl_mnist.Config, ["--precision", "bf16"], "", tl_mnist.QUICK)
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "--precision" in error[0] and "mixed_bfloat16" in error[0]


def run(argv: list[str], out) -> dict:
    config = cli.parse_config(tl_mnist.Config, [*argv, "--out", str(out)], "", tl_mnist.QUICK)
    return tl_mnist.main(config)


def test_bf16_runs_both_paths_alike_and_keeps_its_pretrained_model_apart(mnist_like_npz,
                                                                           tmp_path, capsys):
    argv = ["--data", mnist_like_npz, "--trials", "2", "--epochs", "3", "--small-size", "10",
            "--pretrain-epochs", "1", "--pretrain-batch-size", "32", "--models-dir",
            str(tmp_path / "models"), "--precision", "mixed_bfloat16"]
    plain = run([*argv, "--plain"], tmp_path / "plain")
    assert "mixed_bfloat16" in plain["device"]
    saved = json.loads(next((tmp_path / "models").glob("*.json")).read_text())
    assert saved["precision"] == "mixed_bfloat16"
    capsys.readouterr()
    engine = run(argv, tmp_path / "engine")
    assert "reusing" in capsys.readouterr().out  # same settings, same precision
    # The transfer heads train on the same frozen features: equal as in float32. The
    # CNNs from scratch round every layer's output to bf16's 8 bits, and the two paths
    # have been measured to part by one test image in one trial of such runs: each trial
    # within two test images, and the mean within one.
    test_images = 60  # mnist_like_npz: 12 test images of each odd digit
    np.testing.assert_allclose(plain["accuracies"]["transfer"], engine["accuracies"]["transfer"],
                               atol=1e-6)
    np.testing.assert_allclose(plain["accuracies"]["no transfer"],
                               engine["accuracies"]["no transfer"], atol=2 / test_images + 1e-6)
    assert abs(np.mean(plain["accuracies"]["no transfer"])
               - np.mean(engine["accuracies"]["no transfer"])) <= 1 / test_images + 1e-6
    # A float32 run does not reuse the bf16 model: it pretrains its own.
    run([*argv[:-1], "float32", "--trials", "1"], tmp_path / "float32")
    assert "reusing" not in capsys.readouterr().out
    saved = json.loads(next((tmp_path / "models").glob("*.json")).read_text())
    assert saved["precision"] == "float32"


def test_the_cpu_is_named_with_its_vector_width(tmp_path):
    avx512, avx2 = tmp_path / "avx512", tmp_path / "avx2"
    avx512.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: avx avx2 avx512f "
                      "avx512_bf16\n\nprocessor\t: 1\nmodel name\t: other\n")
    avx2.write_text("model name\t: Intel Xeon\nflags\t\t: sse2 avx avx2 fma\n")
    assert cpu.cpu_description(str(avx512)) == "AMD EPYC, AVX-512"
    assert cpu.cpu_description(str(avx2)) == "Intel Xeon, AVX2"
    assert cpu.cpu_description(str(tmp_path / "missing")) == ""  # not Linux: no claim
    assert "avx512_bf16" in cpu.cpu_flags(str(avx512))
    if not device.visible_gpus():  # the run's first line names this CPU's
        assert device.configure_device().startswith(f"CPU ({cpu.cpu_description()}")
