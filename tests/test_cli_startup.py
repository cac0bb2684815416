"""The CLI starts without the heavy stack: ``edgessl --help`` (and every command's parsing)
imports neither torchvision nor scipy; each costs seconds of start-up on a small CPU and is
imported by the command that needs it."""

from __future__ import annotations

import json
import subprocess
import sys


def test_registering_every_command_imports_no_torchvision_or_scipy():
    code = ("import json, sys; from edgessl.cli import register_commands; register_commands(); "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'torchvision', 'scipy', 'onnx', 'onnxruntime', 'sklearn'})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == []


def test_baselines_still_build_torchvision_networks_on_first_use():
    from edgessl.baselines import build_baseline

    net = build_baseline("mobilenet_v3_small")
    assert type(net).__module__ == "torchvision.models.mobilenetv3"
    assert net.feature_dim == 1024
