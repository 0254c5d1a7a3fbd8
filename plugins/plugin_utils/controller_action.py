# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of the action plugins that work on the controller only (evidence, notices, on-call messages): nothing is
sent to the managed host. A subclass declares ``ARGUMENT_SPEC`` (and ``REQUIRED_IF``) and implements ``act``, which
gets the validated arguments and the task's variables and returns what to add to the task's result."""

from __future__ import annotations

from typing import Any, ClassVar

from ansible.plugins.action import ActionBase


class ControllerAction(ActionBase):
    TRANSFERS_FILES = False
    ARGUMENT_SPEC: ClassVar[dict[str, Any]] = {}
    REQUIRED_IF: ClassVar[list[tuple]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._VALID_ARGS = frozenset(cls.ARGUMENT_SPEC)

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC, required_if=self.REQUIRED_IF)
        result.update(self.act(args, task_vars or {}))
        return result

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError
