"""The device: the exported C fed raw PCM gives the engine's logits (host gcc and Cortex-M4 in
QEMU), and the compiler's bytes are the memory model's, array by array."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest
import torch

from nas.data.dataset import Waveform, list_recordings, read_all
from nas.device.cexport import generate
from nas.device.cfrontend import generate_frontend
from nas.device.compute import CLASSIFY_TOLERANCE, TOLERANCE, predict_instructions
from nas.device.firmware import (
    QEMU,
    build_firmware,
    run_firmware,
    run_frontend_firmware,
    write_firmware,
    write_frontend_firmware,
)
from nas.device.memory import memory_breakdown
from nas.device.regions import STACK_RESERVE_BYTES
from nas.device.targets import TARGETS
from nas.device.toolchain import ARM, HOST, available, compile_export
from nas.engine.intmodel import from_float_model
from nas.features.extract import FeatureCache, FeatureConfig, Normaliser
from nas.features.frontend import NORM_FRAC, normalisation_constants
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.model.models import RecurrentClassifier
from tests.ccheck import run_c_model

CASES = {
    "gru-pow2-default": ("gru", 2, 24, QuantConfig.make("pow2", 4), FeatureConfig()),
    "lstm-fixed-8bit-small": (
        "lstm",
        1,
        20,
        QuantConfig.make("fixed", 6, state_bits=8),
        FeatureConfig(n_fft=128, n_mels=20, hop_length=64),
    ),
    "rnn-pow2-bias32-wide": (
        "rnn",
        2,
        16,
        QuantConfig.make("pow2", 3, bias_bits=32),
        FeatureConfig(n_mfcc=20, n_mels=64, n_fft=512, hop_length=160),
    ),
    # the running mean of "running" normalisation: one more int32 per coefficient in the stream
    "gru-pow2-running-mean": ("gru", 1, 24, QuantConfig.make("pow2", 4), FeatureConfig(n_mfcc=10, normalisation="running")),
}


def require(tool: str) -> None:
    """Skip without the tool, except in CI (NAS_REQUIRE_TOOLCHAINS=1, set by .ci/run), where it must be there."""
    if not available(tool):
        if os.environ.get("NAS_REQUIRE_TOOLCHAINS"):
            pytest.fail(f"{tool}: not installed, and NAS_REQUIRE_TOOLCHAINS is set")
        pytest.skip(f"{tool} not installed")


@pytest.fixture(scope="module")
def waves(fsdd_dir):
    recordings = list_recordings(fsdd_dir)
    return read_all([r for r in recordings if r.index in (0, 1)][:40])  # every digit, several speakers


def build(folder, case: str, waves):
    cell, layers, hidden, quant, features = CASES[case]
    torch.manual_seed(3)
    config = ModelConfig(cell=cell, layers=layers, hidden=hidden, n_input=features.n_mfcc)
    engine = from_float_model(RecurrentClassifier(config), quant)
    raw = FeatureCache(None).get(waves, features)
    normaliser = Normaliser.fit(raw, features.normalisation, integer=True)
    header, source = generate(engine, features, normaliser.constants())
    (folder / "model.h").write_text(header)
    (folder / "model.c").write_text(source)
    expected = np.concatenate([engine.logits([engine.quantize_frames(normaliser.apply(f))]) for f in raw])
    return config, quant, features, expected, [len(f) for f in raw]


@pytest.mark.parametrize("case", CASES)
def test_pcm_in_gives_the_engines_logits(tmp_path, case, waves):
    require(HOST)
    config, quant, features, expected, frames = build(tmp_path, case, waves)
    classes, logits, c_frames, (packed, struct) = run_c_model(tmp_path, [w.samples for w in waves], pcm=True)
    assert list(c_frames) == frames
    assert np.array_equal(logits, expected)
    assert np.array_equal(classes, expected.argmax(axis=1))
    breakdown = memory_breakdown(config, quant, features)
    assert (packed, struct) == (breakdown.packed_bytes, breakdown.struct_bytes)


def test_a_recording_shorter_than_one_window_is_zero_padded(tmp_path, waves):
    require(HOST)
    short = [w.samples[:100] for w in waves[:3]] + [waves[3].samples[:0]]
    _, _, features, _, _ = build(tmp_path, "gru-pow2-default", waves)
    from nas.features.frontend import frame_samples

    assert all(len(frame_samples(s, features.n_fft, features.hop_length)) == 1 for s in short)
    _, _, c_frames, _ = run_c_model(tmp_path, short, pcm=True)
    assert list(c_frames) == [1, 1, 1, 1]


@pytest.mark.parametrize("compiler", [HOST, ARM])
@pytest.mark.parametrize("case", CASES)
def test_the_compiler_measures_the_memory_model(tmp_path, case, compiler, waves):
    """nm -S of each array = its lines; .rodata = flash; .bss of one stream = the struct; no .data;
    the deepest stack of every public function within the reserve."""
    require(compiler)
    config, quant, features, _, _ = build(tmp_path, case, waves[:4])
    breakdown = memory_breakdown(config, quant, features)
    compiled = compile_export(tmp_path, compiler)
    expected_symbols: dict[str, int] = {}
    for item in breakdown.items:
        if item.region == "flash":
            expected_symbols[item.symbol] = expected_symbols.get(item.symbol, 0) + int(item.nbytes)
    expected_symbols["nas_instance"] = breakdown.struct_bytes
    assert compiled.symbols == expected_symbols
    assert compiled.rodata_bytes == breakdown.flash_bytes
    assert compiled.data_bytes == 0
    assert compiled.bss_bytes == breakdown.struct_bytes == breakdown.ram_bytes - STACK_RESERVE_BYTES
    assert compiled.rodata_bytes + compiled.data_bytes + compiled.bss_bytes + STACK_RESERVE_BYTES == breakdown.total_bytes
    assert set(compiled.stack_bytes) >= {"nas_reset", "nas_push_samples", "nas_end", "nas_push_frame", "nas_classify"}
    assert 0 < compiled.max_stack_bytes <= STACK_RESERVE_BYTES, compiled.stack_chains


# the default space's widths, and pow2 6-bit (int32 multipliers: the plain path on every core)
QEMU_WIDTHS = [("pow2", 3), ("pow2", 4), ("pow2", 5), ("pow2", 6), ("fixed", 4), ("fixed", 6), ("fixed", 8)]
QEMU_CELLS = ["lstm", "gru", "gru", "gru", "rnn", "gru", "gru"]  # GRUs of 21 units, the others of 45
# pow2 4-bit with its multipliers in pairs (32,768 codes or more: nas.device.regions.pair_table)
PAIRED_QEMU_CASE = ("pow2", 4, "gru", 100)


def qemu_recordings(fsdd_dir) -> list:
    """Ten real recordings (one of each digit) and three extreme ones: a full-scale square wave,
    silence, and samples alternating between the two extremes."""
    recordings = [r for r in list_recordings(fsdd_dir) if r.index == 5 and r.speaker in ("jackson", "theo")]
    chosen = read_all([next(r for r in recordings if r.digit == d) for d in range(10)])
    square = np.where(np.arange(3000) // 20 % 2, 32767, -32768).astype(np.int16)
    alternating = np.where(np.arange(2000) % 2, 32767, -32768).astype(np.int16)
    silence = np.zeros(1500, np.int16)
    extremes = ((square, "square"), (silence, "silence"), (alternating, "alternating"))
    return chosen + [Waveform(chosen[0].recording, samples, name) for samples, name in extremes]


@pytest.fixture(scope="module")
def qemu_audio(fsdd_dir):
    """The QEMU tests' recordings, the default front-end, its raw frames and normaliser: computed once."""
    waves = qemu_recordings(fsdd_dir)
    features = FeatureConfig()
    raw = FeatureCache(None).get(waves, features)
    return waves, features, raw, Normaliser.fit(raw, features.normalisation, integer=True)


