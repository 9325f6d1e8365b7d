"""``python -m bench.enrichment_cost``: what naming things in delivered items costs a poll.

Contacts and opportunities come out of polls with their custom fields by name, pipeline and
stage names and a link (``ghl/enrichment.py``), from lookups cached for a minute per
credential and location. This measures, in one run and as a ratio, the service's CPU per poll
of a contact trigger and an opportunity trigger whose items carry custom fields, with
enrichment as it is and with ``enrich_items`` replaced at run time by a pass-through. The
service runs in this process (Flask's test client), the sandbox in its own, so the CPU timer
counts only the service.
"""

import argparse
import logging
import tempfile

from bench.harness import LOCATION, SandboxProcess
from bench.profile_poll import cpu_ms_per_poll, make_app
from ghl import enrichment

TRIGGERS = {"search_contacts": "/contacts/", "search_opportunities": "/opportunities"}


def poller(app, trigger, prefix):
    client = app.test_client()

    def poll(n):
        # One token for the run: the lookups are cached per credential, as for one agency's Zaps.
        response = client.post(f"/triggers/{trigger}", json={}, headers={
            "Authorization": "Bearer bench-token-1", "X-Location-Id": LOCATION, "X-Subscriber-Id": f"{prefix}{n}"})
        assert response.status_code == 200, response.data[:300]
    return poll


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.enrichment_cost")
    parser.add_argument("--items", type=int, default=20, help="extra records with custom fields (default 20)")
    parser.add_argument("--polls", type=int, default=300)
    args = parser.parse_args(argv)
    custom = [{"id": "sandbox-field-1", "value": "Teal"}, {"id": "sandbox-field-2", "value": 42}]
    with tempfile.TemporaryDirectory(prefix="ghl-enrichment-") as workdir, \
            SandboxProcess(latency_ms=0, burst_limit=10 ** 9, daily_limit=10 ** 12, tokens=4) as sandbox:
        sandbox.add_records("/contacts/", [{"firstName": f"E{n}", "email": f"e{n}@example.com", "customFields": custom}
                                           for n in range(args.items)])
        sandbox.add_records("/opportunities", [
            {"name": f"Deal {n}", "pipelineId": "sandbox-pipeline-1", "pipelineStageId": "sandbox-stage-1",
             "status": "open", "contactId": "sandbox-contact-1",
             "customFields": [{"id": "sandbox-field-3", "fieldValue": "Website"}]} for n in range(args.items)])
        as_is = enrichment.enrich_items
        results = {}
        for trigger in TRIGGERS:
            for name, enrich in (("enriched", as_is), ("pass-through", lambda context, record, items: items)):
                enrichment.enrich_items = enrich
                try:
                    app = make_app(sandbox.url, f"{workdir}/{trigger}-{name}.sqlite3")
                    logging.getLogger().setLevel(logging.WARNING)
                    results[trigger, name] = cpu_ms_per_poll(poller(app, trigger, name), args.polls)
                finally:
                    enrichment.enrich_items = as_is
            enriched, plain = results[trigger, "enriched"], results[trigger, "pass-through"]
            print(f"{trigger:22} enriched {enriched:6.2f} ms CPU per poll, pass-through {plain:6.2f} ms: "
                  f"x{enriched / plain:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
