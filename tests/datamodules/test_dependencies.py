"""The data package stands on the shared plumbing (modules.registry) only, never on the model wing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
WINGS = ("modules.model", "modules.attacks", "modules.evaluation", "modules.callbacks")


def test_importing_the_datasets_imports_no_model_attack_evaluation_or_callback_code():
    code = "import json, sys, datamodules; print(json.dumps(sorted(m for m in sys.modules if m.startswith('modules'))))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    imported = json.loads(done.stdout.splitlines()[-1])
    assert "modules.registry" in imported  # it does use the plumbing
    assert not [name for name in imported if name.startswith(WINGS)], imported
