# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: evidence_root
short_description: The controller's default evidence root, outside the collection
version_added: 0.1.0
description:
  - Returns where the roles keep evidence folders when C(ledgerguard_evidence_dir) is not set, so a playbook run by
    FQCN from an installed collection never writes into the collection's own folder.
  - C($LEDGERGUARD_EVIDENCE_DIR) when set (relative values are taken from the controller's working directory); else
    C(/var/lib/ledgerguard/evidence) when Ansible runs as root; else C($XDG_STATE_HOME/ledgerguard/evidence), that is
    C(~/.local/state/ledgerguard/evidence).
  - The same rule gives the C(ledgerguard) command line its default, so the CLI and the playbooks agree.
  - Takes no terms. The folder is not created here; the roles create it when they write evidence.
author:
  - ledgerguard engineers (@ledgerguard)
"""

EXAMPLES = r"""
- name: Where would this controller keep evidence?
  ansible.builtin.debug:
    msg: "{{ ledgerguard_evidence_dir | default(lookup('ledgerguard.recovery.evidence_root')) }}"
"""

RETURN = r"""
_raw:
  description: One absolute path, the evidence root.
  type: list
  elements: path
"""

# Ansible plugins put DOCUMENTATION before imports.
from ansible.errors import AnsibleLookupError  # noqa: E402
from ansible.plugins.lookup import LookupBase  # noqa: E402

from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.evidence_pack import (  # noqa: E402
    default_evidence_root,
)


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        if terms:
            raise AnsibleLookupError(
                f"ledgerguard.recovery.evidence_root takes no terms, got {terms!r}; set LEDGERGUARD_EVIDENCE_DIR or "
                "ledgerguard_evidence_dir to choose the folder"
            )
        return [str(default_evidence_root())]
