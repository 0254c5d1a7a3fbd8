"""prometheus_textfile: node_exporter textfile format."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ledgerguard.recovery.plugins.filter.metrics import prometheus_textfile


def test_families_and_escaping():
    text = prometheus_textfile(
        [
            {
                "name": "lg_age_seconds",
                "help": "Age\nof newest",
                "labels": {"host": "h1", "client": '账"簿\\'},
                "value": 12,
            },
            {
                "name": "lg_status",
                "type": "gauge",
                "samples": [{"labels": {}, "value": True}, {"labels": {"a": "b"}, "value": None}],
            },
            {"name": "lg_age_seconds", "labels": {"host": "h2"}, "value": 1.5},
            {"name": "lg_inf", "value": float("inf")},
        ]
    )
    assert text == (
        "# HELP lg_age_seconds Age\\nof newest\n"
        "# TYPE lg_age_seconds gauge\n"
        'lg_age_seconds{host="h1",client="账\\"簿\\\\"} 12\n'
        'lg_age_seconds{host="h2"} 1.5\n'
        "# HELP lg_status lg_status\n"
        "# TYPE lg_status gauge\n"
        "lg_status 1\n"
        "# HELP lg_inf lg_inf\n"
        "# TYPE lg_inf gauge\n"
        "lg_inf +Inf\n"
    )


def test_empty():
    assert prometheus_textfile([]) == ""
    assert prometheus_textfile([{"name": "x", "value": None}]) == ""


@pytest.mark.parametrize(
    "items,msg",
    [
        ([{"name": "1bad", "value": 1}], "'1bad' is not a valid metric name"),
        ([{"name": "ok", "labels": {"bad-label": 1}, "value": 1}], "'bad-label' is not a valid label name"),
        ([{"name": "ok", "value": "abc"}], "has value 'abc', not a number"),
        ([{"name": "ok", "type": "histogram", "value": 1}], "type 'histogram' is not one of"),
    ],
)
def test_invalid(items, msg):
    with pytest.raises(AnsibleFilterError, match=msg):
        prometheus_textfile(items)
