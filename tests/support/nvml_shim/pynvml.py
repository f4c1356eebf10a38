"""Stands in for pynvml in a subprocess (PYTHONPATH=this folder): a FakeNvml built from the
JSON scenario in $FAKE_NVML_SCENARIO, with the real pynvml's constants and exceptions."""

import json
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(_here)))  # the tests/ folder, for support.fake_nvml

from support.fake_nvml import FakeNvml, load_real_pynvml  # noqa: E402

_fake = FakeNvml(json.loads(os.environ["FAKE_NVML_SCENARIO"]), real=load_real_pynvml(_here))


def __getattr__(name):
    return getattr(_fake, name)
