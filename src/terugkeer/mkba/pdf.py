"""The report as PDF, with matplotlib's PdfPages: each page an A4 figure with text and tables
(no HTML-to-PDF engine is available), then the plots. Long tables run over pages."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

A4 = (8.27, 11.69)
LEFT = 0.07
LINE = 0.018  # of the page height
BLUE = "#01689b"


def _step(size: float) -> float:
    """The height of a line of text of ``size`` points, as a fraction of the page."""
    return size * 1.25 / (A4[1] * 72)


class Page:
    """A page that fills from the top, line by line; a new page when full."""

    def __init__(self, pdf: PdfPages, footer: str) -> None:
        self.pdf, self.footer, self.number = pdf, footer, 0
        self.fig: Figure | None = None
        self.y = 0.0
        self.new()

    def new(self) -> None:
        self.close()
        self.number += 1
        self.fig = plt.figure(figsize=A4)
        self.y = 0.95
        self.fig.text(LEFT, 0.025, self.footer, fontsize=7, color="#696969")
        self.fig.text(0.93, 0.025, str(self.number), fontsize=7, color="#696969", ha="right")

    def close(self) -> None:
        if self.fig is not None:
            self.pdf.savefig(self.fig)  # type: ignore[no-untyped-call]
            plt.close(self.fig)
            self.fig = None

    def need(self, lines: float) -> None:
        if self.y - lines * LINE < 0.06:
            self.new()

    def text(
        self, s: str, *, size: float = 9, bold: bool = False, width: int = 0, color: str = "black"
    ) -> None:
        width = width or int(0.86 * A4[0] * 72 / (size * (0.62 if bold else 0.56)))
        lines = textwrap.wrap(s, width) or [""]
        while lines:
            room = max(int((self.y - 0.06) / (_step(size))), 0)
            if room == 0:
                self.new()
                continue
            part, lines = lines[:room], lines[room:]
            assert self.fig is not None  # noqa: S101 - new() made one
            self.fig.text(
                LEFT, self.y, "\n".join(part), fontsize=size, va="top", linespacing=1.25,
                weight="bold" if bold else "normal", color=color,
            )  # fmt: skip
            self.y -= len(part) * _step(size)
        self.y -= 0.35 * _step(size)  # between paragraphs

    def heading(self, s: str) -> None:
        self.need(3)
        self.y -= LINE * 0.6
        self.text(s, size=12, bold=True, color=BLUE)
        self.y -= LINE * 0.3

    def table(
        self, headers: list[str], rows: list[list[str]], widths: list[float], size: float = 7.5
    ) -> None:
        """Columns at fractions ``widths`` of the text width; cells wrap within them. Drawn
        as one text per column and page (rows padded to a common height): few text objects
        keep the PDF quick to write."""
        xs = [LEFT]
        for w in widths[:-1]:
            xs.append(xs[-1] + w * 0.86)
        chars = [max(int(w * 0.86 * A4[0] * 72 / (size * 0.56)), 4) for w in widths]
        step = _step(size)

        def cells(row: list[str]) -> list[list[str]]:
            wrapped = [textwrap.wrap(c, n) or [""] for c, n in zip(row, chars, strict=True)]
            height = max(len(w) for w in wrapped)
            return [w + [""] * (height - len(w)) + [""] for w in wrapped]  # a blank line after

        def flush(block: list[list[list[str]]], bold: bool) -> None:
            if not block:
                return
            assert self.fig is not None  # noqa: S101 - new() made one
            for c, x in enumerate(xs):
                lines = [line for row in block for line in row[c]]
                self.fig.text(
                    x, self.y, "\n".join(lines), fontsize=size, va="top", linespacing=1.25,
                    weight="bold" if bold else "normal",
                )  # fmt: skip
            self.y -= sum(len(row[0]) for row in block) * step

        head = cells(headers)
        self.need(len(head[0]) + 2)
        flush([head], True)
        block: list[list[list[str]]] = []
        room = self.y - 0.06
        for r in rows:
            body = cells(r)
            if block and (sum(len(b[0]) for b in block) + len(body[0])) * step > room:
                flush(block, False)
                block = []
                self.new()
                flush([head], True)
                room = self.y - 0.06
            block.append(body)
        flush(block, False)


def write_pdf(path: Path, ctx: dict[str, Any], figures: dict[str, Figure]) -> None:
    footer = (
        f"terugkeer MKBA — {ctx['name']} — parameters {ctx['version']}, prijzen {ctx['price_year']}, "
        f"{ctx['draws']} trekkingen, seed {ctx['seed']}"
    )
    with PdfPages(path) as pdf:
        page = Page(pdf, footer)
        page.text("Maatschappelijke kosten-batenanalyse", size=10, color="#696969")
        page.text(ctx["title"], size=15, bold=True, width=60, color=BLUE)
        page.y -= LINE
        if ctx["description"]:
            page.text(" ".join(ctx["description"].split()))
        page.y -= LINE * 0.5
        page.text(ctx["headline"], bold=True)
        page.heading("Opzet")
        for label, v in (
            ("populatie", ctx["population"]),
            ("deelnemers per jaar", ctx["participants"]),
            ("horizon", ctx["horizon"]),
            (
                "discontovoet (reëel)",
                f"{ctx['rate']}, kasstromen in het {ctx['timing']} van de maand",
            ),
            ("effect", ctx["effect"]),
            ("Monte Carlo", f"{ctx['draws']} trekkingen, seed {ctx['seed']}"),
        ):
            page.text(f"{label}: {v}")
        page.heading("Resultaten per perspectief (per deelnemer, contante waarde)")
        page.table(
            [
                "perspectief",
                "baten",
                "kosten",
                "NCW",
                "B/K",
                "IRR",
                "NCW cohort",
                "P5 – P95",
                "kans B>K",
            ],
            [
                [
                    p["label"],
                    p["benefits"],
                    p["costs"],
                    p["npv"],
                    p["bc"],
                    p["irr"],
                    p["cohort"],
                    f"{p['p5']} – {p['p95']}",
                    p["chance"],
                ]
                for p in ctx["perspectives"]
            ],
            [0.13, 0.1, 0.1, 0.1, 0.06, 0.08, 0.13, 0.2, 0.1],
        )
        page.heading("Wat verandert (per deelnemer, over de horizon)")
        for label, v in ctx["outcomes"]:
            page.text(f"{label}: {v}")
        page.heading("Break-even")
        page.text(
            f"Het effect waarbij baten en kosten voor de maatschappij gelijk zijn: {ctx['break_even']}."
        )
        if ctx["break_even_range"]:
            page.text(ctx["break_even_range"])
        page.heading("Kanttekeningen")
        for c in ctx["caveats"]:
            page.text(f"• {c}")
        page.heading("Aannames (geen openbare bron)")
        page.text(", ".join(ctx["assumptions"]) or "geen")
        page.new()
        page.heading("Parameters, bronnen en aannames")
        page.table(
            ["parameter", "waarde", "eenheid", "bron (prijsjaar)", "verdeling", "bron"],
            [
                [
                    p["label"] + (" [aanname]" if p["assumption"] else ""),
                    p["value"],
                    p["unit"],
                    p["original"],
                    p["spread"],
                    p["source"],
                ]
                for p in ctx["params"]
            ],
            [0.22, 0.08, 0.1, 0.1, 0.12, 0.38],
            size=6.5,
        )
        if ctx["sources"]:
            page.heading("Bronnen van het scenario")
            for s in ctx["sources"]:
                page.text(f"• {s}")
        page.close()
        for fig in figures.values():
            fig.set_size_inches(8.27, max(fig.get_size_inches()[1], 4))
            pdf.savefig(fig)
