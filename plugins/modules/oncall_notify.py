#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the action plugin plugins/action/oncall_notify.py, which runs on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
module: oncall_notify
short_description: Tell the incident's on-call people at a milestone, from the controller, without blocking it
version_added: 0.1.0
description:
  - Renders one milestone's message per person, in the person's language (zh-CN or en), and sends it over each of the
    person's channels from the controller. Milestones are C(declare) (what, which hosts and clients, who leads, the
    report's future path), C(clients) (each client's result after the restore, restored and verified, restored but
    not verified, or failed), C(failure) (a step failed or a database named for the incident was not restored, and a
    person is needed, naming each failed step and database; skipped when there is none) and C(end) (the report's
    status, the achieved RTO, the longest data-loss window, the report's path; read from C(report.json) in the
    evidence folder).
  - With O(milestone=clients), when a host's O(hosts) C(databases) holds a database that was not restored, the
    C(failure) message naming each such database is sent right after the clients' results (the incident is partial
    and its run does not fail before the end).
  - Channels are the chat webhooks C(backup_verify) speaks (DingTalk, WeCom, Feishu, Slack, generic JSON; same
    payloads and signing) and C(mail) through SMTP from the controller.
  - A channel that is down, refuses the message or does not answer within O(timeout) seconds never fails the task.
    Each delivery is appended to C(<evidence_dir>/oncall.jsonl) (hash-chained like the timeline; time, milestone,
    person, channel kind, masked target, C(ok)/C(failed) and why, sha256 of the text) and written to the incident's
    timeline as a step of this task.
  - Webhook URLs (they hold the bot's token) are shown as C(scheme://host/…); signing secrets and SMTP passwords are
    never written to the record, the timeline or the result.
  - This is an action plugin; it runs on the controller whatever the task's host is and needs no connection.
author:
  - ledgerguard engineers (@ledgerguard)
options:
  milestone:
    description: Which message to send.
    type: str
    required: true
    choices: [declare, clients, failure, end]
  people:
    description:
      - The on-call list (C(ledgerguard_oncall)).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The person's name, e.g. C(张伟).
        type: str
        required: true
      role:
        description: C(lead) (named as the incident's lead; the first one wins) or another role, e.g. C(oncall).
        type: str
        default: oncall
      language:
        description: The language of the person's messages.
        type: str
        choices: [zh-CN, en]
        default: zh-CN
      channels:
        description: Where the person is told; every channel gets every message.
        type: list
        elements: dict
        default: []
        suboptions:
          kind:
            description: The channel's kind; C(mail) sends through SMTP, the others post to a chat webhook.
            type: str
            required: true
            choices: [dingtalk, wecom, feishu, slack, generic, mail]
          url:
            description: The webhook URL (chat kinds). It holds the bot's token; keep it in a vault.
            type: str
          secret:
            description: Signing secret (DingTalk 加签, Feishu 签名校验).
            type: str
          host:
            description: SMTP server (C(mail)).
            type: str
          port:
            description: SMTP port (C(mail)).
            type: int
            default: 25
          from:
            description: Sender address (C(mail)).
            type: str
          to:
            description: Recipient addresses (C(mail)).
            type: list
            elements: str
          secure:
            description: TLS (C(mail)); C(try) uses STARTTLS when the server offers it, C(ssl) is SMTPS.
            type: str
            choices: [never, try, starttls, ssl]
            default: try
          username:
            description:
              - SMTP user (C(mail)); its password comes from O(people[].channels[].password_file) or
                O(people[].channels[].password_env).
            type: str
          password_file:
            description:
              - A file on the controller holding the SMTP password (mode 0600); never put the password in the
                inventory.
            type: path
          password_env:
            description: An environment variable of the controller holding the SMTP password.
            type: str
  incident:
    description: The incident object (C(incident_record)); C(incident_id), C(evidence_dir), C(cause), C(summary),
      C(operator) and C(detected_at) are read.
    type: dict
    required: true
  hosts:
    description:
      - Per host of the incident, C(clients) (the selected clients, C(id) and C(name)), C(results) (the host's
        C(restore_results)), C(failed_step), C(failed_msg) and C(databases) (the host's C(restore_database_results),
        C(engine), C(database), C(ok), C(msg)).
    type: dict
    default: {}
  timeout:
    description: Seconds to wait for each channel.
    type: int
    default: 5
attributes:
  check_mode:
    support: full
    description: Sends nothing and records nothing; returns every message that would be sent, with its text.
  diff_mode:
    support: none
    description: No diff is shown.
  action:
    support: full
    description: Implemented by the action plugin of the same name.
  platform:
    support: full
    platforms: posix
    description: Runs on the controller.
notes:
  - "The task reports C(changed=false): telling people changes no managed state."
"""

EXAMPLES = r"""
- name: Tell the on-call people that the incident started
  ledgerguard.recovery.oncall_notify:
    milestone: declare
    people:
      - name: 张伟
        role: lead
        channels:
          - kind: dingtalk
            url: "{{ vault_dingtalk_oncall_url }}"
            secret: "{{ vault_dingtalk_oncall_secret }}"
          - kind: mail
            host: smtp.example.cn
            port: 587
            from: ledgerguard@example.cn
            to: [zhangwei@example.cn]
            secure: starttls
            username: ledgerguard@example.cn
            password_file: /etc/ledgerguard/smtp-password
      - name: Li Na
        language: en
        channels:
          - kind: slack
            url: "{{ vault_slack_oncall_url }}"
    incident: "{{ incident_record }}"
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
deliveries:
  description: One entry per person and channel, as written to oncall.jsonl.
  returned: always
  type: list
  elements: dict
  contains:
    time:
      description: When it was sent (UTC).
      type: str
    milestone:
      description: The milestone.
      type: str
    person:
      description: The person's name.
      type: str
    role:
      description: The person's role.
      type: str
    language:
      description: The message's language.
      type: str
    channel:
      description: The channel's kind.
      type: str
    target:
      description: The masked webhook URL (C(scheme://host/…)) or C(smtp://host:port -> recipients).
      type: str
    title:
      description: The message's title (mail subject).
      type: str
    text_sha256:
      description: sha256 of the message's text (UTF-8), as sent.
      type: str
    status:
      description: C(ok), C(failed), or C(would_send) in check mode.
      type: str
    reason:
      description: The receiver's answer, or why it failed (e.g. C(connection refused)).
      type: str
    text:
      description: The message's text (check mode only).
      type: str
    record_error:
      description:
        - Why this delivery is not in oncall.jsonl (the file could not be written); the message went out as
          RV(deliveries[].status) says, a warning names it, and the task does not fail.
      type: str
      returned: when oncall.jsonl could not be written
record:
  description: The file the deliveries were appended to (empty in check mode or when the evidence folder is missing).
  returned: unless O(milestone=failure) is skipped because no step failed (nothing to tell)
  type: str
"""
