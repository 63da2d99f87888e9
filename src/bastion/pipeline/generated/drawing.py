"""The canvas the generated invoices are drawn on: `SamplePage` with a choice of typeface,
letter-spaced text, text rotated into the margin, boxes and centred text.
"""

from __future__ import annotations

from reportlab.pdfbase.pdfmetrics import stringWidth

from bastion.pipeline.samples import SamplePage

__all__ = ["FONTS", "Sheet"]

# Standard PDF typefaces (regular, bold): nothing to embed, so the files stay small.
FONTS = {
    "Helvetica": ("Helvetica", "Helvetica-Bold"),
    "Times": ("Times-Roman", "Times-Bold"),
    "Courier": ("Courier", "Courier-Bold"),
}


class Sheet(SamplePage):
    """A4 pages in one typeface."""

    def __init__(self, title: str, author: str, font: str = "Helvetica") -> None:
        super().__init__(title, author)
        self.canvas.setCreator("Bastion invoice generator")
        self.regular, self.bold = FONTS[font]

    def font(self, bold: bool) -> str:
        return self.bold if bold else self.regular

    def measure(self, text: str, size: float = 10, bold: bool = False) -> float:
        return float(stringWidth(text, self.font(bold), size))

    def text(self, x: float, y: float, text: str, size: float = 10, bold: bool = False) -> None:
        self.canvas.setFont(self.font(bold), size)
        self.canvas.drawString(x, y, text)

    def right(self, x: float, y: float, text: str, size: float = 10, bold: bool = False) -> None:
        self.canvas.setFont(self.font(bold), size)
        self.canvas.drawRightString(x, y, text)

    def center(self, x: float, y: float, text: str, size: float = 10, bold: bool = False) -> None:
        self.canvas.setFont(self.font(bold), size)
        self.canvas.drawCentredString(x, y, text)

    def spaced(
        self,
        x: float,
        y: float,
        text: str,
        size: float = 10,
        bold: bool = False,
        space: float = 2.5,
        align_right: bool = False,
    ) -> None:
        """Text with `space` points between its characters (character spacing, not spaces)."""
        if align_right:
            x -= self.measure(text, size, bold) + space * (len(text) - 1)
        obj = self.canvas.beginText(x, y)
        obj.setFont(self.font(bold), size)
        obj.setCharSpace(space)
        obj.textOut(text)
        obj.setCharSpace(0)  # the spacing would otherwise stay on for all later text
        self.canvas.drawText(obj)

    def rotated(self, x: float, y: float, text: str, size: float = 7, angle: float = 90) -> None:
        """Text turned by `angle` degrees about its start, e.g. up the left margin."""
        self.canvas.saveState()
        self.canvas.translate(x, y)
        self.canvas.rotate(angle)
        self.canvas.setFont(self.regular, size)
        self.canvas.drawString(0, 0, text)
        self.canvas.restoreState()

    def box(self, x: float, y: float, width: float, height: float) -> None:
        """A rectangle from its lower-left corner."""
        self.canvas.setLineWidth(0.6)
        self.canvas.rect(x, y, width, height, stroke=1, fill=0)
