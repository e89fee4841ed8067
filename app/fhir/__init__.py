"""The annexe 2 figures as FHIR R4: Measure, MeasureReport in and out, CapabilityStatement.

Which FHIR. The service speaks FHIR R4 (4.0.1), what the French national services and the
ANS guides use. It validates with `fhir.resources`, whose default models are R5 (5.0.0);
it uses the package's R4B models (4.3.0) instead, whose elements for the five resources
used here (MeasureReport, Measure, Bundle, OperationOutcome, CapabilityStatement) are those
of R4: R4B is backward compatible with R4 outside the resources it reworked (medicinal
product definitions, evidence, subscriptions), and these are not among them. R5 did change
them: MeasureReport.measure became optional,
`group.measureScore` became `measureScore[x]`, groups and populations gained `linkId`,
MeasureReport.type `data-collection` became `data-exchange`, Measure.group gained `scoring`
and `basis`, Bundle gained `issues`. So an R5 report (a `measureScoreQuantity`, a `linkId`)
is refused as an unknown element, as an R4 server would; nothing of R5 is produced.

French profiles. The reporter is identified as FR Core's FrCoreOrganization identifies an
organisation: its FINESS under `https://finess.esante.gouv.fr` (the older
`http://finess.sante.gouv.fr` is accepted too), or its national structure identifier
(`urn:oid:1.2.250.1.71.4.2.2`, `1` followed by the FINESS). FR Core profiles no measure
resource; the reports follow the base resource.
"""
