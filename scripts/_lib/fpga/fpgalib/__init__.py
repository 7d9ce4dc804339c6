"""Shared code for the FPGA-synthesis script family (ternary vs int8 MAC, TeLLMe-style).

``params`` is pure and import-free (used by every ``check.py``); ``gen`` writes Verilog
and the Python reference; ``verify`` simulates with Icarus Verilog; ``synth`` drives
yosys; ``pnr`` drives nextpnr-ice40; ``tools`` finds executables.
"""
