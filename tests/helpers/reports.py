"""Reading the markdown tables of a `make compare` report."""


def table_after(report: str, heading: str) -> list[dict[str, str]]:
    """The markdown table under `heading`, one dict per row."""
    lines = report.split(heading, 1)[1].strip().splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True)))
    return rows
