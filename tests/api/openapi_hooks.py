"""Schemathesis hooks of tests/api/openapi.rs: what OpenAPI cannot say about Dhara's queries.

A query parameter may have several names (`startDate`, `start_date`, `dateFrom`...): the
document lists each, marking aliases `x-alias-of: <parameter>`, and a request giving two names
of one parameter is refused (400, serde's duplicate field). OpenAPI cannot say "at most one of
these", so a schema-valid case may name one parameter twice: such a case keeps its first name
only. Cases generated to be invalid are left as they are.
"""

import schemathesis


@schemathesis.hook
def map_case(context, case):
    meta = case.meta
    if not case.query or meta is None or meta.is_negative_at("query"):
        return case
    canonical = {}
    for param in case.operation.query:
        canonical[param.name] = param.definition.get("x-alias-of", param.name)
    seen = {}
    for name in list(case.query):
        target = canonical.get(name, name)
        if target in seen:
            del case.query[name]
        else:
            seen[target] = name
    for param in case.operation.query:
        start = param.definition.get("x-not-before")
        if start and param.name in case.query:
            case.query[seen.get(start, start)] = case.query[param.name]
    return case
