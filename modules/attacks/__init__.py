"""Training and evaluation attacks, on torchattacks' `atk(x, y)` interface, built through one registry."""

from modules.attacks.apgd import APGD
from modules.attacks.autoattack import AutoAttack
from modules.attacks.base import RobustAttack
from modules.attacks.fab import FAB
from modules.attacks.factory import ATTACKS, AttackConfig, build_attack, check_training_attack
from modules.attacks.mode import as_attack_input, attack_mode, eval_mode
from modules.attacks.norms import NORMS, clip_to_ball, project
from modules.attacks.square import Square

__all__ = [
    "APGD",
    "ATTACKS",
    "AttackConfig",
    "AutoAttack",
    "FAB",
    "NORMS",
    "RobustAttack",
    "Square",
    "as_attack_input",
    "attack_mode",
    "build_attack",
    "check_training_attack",
    "clip_to_ball",
    "eval_mode",
    "project",
]
