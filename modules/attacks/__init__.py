"""Training and evaluation attacks, on torchattacks' `atk(x, y)` interface."""

from modules.attacks.apgd import APGD, project
from modules.attacks.base import RobustAttack
from modules.attacks.factory import ATTACKS, AttackConfig, build_attack
from modules.attacks.mode import as_attack_input, attack_mode, eval_mode

__all__ = ["APGD", "ATTACKS", "AttackConfig", "RobustAttack", "as_attack_input", "attack_mode", "build_attack", "eval_mode", "project"]
