"""`nas memory`: the device memory of one configuration, and whether it fits a budget."""

from __future__ import annotations

import argparse

from nas.cli.options import (
    add_budget_options,
    add_compute_budget_option,
    add_json_option,
    add_model_options,
    add_quant_options,
    add_target_option,
)
from nas.cli.output import EXIT_CHECK_FAILED, console, json_mode, print_json, say
from nas.core.errors import NasError
from nas.data.dataset import SAMPLE_RATE
from nas.device.memory import Budget, format_bytes
from nas.features.extract import FeatureConfig
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig


def add_memory_command(commands) -> None:
    """nas memory"""
    memory = commands.add_parser("memory", help="size breakdown of a configuration; --solve hidden for the largest that fits a budget")
    add_model_options(memory, features=False)
    add_quant_options(memory)
    add_budget_options(memory)
    memory.add_argument(
        "--solve", choices=("hidden",), help="find the largest hidden size within --budget-kb (default: size the given --hidden)"
    )
    add_compute_budget_option(memory)
    add_target_option(memory)
    add_json_option(memory, "the breakdown and the compute")
    memory.set_defaults(command="memory")


def cmd_memory(args: argparse.Namespace) -> int:
    from nas.device.memory import largest_hidden, memory_breakdown
    from nas.report.tables import breakdown_table

    quant = QuantConfig.make(args.weights, args.weight_bits, args.bias_bits, args.state_bits)
    model = ModelConfig(args.cell, args.layers, args.hidden, n_input=args.n_mfcc)
    model.validate()
    if args.mcu_mhz is not None and args.budget_kb is None:
        raise NasError("--mcu-mhz: needs --budget-kb (the clock is a limit of the budget)")
    budget = (
        None
        if args.budget_kb is None
        else Budget.from_kb(args.budget_kb, args.budget_scope, args.flash_kb, args.ram_kb, args.mcu_mhz, args.target)
    )
    features = (
        None
        if args.no_frontend
        else FeatureConfig(
            n_mfcc=args.n_mfcc, n_mels=args.n_mels, n_fft=args.n_fft, hop_length=args.hop_length, normalisation=args.normalisation
        )
    )
    if features is not None:
        features.validate()
    if args.solve == "hidden":
        if budget is None:
            raise NasError("--solve hidden: needs --budget-kb")
        hidden = largest_hidden(budget, model, quant, features)
        if hidden == 0:
            broken = "; ".join(budget.exceeded(memory_breakdown(model.with_hidden(1), quant, features).to_dict()))
            raise NasError(f"--budget-kb {args.budget_kb}: no hidden size fits (at hidden 1: {broken})")
        model = model.with_hidden(hidden)
        say(f"largest hidden size within {budget.describe()}: {hidden}")
    breakdown = memory_breakdown(model, quant, features)
    broken = budget.exceeded(breakdown.to_dict()) + budget.compute_exceeded(model, quant, features) if budget is not None else []
    code = EXIT_CHECK_FAILED if broken else 0  # over the budget is a failed check, as a script needs to see
    compute = compute_document(model, quant, features, args.target)
    if json_mode(args):
        print_json("memory", memory_document(model, quant, features, breakdown, budget, broken) | {"compute": compute})
        return code
    console.print(breakdown_table(breakdown, f"{model.describe()}, {quant.describe()}"))
    if compute is not None:
        say(compute_line(compute))
    if budget is not None:
        say(
            f"budget: {budget.describe()} | uses {format_bytes(breakdown.scoped_bytes(budget.scope))} | "
            f"{'over budget: ' + '; '.join(broken) if broken else 'fits'}"
        )
    return code


def compute_document(model, quant, features, target: str) -> dict | None:
    """The compute model's instructions on `target` (None for float weights: the device runs integers)."""
    from nas.device.compute import predict_instructions

    if not quant.quantized:
        return None
    predicted = predict_instructions(model, quant, features, target)
    document = predicted.to_dict()
    if features is not None:
        hop_seconds = features.hop_length / SAMPLE_RATE
        document |= {"hop_seconds": hop_seconds, "mips_for_real_time": round(predicted.mips(hop_seconds), 2)}
    return document


def compute_line(compute: dict) -> str:
    line = f"compute on {compute['target']}: about {compute['instructions_per_frame']:,} instructions per frame"
    if "mips_for_real_time" in compute:
        line += (
            f" (front-end {compute['frontend_instructions_per_frame']:,}, model {compute['model_instructions_per_frame']:,}), "
            f"{compute['mips_for_real_time']:g} MIPS for real time at a {compute['hop_seconds'] * 1000:g} ms hop"
        )
    line += f"; classify {compute['classify_instructions']:,} once per utterance (predicted, calibrated against QEMU"
    return line + ("" if compute["calibrated"] else "; this kernel variant was not calibrated: an upper estimate") + ")"


def memory_document(model, quant, features, breakdown, budget, broken: list[str]) -> dict:
    """`nas memory --json`: the configuration, its breakdown and the budget check."""
    check = None
    if budget is not None:
        check = {
            "limit_bytes": budget.limit_bytes,
            "scope": budget.scope,
            "flash_bytes": budget.flash_bytes,
            "ram_bytes": budget.ram_bytes,
            "used_bytes": breakdown.scoped_bytes(budget.scope),
            "fits": not broken,
            "exceeded": broken,
        }
    return {
        "model_config": model.to_dict(),
        "quant_config": quant.to_dict(),
        "feature_config": features.to_dict() if features is not None else None,
        "memory": breakdown.to_dict(),
        "budget": check,
    }
