"""The console's pages show the API's figures to an ARS, the national team and a vendor:
region home, projects (filters, search, exports), a project (funding, compliance, events
recorded after a preview), an establishment, completeness, pilots, a vendor's upload."""

from __future__ import annotations

import io
import re

import openpyxl
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.clock import Month
from app.extracts.models import Measurement
from tests.console.helpers import csrf_of, sign_in
from tests.test_balance_flow import MEETS, compliance, create_project, event
from tests.test_extracts import extract, push

EUR = "\u00a0€"


def euros(text: str) -> str:
    """How the pages write an amount: 63 000,00 € (narrow no-break space)."""
    return text + EUR


async def funded_project(client, factory, reference="IDF-2023-042"):
    """A notified project of three establishments, its advance paid: two meet the targets,
    one misses the DMP rate by one point."""
    ars = await factory.token("ars", region="11", name="Agent ARS")
    project, numbers, vendor = await create_project(client, factory, ars, reference=reference)
    pid = project["id"]
    for kind, day in [
        ("notified", "2023-06-01"),
        ("convention_signed", "2023-07-01"),
        ("advance_paid", "2023-07-20"),
    ]:
        assert (await event(client, ars, pid, kind, day)).status_code == 201
    a, b, c = numbers
    await push(
        client,
        vendor,
        extract(a, "2025-01", "2025-03", **MEETS),
        extract(b, "2025-01", "2025-03", **MEETS),
        extract(c, "2025-01", "2025-03", **(MEETS | {"dmp_fed_persons": 69})),
    )
    return ars, pid, numbers, vendor


async def test_region_home_shows_envelope_statuses_chart_and_missing_reports(client, factory):
    ars, _, _, _ = await funded_project(client, factory)
    await sign_in(client, ars)
    page = await client.get("/console/regions/11")
    assert page.status_code == 200
    text = page.text
    assert "<h1>Île-de-France</h1>" in text
    assert euros("10\u202f344\u202f806,00") in text  # annexe 1 envelope
    assert euros("63\u202f000,00") in text  # committed: notified before the deadline
    assert re.search(r"En cours</a></th><td>1</td>", text)
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in text and "<title id=" in text
    assert "<desc id=" in text and "Les chiffres du graphique" in text
    # the three establishments have not sent the last completed month
    assert "<strong>3</strong> établissements de projets n'ont pas transmis" in text
    assert 'href="/console/completude?region=11"' in text


async def test_region_home_kept_figures_follow_each_write(client, factory):
    ars, _, (a, _b, _c), vendor = await funded_project(client, factory)
    await sign_in(client, ars)

    def missing(text: str) -> str:
        return re.search(r"<strong>(\d+)</strong> établissements de projets", text).group(1)

    first = await client.get("/console/regions/11")
    again = await client.get("/console/regions/11")  # kept: the same page
    assert missing(first.text) == missing(again.text) == "3"
    last = Month.current().plus(-1)
    await push(client, vendor, extract(a, str(last), str(last), **MEETS))  # a write
    assert missing((await client.get("/console/regions/11")).text) == "2"


