# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for ledgerguard.recovery.db_restore: connection and secrets resolved on the controller."""

from __future__ import annotations

from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.restic_action import ResticActionBase


class ActionModule(ResticActionBase):
    pass
