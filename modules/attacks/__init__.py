"""Training and evaluation attacks, on torchattacks' `atk(x, y)` interface."""

from modules.attacks.apgd import APGD, project
from modules.attacks.base import RobustAttack
from modules.attacks.factory import ATTACKS, AttackConfig, build_attack
from modules.attacks.mode import as_attack_input, attack_mode, eval_mode
from modules.attacks.square_l1 import SquareL1

__all__ = ["APGD", "ATTACKS", "AttackConfig", "RobustAttack", "SquareL1", "as_attack_input", "attack_mode", "build_attack", "eval_mode", "project"]