async def test_projects_are_filtered_searched_sorted_and_exported(client, factory):
    ars, _pid, numbers, _ = await funded_project(client, factory)
    await create_project(client, factory, ars, count=2, reference="IDF-2023-043")
    await sign_in(client, ars)

    listed = await client.get("/console/projets", params={"tri": "aide", "ordre": "desc"})
    assert listed.status_code == 200
    assert listed.text.index("IDF-2023-042") < listed.text.index("IDF-2023-043")
    assert "2 projet(s)" in listed.text

    in_progress = await client.get("/console/projets", params={"statut": "in_progress"})
    assert "IDF-2023-042" in in_progress.text and "IDF-2023-043" not in in_progress.text
    by_finess = await client.get("/console/projets", params={"q": numbers[2]})
    assert "1 projet(s)" in by_finess.text and "IDF-2023-042" in by_finess.text
    upgrades = await client.get("/console/projets", params={"cas": "upgrade"})
    assert "0 projet(s)" in upgrades.text

    csv = await client.get("/console/projets", params={"statut": "in_progress", "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.content.decode("utf-8-sig").strip().splitlines()
    assert len(lines) == 2 and "IDF-2023-042" in lines[1]

    xlsx = await client.get("/console/projets", params={"format": "xlsx"})
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    references = {row[rows[0].index("reference")] for row in rows[1:]}
    assert references == {"IDF-2023-042", "IDF-2023-043"}


async def test_project_page_shows_funding_compliance_lateness_and_timeline(client, factory):
    ars, pid, (_, _, c), _ = await funded_project(client, factory)
    await sign_in(client, ars)
    page = await client.get(f"/console/projets/{pid}")
    assert page.status_code == 200
    text = page.text
    assert '<strong id="statut">En cours</strong>' in text
    assert "DMP : 69,0\u00a0% pour une cible de 70\u00a0%, il manque 1,0 point(s)" in text
    assert re.search(r"en retard de \d+ mois", text)
    assert f'href="/console/etablissements/{c}"' in text
    assert euros("63\u202f000,00") in text and euros("31\u202f500,00") in text
    assert "rangs 1 à 49" in text  # the rank band of each line
    assert "Notification" in text and "Convention signée" in text
    assert 'name="csrf"' in text  # the ARS may record events


async def test_events_are_previewed_then_recorded_and_a_decision_freezes_periods(
    client, factory, session
):
    ars, pid, (_a, _b, c), vendor = await funded_project(client, factory)
    await push(client, vendor, extract(c, "2025-04", "2025-04", **MEETS))
    await sign_in(client, ars)
    page = await client.get(f"/console/projets/{pid}")
    token = csrf_of(page.text)
    form = {"type": "expense_statement", "date": "2025-05-02", "montant": "60 000,00"}

    preview = await client.post(f"/console/projets/{pid}/evenements", data=form | {"csrf": token})
    assert preview.status_code == 200
    assert "<strong>Éligible au solde</strong>" in preview.text
    assert euros("28\u202f500,00") in preview.text  # min(63 000, 60 000) - 31 500
    assert (await compliance(client, ars, pid))["status"] == "targets_met"  # nothing stored

    forged = await client.post(
        f"/console/projets/{pid}/evenements", data=form | {"etape": "confirmer"}
    )
    assert forged.status_code == 403
    done = await client.post(
        f"/console/projets/{pid}/evenements", data=form | {"etape": "confirmer", "csrf": token}
    )
    assert done.status_code == 303
    assert (await compliance(client, ars, pid))["status"] == "eligible"
    audited = await session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "project.event.expense_statement")
    )
    assert audited == 1

    decision = {"type": "balance_decision", "date": "2025-05-10", "csrf": token}
    preview = await client.post(f"/console/projets/{pid}/evenements", data=decision)
    assert "3 mesure(s) ne pourront plus être révisées" in preview.text
    assert f'<th scope="row">{c}</th>' in preview.text and "2025-04 – 2025-04" in preview.text
    assert "Montant dû : <strong>" + euros("28\u202f500,00") in preview.text
    assert re.search(
        r"<td>63\u202f000,00\u00a0€</td><td>60\u202f000,00\u00a0€</td><td>31\u202f500,00\u00a0€</td>",
        preview.text,
    )
    locked = await session.scalar(
        select(func.count())
        .select_from(Measurement)
        .where(Measurement.locked_by_event_id.isnot(None))
    )
    assert locked == 0  # the preview froze nothing
    await client.post(f"/console/projets/{pid}/evenements", data=decision | {"etape": "confirmer"})
    frozen = await push(
        client, vendor, extract(c, "2025-04", "2025-04", **(MEETS | {"active_files": 96}))
    )
    assert frozen["results"][0]["errors"][0]["code"] == "period_locked"


async def test_a_refused_event_is_explained_on_the_form(client, factory):
    ars, pid, _, _ = await funded_project(client, factory)
    await sign_in(client, ars)
    token = csrf_of((await client.get(f"/console/projets/{pid}")).text)
    refused = await client.post(
        f"/console/projets/{pid}/evenements",
        data={"type": "balance_paid", "date": "2025-05-02", "csrf": token},
    )
    assert refused.status_code == 200
    assert "Cet événement ne peut pas être enregistré" in refused.text
    assert "balance_paid needs balance_decision to be recorded first" in refused.text


async def test_outside_the_scope_is_the_404_page(client, factory):
    _, pid, (a, _, _), _ = await funded_project(client, factory)
    other = await factory.token("ars", region="84")
    await sign_in(client, other)
    for path in (f"/console/projets/{pid}", f"/console/etablissements/{a}", "/console/regions/11"):
        page = await client.get(path)
        assert page.status_code == 404, path
        assert "Page introuvable" in page.text and "périmètre" in page.text
        assert "IDF-2023-042" not in page.text