def run_in_qemu(folder, engine, qemu_audio, target: str):
    """The engine's C built for `target` and fed the audio in QEMU: (the run, the engine's logits)."""
    waves, features, raw, normaliser = qemu_audio
    header, source = generate(engine, features, normaliser.constants())
    (folder / "model.h").write_text(header)
    (folder / "model.c").write_text(source)
    expected = np.concatenate([engine.logits([engine.quantize_frames(normaliser.apply(f))]) for f in raw])
    write_firmware(folder, [w.samples for w in waves], expected)
    return run_firmware(build_firmware(folder, target), target=target), expected


@pytest.mark.parametrize("target", TARGETS)
def test_each_target_in_qemu_gives_the_engines_logits_for_every_scheme(tmp_path, qemu_audio, target):
    """Every weight scheme and width of the default space (and pow2 6-bit), both accumulator widths, every cell, the
    DSP path (Cortex-M4) and the plain one (Cortex-M3), real and extreme audio: QEMU's logits are
    the engine's (and the bare-metal build needs no library function)."""
    require(ARM)
    require(QEMU)
    _, features, raw, _ = qemu_audio
    cases = [(scheme, bits, cell, 21 if cell == "gru" else 45) for (scheme, bits), cell in zip(QEMU_WIDTHS, QEMU_CELLS, strict=True)]
    for scheme, bits, cell, hidden in [*cases, PAIRED_QEMU_CASE]:
        torch.manual_seed(bits)
        config = ModelConfig(cell=cell, hidden=hidden, n_input=features.n_mfcc)
        engine = from_float_model(RecurrentClassifier(config), QuantConfig.make(scheme, bits))
        run, expected = run_in_qemu(tmp_path, engine, qemu_audio, target)
        assert run.mismatches == 0, (scheme, bits, run.output[-2000:])
        assert np.array_equal(run.logits, expected), (scheme, bits)
        assert list(run.frames) == [len(f) for f in raw] and len(run.frames) == 13
        predicted = predict_instructions(config, engine.quant, features, target)
        assert abs(predicted.per_frame / run.instructions_per_frame - 1) <= TOLERANCE, (scheme, bits, predicted, run.instructions_per_frame)
        assert abs(predicted.classify / run.classify_instructions.mean() - 1) <= CLASSIFY_TOLERANCE, (scheme, bits, predicted)
        assert predicted.calibrated


