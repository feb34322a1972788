"""A self-contained HTML page of plotly figures and sortable tables: plotly's JavaScript is
embedded once, so the page opens offline from a local file, moved or mailed. Shared by
`nas report` (a study) and `nas data inspect --html` (the dataset)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from nas.core.errors import NasError

# Sorting a table by a header click: each cell may carry data-value (a number or text to sort by;
# its text otherwise); numbers sort as numbers, empty cells last. The header shows the order in
# aria-sort, which the browser test reads.
SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (header, column) {
    header.addEventListener("click", function () {
      var ascending = header.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var cell = row.cells[column];
        var value = cell.hasAttribute("data-value") ? cell.getAttribute("data-value") : cell.textContent;
        var number = Number(value);
        return value.trim() === "" ? null : (isNaN(number) ? value : number);
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null || y === null) { return x === y ? 0 : (x === null ? 1 : -1); }
        var order = (typeof x === "number" && typeof y === "number") ? x - y : String(x).localeCompare(String(y));
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #1a202c; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #e2e8f0; }
p.note { color: #4a5568; } dl.facts { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
table { border-collapse: collapse; font-size: 0.85em; } th, td { padding: 0.2em 0.6em; border-bottom: 1px solid #edf2f7; }
th { background: #f7fafc; text-align: left; position: sticky; top: 0; }
table.sortable th { cursor: pointer; } th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; } td.number { text-align: right; font-variant-numeric: tabular-nums; }
tr.front td { background: #ebf4ff; } .wide { overflow-x: auto; max-height: 40em; }
"""


@dataclass(frozen=True)
class Cell:
    """A table cell: the text shown, and the value it sorts by (a number, or None for its text)."""

    text: str
    value: float | None = None

    def html(self) -> str:
        if self.value is None:
            return f"<td>{html.escape(self.text)}</td>"
        sort = "" if self.value != self.value else f"{self.value:.12g}"  # NaN sorts last (empty)
        return f'<td class="number" data-value="{sort}">{html.escape(self.text)}</td>'


@dataclass
class Page:
    """Sections in order: headings, paragraphs, facts, figures and tables."""

    title: str
    parts: list[str] = field(default_factory=list)
    figures: int = 0

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def note(self, text: str) -> None:
        self.parts.append(f'<p class="note">{html.escape(text)}</p>')

    def facts(self, items: list[tuple[str, str]]) -> None:
        rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in items)
        self.parts.append(f'<dl class="facts">{rows}</dl>')

    def figure(self, figure, name: str, height: int = 480) -> None:
        """A plotly figure, drawn by the page's one copy of plotly.js."""
        self.figures += 1
        figure.update_layout(height=height)
        config = {"displaylogo": False, "toImageButtonOptions": {"filename": name}}
        self.parts.append(figure.to_html(full_html=False, include_plotlyjs=False, div_id=f"figure-{name}", config=config))

    def table(self, name: str, columns: list[str], rows: list[list[Cell]], row_classes: list[str] | None = None) -> None:
        """A table sorted by clicking a header (a second click reverses)."""
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = []
        for index, row in enumerate(rows):
            css = f' class="{row_classes[index]}"' if row_classes and row_classes[index] else ""
            body.append(f"<tr{css}>{''.join(cell.html() for cell in row)}</tr>")
        self.parts.append(
            f'<div class="wide"><table class="sortable" id="table-{name}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>"
        )

    def html(self) -> str:
        from plotly.offline import get_plotlyjs

        title = html.escape(self.title)
        return (
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head>"
            f"<body><h1>{title}</h1>{''.join(self.parts)}<script>{SORT_SCRIPT}</script></body></html>\n"
        )

    def write(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.html(), encoding="utf-8")
        except OSError as error:
            raise NasError(f"{path}: cannot write the page ({error.strerror}); expected a writable file path") from None
