"""Energy sources: the ADE7953 metering IC on I²C, and a simulated household."""

from .ade7953 import Ade7953, Ade7953EnergySource
from .base import EnergyEvent, EnergyResult, EnergySource
from .simulated import Bypass, SimulatedEnergySource

__all__ = [
    "Ade7953",
    "Ade7953EnergySource",
    "Bypass",
    "EnergyEvent",
    "EnergyResult",
    "EnergySource",
    "SimulatedEnergySource",
]
