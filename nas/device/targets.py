"""The microcontrollers the C is built and measured for: a core, its compiler flags and the QEMU
machine that runs it. One table, used by the firmware, the compute model and `--target`."""

from __future__ import annotations

from dataclasses import dataclass

from nas.core.errors import NasError


@dataclass(frozen=True)
class Target:
    name: str  # the --target value
    cpu: str  # gcc's -mcpu
    machine: str  # qemu-system-arm -M
    arch: str  # the architecture its objects carry (readelf -A: Tag_CPU_arch; Armv7-M reads "v7")
    dsp: bool  # the Armv7E-M DSP extension (SMLAD, SMLABB, ...): the kernels' fast path
    description: str

    @property
    def flags(self) -> tuple[str, ...]:
        return (f"-mcpu={self.cpu}", "-mthumb")


TARGETS = {
    target.name: target
    for target in (
        Target("cortex-m4", "cortex-m4", "mps2-an386", "v7E-M", True, "Cortex-M4 (Armv7E-M, DSP instructions), QEMU MPS2-AN386"),
        Target("cortex-m3", "cortex-m3", "mps2-an385", "v7", False, "Cortex-M3 (Armv7-M, no DSP instructions), QEMU MPS2-AN385"),
    )
}
DEFAULT_TARGET = "cortex-m4"


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise NasError(f"--target {name}: unknown target; expected one of {', '.join(TARGETS)}")
    return TARGETS[name]
