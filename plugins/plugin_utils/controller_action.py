# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of the action plugins that work on the controller only (evidence, notices, on-call messages): nothing is
sent to the managed host. A subclass declares ``ARGUMENT_SPEC`` (and ``REQUIRED_IF``) and implements ``act``, which
gets the validated arguments and the task's variables and returns what to add to the task's result."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template


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

    def render(self, name: str, variables: dict[str, Any]) -> str:
        """The calling role's template ``name`` (its ``templates/`` folder) rendered with ``variables``, as
        ``ansible.builtin.template`` renders it (trim_blocks, the template's folder on the include path)."""
        source = self._find_needle("templates", name)
        data = trust_as_template(self._loader.get_text_file_contents(source))
        templar = self._templar.copy_with_new_env(searchpath=[os.path.dirname(source)], available_variables=variables)
        text = templar.template(data, escape_backslashes=False)
        return "" if text is None else str(text)

    def variable(self, name: str) -> Any:
        """The task's variable ``name`` (a plain name or ``a.b``), templated now: an error in it (a filter that refuses
        its input, an undefined variable) raises ``AnsibleError`` here, where the action can report it, and not while
        the task's arguments are templated."""
        return self._templar.resolve_variable_expression(name)

    @staticmethod
    def play_hosts_vars(task_vars: dict[str, Any], name: str) -> dict[str, Any]:
        """``name`` of every host of the play (``ansible_play_hosts_all``) that defines it, by host (templated)."""
        hostvars = task_vars.get("hostvars") or {}
        out = {}
        for host in task_vars.get("ansible_play_hosts_all") or []:
            variables = hostvars.get(host) if hasattr(hostvars, "get") else None
            if variables is not None and name in variables:
                out[host] = variables[name]
        return out