@pytest.mark.parametrize("target", TARGETS)
def test_each_target_in_qemu_saturates_as_the_engine(tmp_path, qemu_audio, target):
    """Weights 8 times a fresh model's drive the gates' pre-activations past Q3.12's range, so that
    each saturation (SSAT on both cores, the host's plain clamp elsewhere) and the sigmoid table's
    end are taken: QEMU's logits are still the engine's, for a GRU and an LSTM."""
    require(ARM)
    require(QEMU)
    features = qemu_audio[1]
    for cell in ("gru", "lstm"):
        torch.manual_seed(5)
        config = ModelConfig(cell=cell, hidden=20, n_input=features.n_mfcc)
        model = RecurrentClassifier(config)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.mul_(8)
        run, expected = run_in_qemu(tmp_path, from_float_model(model, QuantConfig.make("fixed", 8)), qemu_audio, target)
        assert run.mismatches == 0 and np.array_equal(run.logits, expected), (cell, run.output[-2000:])


@pytest.mark.parametrize(("scheme", "bits", "shapes"), [("pow2", 3, ((55, 13), (56, 13))), ("pow2", 4, ((54, 13), (55, 16)))])
def test_the_kernel_is_one_machine_code_for_every_shape_of_a_format(tmp_path, scheme, bits, shapes):
    """gcc may specialise a static function on what every call has in common (a constant argument, the
    known low bits of a row number): the kernel then runs faster or slower with the model's shape, and
    no count of the C predicts it. The kernel is noipa and its rows start on bytes, so two shapes of
    one format (odd and even hidden sizes and inputs) build the same bytes of dot2_rows."""
    require(ARM)
    codes = []
    for hidden, inputs in shapes:
        torch.manual_seed(hidden)
        config = ModelConfig(hidden=hidden, n_input=inputs)
        engine = from_float_model(RecurrentClassifier(config), QuantConfig.make(scheme, bits))
        folder = tmp_path / str(hidden)
        folder.mkdir()
        header, source = generate(engine, FeatureConfig(n_mfcc=inputs), normalisation_constants(np.zeros(inputs), np.ones(inputs)))
        (folder / "model.h").write_text(header)
        (folder / "model.c").write_text(source)
        compile_export(folder, ARM)
        obj = folder / f"build-{ARM}" / "model.o"
        binary = folder / "dot2_rows.bin"
        subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", "--only-section=.text.dot2_rows", str(obj), str(binary)], check=True)
        codes.append(binary.read_bytes())
    assert len(codes[0]) > 100 and codes[0] == codes[1]


@pytest.mark.parametrize("target", TARGETS)
def test_each_target_in_qemu_computes_the_frontends_features_alone(tmp_path, qemu_audio, target):
    """The front-end's own program (what bench/compute.py measures): its features in QEMU are the
    Python front-end's, frame by frame, on real and extreme audio."""
    require(ARM)
    require(QEMU)
    waves, features, raw, normaliser = qemu_audio
    header, source = generate_frontend(features, *normaliser.constants())
    (tmp_path / "frontend.h").write_text(header)
    (tmp_path / "frontend.c").write_text(source)
    expected = [np.round(normaliser.apply(f) * 2**NORM_FRAC).astype(np.int64) for f in raw]
    write_frontend_firmware(tmp_path, [w.samples for w in waves], expected)
    elf = build_firmware(tmp_path, target, "frontend")
    attributes = subprocess.run(["arm-none-eabi-readelf", "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    assert f"Tag_CPU_arch: {TARGETS[target].arch}\n" in attributes  # built for its own core
    run = run_frontend_firmware(elf, target=target)
    assert run.mismatches == 0, run.output[-2000:]
    assert list(run.frames) == [len(f) for f in raw]
    predicted = predict_instructions(ModelConfig(n_input=features.n_mfcc), QuantConfig.make("pow2", 4), features, target)
    assert abs(predicted.frontend_per_frame / run.instructions_per_frame - 1) <= TOLERANCE, (predicted, run.instructions_per_frame)
