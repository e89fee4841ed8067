"""The console's control pages: an ARS sees its region's establishments by risk, draws the
year's plan, records a control and follows its recovery; the national team reads them;
GRADeS and vendors have no control pages."""

from __future__ import annotations

from datetime import timedelta

from app.clock import today
from tests.console.helpers import csrf_of, sign_in
from tests.test_controls import funded_region, planted


async def test_an_ars_reads_the_risk_list_draws_the_plan_and_records_a_control(
    client, factory, session
):
    numbers, project = await planted(session, factory, client)
    ars = await factory.token("ars", region="11", name="Agent ARS")
    await sign_in(client, ars)
    risk = await client.get("/console/controles/risques")
    assert risk.status_code == 200
    assert "<strong>9</strong> établissements signalés sur 12" in risk.text
    assert "Mêmes chiffres qu&#39;un autre établissement (éditeur ou EJ)" in risk.text
    assert numbers["late_jump"] in risk.text and numbers["honest_1"] not in risk.text
    assert "default-src 'self'" in risk.headers["content-security-policy"]
    finess = numbers["frozen_period_revision"]
    details = await client.get(f"/console/controles/etablissements/{finess}")
    assert "Tentative de révision d&#39;une période gelée" in details.text
    assert (
        f'href="/console/controles/etablissements/{finess}"'
        in (await client.get(f"/console/etablissements/{finess}")).text
    )
    whole = await client.get(f"/console/controles/projets/{project}")
    assert "<dd>9 sur 12 ayant transmis</dd>" in whole.text

    plan = await client.get("/console/controles/plan?annee=2026")
    assert "Le plan 2026 n'est pas encore tiré." in plan.text
    drawn = await client.post(
        "/console/controles/plan",
        data={
            "csrf": csrf_of(plan.text),
            "annee": "2026",
            "methode": "risk",
            "graine": "2026",
            "supplementaires": "0",
        },
    )
    assert drawn.status_code == 303
    shown = await client.get(drawn.headers["location"])
    assert "<code>2026</code>" in shown.text and '<span class="ok">identique</span>' in shown.text
    # by risk: the riskiest of the two départements (75 and 92) are in the plan
    assert numbers["shared_counts_b"] in shown.text or numbers["shared_counts_a"] in shown.text

    refused = await client.post(
        "/console/controles",
        data={
            "csrf": csrf_of(shown.text),
            "finess": numbers["late_jump"],
            "nature": "on_site",
            "date": (today() + timedelta(days=3)).isoformat(),
            "constats": "Relevés d'usage non probants",
            "conforme": "non",
            "indu": "2 500,00",
        },
    )
    assert refused.status_code == 422 and "controlled_on" in refused.text


async def test_control_pages_are_not_for_grades_vendors_nor_other_regions(client, factory):
    await funded_region(factory, {"75": 1})
    for headers, status in (
        (await factory.token("grades", region="11"), 403),
        (await factory.token("ars", region="84"), 200),  # its own controls: none
    ):
        client.cookies.clear()
        await sign_in(client, headers)
        assert (await client.get("/console/controles/risques?region=11")).status_code == 404
        assert (await client.get("/console/controles")).status_code == status
    client.cookies.clear()
    await sign_in(client, await factory.token("national"))
    assert (await client.get("/console/controles/risques?region=11")).status_code == 200
    assert (await client.get("/console/controles/plan?region=11")).status_code == 200
    assert "Enregistrer un contrôle" not in (await client.get("/console/controles")).text