async def test_grades_reads_but_cannot_record(client, factory):
    _, pid, _, _ = await funded_project(client, factory)
    grades = await factory.token("grades", region="11")
    await sign_in(client, grades)
    page = await client.get(f"/console/projets/{pid}")
    assert page.status_code == 200 and "Enregistrer un événement" not in page.text
    token = csrf_of(page.text)  # the sign-out form's
    refused = await client.post(
        f"/console/projets/{pid}/evenements",
        data={"type": "started", "date": "2023-08-01", "csrf": token, "etape": "confirmer"},
    )
    assert refused.status_code == 403


async def test_establishment_page_charts_rates_and_lists_revisions(client, factory):
    ars, _, (_, _, c), vendor = await funded_project(client, factory)
    await push(client, vendor, extract(c, "2025-01", "2025-03", **MEETS))  # a revision
    await sign_in(client, ars)
    page = await client.get(f"/console/etablissements/{c}")
    assert page.status_code == 200
    text = page.text
    assert text.count("<polyline") + text.count("<circle") >= 5  # five series
    assert "cible 70 %" in text and "cible 90 %" in text and "1re fenêtre" in text
    assert "dmp_fed_persons : 69 → 70" in text  # what the revision changed
    assert "première réception" in text and "éditeur " in text


async def test_completeness_lists_who_did_not_report_and_exports(client, factory):
    ars, _, numbers, _ = await funded_project(client, factory)
    await sign_in(client, ars)
    page = await client.get("/console/completude", params={"departement": "75"})
    assert page.status_code == 200
    assert "3 établissement(s) sans transmission" in page.text
    assert page.text.count("2025-03") == 3  # since when: the last month received
    csv = await client.get("/console/completude", params={"format": "csv"})
    lines = csv.content.decode("utf-8-sig").strip().splitlines()
    assert len(lines) == 4 and all(any(n in line for line in lines) for n in numbers)


async def test_pilots_page_shows_quotas(client, factory):
    await sign_in(client, await factory.token("national"))
    page = await client.get("/console/pilotes")
    assert page.status_code == 200
    assert "pour un plafond de 56" in page.text and "Île-de-France" in page.text


async def test_vendor_checks_a_file_then_confirms_the_import(client, factory, session):
    _, _, (a, b, _c), vendor = await funded_project(client, factory)
    await sign_in(client, vendor)
    home = await client.get("/console", follow_redirects=True)
    assert "Mes établissements" in home.text and a in home.text
    token = csrf_of(home.text)
    header = "finess,period_start,period_end," + ",".join(MEETS)
    good = ",".join(str(v) for v in MEETS.values())
    bad = good.replace("95,90,95", "95,96,95", 1)  # care project above active files
    content = f"{header}\n{a},2025-04,2025-04,{good}\n{b},2025-04,2025-04,{bad}\n"
    checked = await client.post(
        "/console/depot",
        data={"csrf": token},
        files={"fichier": ("avril.csv", content.encode(), "text/csv")},
    )
    assert checked.status_code == 200
    assert "1 créée(s), 0 révisée(s), 0 inchangée(s), 1 refusée(s)" in checked.text
    assert "active_files_with_care_project" in checked.text
    before = await session.scalar(select(func.count()).select_from(Measurement))
    confirmed = await client.post("/console/depot/confirmer", data={"csrf": token})
    assert "import enregistré" in confirmed.text
    assert await session.scalar(select(func.count()).select_from(Measurement)) == before + 1
    again = await client.post("/console/depot/confirmer", data={"csrf": token})
    assert again.status_code == 422 and "Aucun fichier en attente" in again.text


async def test_national_view_lists_every_region_and_follows_new_data(client, factory):
    national = await factory.token("national")
    await sign_in(client, national)
    before = await client.get("/console/national")
    assert before.status_code == 200
    assert before.text.count('href="/console/regions/') == 18
    assert re.search(
        r"Île-de-France</a></th>\s*<td>" + euros("10\u202f344\u202f806,00"), before.text
    )
    ars, _, _, _ = await funded_project(client, factory)  # new data: the view is not stale
    after = await client.get("/console/national")
    row = re.search(r"Île-de-France</a></th>(.*?)</tr>", after.text, re.S).group(1)
    assert euros("63\u202f000,00") in row and euros("31\u202f500,00") in row
    client.cookies.clear()
    await sign_in(client, ars)
    assert (await client.get("/console/national")).status_code == 404
